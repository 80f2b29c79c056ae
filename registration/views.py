"""Coordinator pages: cohorts, upload and import report, cases, thumbnails, WADO-URI, series manifest.

Readers get 403 everywhere here; their image endpoints are in readerstudy/ (blinded UIDs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import coordinator_required
from registration import selectors, services
from registration.forms import CohortUploadForm
from registration.importing.run import NO_SPACE, cohort_import_upload, storage_full
from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun
from registration.serving import dicom_instance_bytes, series_thumbnail_bytes


def _get(getter: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return getter(**kwargs)
    except (
        Cohort.DoesNotExist,
        Case.DoesNotExist,
        ImageSeries.DoesNotExist,
        ImportRun.DoesNotExist,
    ) as exc:
        raise Http404("not found") from exc


@coordinator_required
@require_GET
def cohort_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "registration/cohort_list.html",
        {"cohorts": selectors.cohort_list(), "imports": selectors.import_run_list()[:10]},
    )


@coordinator_required
@require_http_methods(["GET", "POST"])
def cohort_upload_view(request: HttpRequest) -> HttpResponse:
    try:
        # Django spools a large upload to disk while parsing it: the disk can fill up here.
        files = request.FILES
    except OSError as exc:
        if not storage_full(exc):
            raise
        error = f"{NO_SPACE}: the upload could not be received; nothing was imported."
        context = {"form": CohortUploadForm(), "error": error}
        return render(request, "registration/cohort_upload.html", context, status=507)
    form = CohortUploadForm(request.POST or None, files or None)
    if request.method == "POST" and form.is_valid():
        run = cohort_import_upload(
            uploaded=form.cleaned_data["archive"],
            cohort_name=form.cleaned_data["cohort_name"],
            user=request.user,
            upload_key=request.POST.get("upload_key", "")[:64],
        )
        return redirect("registration:import-detail", pk=run.pk)
    return render(request, "registration/cohort_upload.html", {"form": form})


@coordinator_required
@require_GET
def import_progress_view(request: HttpRequest) -> JsonResponse:
    """How far the user's upload with this key has got (the upload page polls it while it waits)."""
    run = selectors.import_run_by_upload_key(user=request.user, key=request.GET.get("key", ""))
    if run is None:
        return JsonResponse({"found": False})
    cases = run.report.get("cases", [])
    return JsonResponse(
        {
            "found": True,
            "status": run.status,
            "done": len(cases),
            "total": run.report.get("total"),
            "accepted": run.accepted,
            "rejected": run.rejected,
            "skipped": run.skipped,
        }
    )


@coordinator_required
@require_GET
def import_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _get(selectors.import_run_get, pk=pk)
    page = request.GET.get("page", "1")
    report = selectors.import_report_page(run=run, page=int(page) if page.isdigit() else 1)
    return render(request, "registration/import_detail.html", {"run": run, "report": report})


@coordinator_required
@require_GET
def cohort_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = _get(selectors.cohort_get, pk=pk)
    return render(
        request,
        "registration/cohort_detail.html",
        {
            "cohort": cohort,
            "cases": selectors.cohort_cases(cohort=cohort),
            "imports": selectors.import_run_list(cohort=cohort)[:10],
        },
    )


@coordinator_required
@require_GET
def case_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get(selectors.case_get, pk=pk)
    return render(
        request,
        "registration/case_detail.html",
        {"case": case, "cohort": case.cohort, "series_list": selectors.case_series(case=case)},
    )


@coordinator_required
@require_POST
def case_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get(selectors.case_get, pk=pk)
    cohort_pk, code = case.cohort_id, case.case_code
    services.case_delete(case=case)
    messages.success(request, f"Case {code} and its images were deleted.")
    return redirect("registration:cohort-detail", pk=cohort_pk)


@coordinator_required
@require_GET
def series_thumbnail_view(request: HttpRequest, pk: int) -> HttpResponse:
    series = _get(selectors.series_get, pk=pk)
    response = HttpResponse(series_thumbnail_bytes(series), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def wado_url(instance: DicomInstance, series: ImageSeries) -> str:
    query = urlencode(
        {
            "requestType": "WADO",
            "studyUID": series.study_instance_uid,
            "seriesUID": series.series_instance_uid,
            "objectUID": instance.sop_instance_uid,
            "contentType": "application/dicom",
        }
    )
    return f"{reverse('registration:wado')}?{query}"


@coordinator_required
@require_GET
def series_manifest_view(request: HttpRequest, pk: int) -> JsonResponse:
    """What a Cornerstone viewer needs: ``wadouri:`` image IDs in slice order, and the geometry."""
    series = _get(selectors.series_get, pk=pk)
    instances = selectors.series_instances(series=series)
    return JsonResponse(
        {
            "series_id": series.pk,
            "case_code": series.case.case_code,
            "synthetic": series.case.synthetic,
            "modality": series.modality,
            "kind": series.kind,
            "study_uid": series.study_instance_uid,
            "series_uid": series.series_instance_uid,
            "frame_of_reference_uid": series.frame_of_reference_uid,
            "shape": series.shape,
            "spacing": series.spacing,
            "image_ids": [
                "wadouri:" + request.build_absolute_uri(wado_url(inst, series))
                for inst in instances
            ],
        }
    )


@coordinator_required
@require_GET
def wado_view(request: HttpRequest) -> HttpResponse:
    """WADO-URI (PS3.18 §9): requestType=WADO, studyUID, seriesUID, objectUID, application/dicom."""
    params = request.GET
    if params.get("requestType") != "WADO":
        return HttpResponseBadRequest("requestType must be WADO")
    missing = [k for k in ("studyUID", "seriesUID", "objectUID") if not params.get(k)]
    if missing:
        return HttpResponseBadRequest(f"missing parameter(s): {', '.join(missing)}")
    content_type = params.get("contentType", "application/dicom")
    if content_type != "application/dicom":
        return HttpResponse(
            "only contentType=application/dicom is served", status=406, content_type="text/plain"
        )
    try:
        instance = selectors.instance_for_wado(
            study_uid=params["studyUID"],
            series_uid=params["seriesUID"],
            object_uid=params["objectUID"],
        )
    except DicomInstance.DoesNotExist as exc:
        raise Http404("no such DICOM object") from exc
    response = HttpResponse(
        dicom_instance_bytes(instance=instance), content_type="application/dicom"
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response
