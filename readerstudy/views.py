"""Reader-study pages and the reader's image endpoints. Views parse, call a service, render.

Reader-facing views answer 404 for anything that is not the reader's own open assignment, so a
reader cannot even learn that another series, case or read exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.permissions import coordinator_required, reader_required
from readerstudy import read_services, selectors, services
from readerstudy.analysis import services as analysis_services
from readerstudy.display import SLICES
from readerstudy.forms import ReopenForm, StudyCreateForm
from readerstudy.models import Assignment, AssignmentSeries, Read, ReaderStudy
from readerstudy.preview import assignment_preview_png
from readerstudy.serving import view_instance_bytes, view_manifest, view_slice_index


def _me(request: HttpRequest) -> User:
    """The logged-in user (every view here is behind login_required)."""
    return cast(User, request.user)


def _errors(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {k: [str(m) for e in v for m in e.messages] for k, v in exc.error_dict.items()}
    return {"__all__": list(exc.messages)}


# --- coordinator pages ---------------------------------------------------------------------------


@coordinator_required
def study_list_view(request: HttpRequest) -> HttpResponse:
    studies = selectors.study_list(user=_me(request))
    return render(request, "readerstudy/study_list.html", {"studies": studies})


@coordinator_required
def study_create_view(request: HttpRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            study = services.study_create(
                name=data["name"],
                cohort=data["cohort"],
                created_by=_me(request),
                arm_kinds=data["arm_kinds"],
                readers=list(data["readers"]),
                washout_days=data["washout_days"],
                seed=data["seed"],
                reference_standard=data["reference_standard"],
                model_key=data["model_key"] or "",
                mark_required_from=data["mark_required_from"],
            )
        except ValidationError as exc:
            for field, msgs in _errors(exc).items():
                for msg in msgs:
                    form.add_error(field if field in form.fields else None, msg)
        else:
            messages.success(request, f"Study {study.name} created. Generate the worklists next.")
            return redirect("readerstudy:study-detail", pk=study.pk)
    return render(request, "readerstudy/study_create.html", {"form": form})


@coordinator_required
def study_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(ReaderStudy.objects.select_related("cohort"), pk=pk)
    visible = selectors.study_results_visible(study=study)
    snapshot = selectors.study_latest_snapshot(study=study)
    scores: dict[str, dict[str, Any]] = {}
    if visible and snapshot is not None:
        # Frozen scores only: what coordinators see is what the analysis will use.
        scores = {row["reading_code"]: row for row in snapshot.payload.get("reads", [])}
    arms = {arm.pk: arm for arm in study.arms.all()}
    readers = [
        {"reader": r, "arms": [arms[pk].kind for pk in r.arm_order if pk in arms]}
        for r in study.readers.select_related("user")
    ]
    reads = list(selectors.study_reads_for_coordinator(study=study))
    for read in reads:
        read.frozen = scores.get(read.assignment.reading_code)  # type: ignore[attr-defined]
    context = {
        "study": study,
        "arms": study.arms.order_by("index"),
        "readers": readers,
        "progress": selectors.study_progress(study=study),
        "reads": reads,
        "results_visible": visible,
        "snapshot": snapshot,
        "assignment_count": study.assignments.count(),
        "audit": study.audit_events.select_related("user", "assignment").order_by("-at", "-pk")[
            :50
        ],
        "reopen_form": ReopenForm(),
    }
    return render(request, "readerstudy/study_detail.html", context)


def _study_action(
    request: HttpRequest, pk: int, action: Callable[[ReaderStudy], str]
) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, pk=pk)
    try:
        messages.success(request, action(study))
    except ValidationError as exc:
        for msgs in _errors(exc).values():
            for msg in msgs:
                messages.error(request, msg)
    return redirect("readerstudy:study-detail", pk=pk)


@require_POST
@coordinator_required
def study_generate_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(study: ReaderStudy) -> str:
        result = services.study_worklists_generate(study=study, user=_me(request))
        left = f"; {len(result.notes)} case(s) left out (see notes)" if result.notes else ""
        return f"{result.assignments} assignments over {result.cases} cases{left}."

    return _study_action(request, pk, act)


@require_POST
@coordinator_required
def study_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(study: ReaderStudy) -> str:
        services.study_open(study=study, user=_me(request))
        return "The study is open: readers see their worklists."

    return _study_action(request, pk, act)


@require_POST
@coordinator_required
def study_lock_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(study: ReaderStudy) -> str:
        snapshot = services.study_lock(study=study, user=_me(request))
        return f"Locked. Snapshot {snapshot.sha256[:12]}… holds {len(snapshot.payload['reads'])} reads."

    return _study_action(request, pk, act)


@require_POST
@coordinator_required
def study_snapshot_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(study: ReaderStudy) -> str:
        snapshot = analysis_services.snapshot_create(study=study, user=_me(request))
        return f"Snapshot {snapshot.sha256[:12]}… of {len(snapshot.payload['reads'])} reads."

    return _study_action(request, pk, act)


@require_POST
@coordinator_required
def read_reopen_view(request: HttpRequest, pk: int, read_pk: int) -> HttpResponse:
    read = get_object_or_404(Read, pk=read_pk, assignment__study_id=pk)
    form = ReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the reason for reopening (it is audited).")
        return redirect("readerstudy:study-detail", pk=pk)

    def act(study: ReaderStudy) -> str:
        read_services.read_reopen(read=read, user=_me(request), reason=form.cleaned_data["reason"])
        return f"Read {read.assignment.reading_code} reopened."

    return _study_action(request, pk, act)


# --- reader pages --------------------------------------------------------------------------------


@reader_required
@never_cache
def worklist_home_view(request: HttpRequest) -> HttpResponse:
    worklists = selectors.reader_worklists(user=_me(request))
    return render(request, "readerstudy/worklist.html", {"worklists": worklists})


def _assignment_or_404(request: HttpRequest, token: str) -> Assignment:
    try:
        return selectors.reader_assignment_get(user=_me(request), token=token)
    except Assignment.DoesNotExist:
        raise Http404("not found") from None


@reader_required
@never_cache
def viewer_view(request: HttpRequest, token: str) -> HttpResponse:
    assignment = _assignment_or_404(request, token)
    read_services.assignment_view_record(assignment=assignment, user=_me(request))
    read = Read.objects.filter(assignment=assignment).first()
    total = Assignment.objects.filter(reader=assignment.reader, session=assignment.session).count()
    done = (
        Read.objects.filter(
            assignment__reader=assignment.reader,
            assignment__session=assignment.session,
            status=Read.Status.SUBMITTED,
        )
        .exclude(assignment=assignment)
        .count()
    )
    views = {v.role: v for v in assignment.views.all()}
    config: dict[str, Any] = {
        "primary": reverse("readerstudy:series-manifest", args=[views["primary"].token]),
        "underlay": (
            reverse("readerstudy:series-manifest", args=[views["underlay"].token])
            if "underlay" in views
            else None
        ),
        "draftUrl": reverse("readerstudy:read-draft", args=[assignment.token]),
        "submitUrl": reverse("readerstudy:read-submit", args=[assignment.token]),
        "worklistUrl": reverse("readerstudy:worklist-home"),
        "readOnly": bool(read and read.status == Read.Status.SUBMITTED),
        "markRequiredFrom": assignment.study.mark_required_from,
        "mark": (
            {
                "x": read.mark_x,
                "y": read.mark_y,
                "z": read.mark_z,
                "slice": read.mark_slice,
                "diameter": read.mark_diameter,
            }
            if read and read.mark_slice is not None
            else None
        ),
    }
    context = {
        "assignment": assignment,
        "read": read,
        # The slice the viewer opens on (a saved view state may move it; the page then hides
        # the preview): where the lesion was marked, else the middle.
        "first_slice": config["mark"]["slice"] if config["mark"] else SLICES // 2,
        "number": done + 1 if not config["readOnly"] else assignment.position,
        "total": total,
        "config": config,
        "has_underlay": "underlay" in views,
        "pirads_range": range(1, 6),
        "likert_range": range(1, 8),
        "zones": Read.Zone.choices,
        "sides": Read.Side.choices,
    }
    return render(request, "readerstudy/viewer.html", context)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.")
    return data


def _read_write(request: HttpRequest, token: str, *, submit: bool) -> HttpResponse:
    assignment = _assignment_or_404(request, token)
    try:
        data = _json_body(request)
        seconds = data.pop("active_seconds", 0)
        service = read_services.read_submit if submit else read_services.read_draft_save
        read = service(assignment=assignment, user=_me(request), data=data, active_seconds=seconds)
    except ValidationError as exc:
        return JsonResponse({"errors": _errors(exc)}, status=400)
    except IntegrityError:
        return JsonResponse({"errors": {"__all__": ["The read could not be saved."]}}, status=400)
    body: dict[str, Any] = {
        "status": read.status,
        "active_seconds": round(read.active_seconds, 1),
        "saved_at": read.updated_at.isoformat(),
    }
    if submit:
        following = selectors.reader_next_assignment(assignment=assignment)
        body["next_url"] = (
            reverse("readerstudy:viewer", args=[following.token])
            if following
            else reverse("readerstudy:worklist-home")
        )
    return JsonResponse(body)


@require_POST
@reader_required
def read_draft_view(request: HttpRequest, token: str) -> HttpResponse:
    return _read_write(request, token, submit=False)


@require_POST
@reader_required
def read_submit_view(request: HttpRequest, token: str) -> HttpResponse:
    return _read_write(request, token, submit=True)


@require_GET
@reader_required
def series_manifest_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        view = selectors.reader_view_get(user=_me(request), token=token)
    except AssignmentSeries.DoesNotExist:
        raise Http404("not found") from None
    response = JsonResponse(view_manifest(view=view))
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@reader_required
def viewer_preview_view(request: HttpRequest, token: str) -> HttpResponse:
    """The first slice as a PNG, on screen while the viewer loads (readerstudy/preview.py)."""

    assignment = _assignment_or_404(request, token)
    try:
        slice_index = int(request.GET.get("slice", SLICES // 2))
        payload = assignment_preview_png(assignment=assignment, slice_index=slice_index)
    except (ValueError, IndexError):
        raise Http404("not found") from None
    response = HttpResponse(payload, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@reader_required
def wado_view(request: HttpRequest) -> HttpResponse:
    """WADO-URI (PS3.18 §9 style) restricted to the reader's own remapped UIDs."""
    params = request.GET
    if params.get("requestType") != "WADO":
        return HttpResponseBadRequest("requestType=WADO is required")
    content_type = params.get("contentType", "application/dicom")
    if content_type != "application/dicom":
        return HttpResponseBadRequest("only contentType=application/dicom is served")
    try:
        view = selectors.reader_view_by_series_uid(
            user=_me(request), series_uid=params.get("seriesUID", "")
        )
        if params.get("studyUID") != view.study_uid:
            raise Http404("not found")
        plane, slice_index = view_slice_index(view=view, object_uid=params.get("objectUID", ""))
    except (AssignmentSeries.DoesNotExist, LookupError):
        raise Http404("not found") from None
    payload = view_instance_bytes(view=view, slice_index=slice_index, plane=plane)
    response = HttpResponse(payload, content_type="application/dicom")
    # Private: the bytes carry this reader's UIDs; cacheable so scrolling back never refetches.
    response["Cache-Control"] = "private, max-age=3600"
    return response
