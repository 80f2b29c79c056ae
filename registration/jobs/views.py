"""Pages and JSON progress endpoints for registration jobs (coordinators only).

Views parse the request, call a service in `registration.jobs.services` or a selector in
`registration.jobs.selectors`, and render. Nothing here imports torch.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import coordinator_required, user_is_admin
from registration.jobs import selectors
from registration.jobs.services import (
    job_cancel,
    job_create,
    job_method_default,
    job_retry,
    jobs_create_for_cohort,
)
from registration.jobs.state import JobError
from registration.models import Case, Cohort, RegistrationJob


def _method(request: HttpRequest) -> str:
    return (request.POST.get("method") or job_method_default()).strip()


def _back(request: HttpRequest, fallback: str) -> str:
    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, {request.get_host()}, request.is_secure()):
        return nxt
    return fallback


# --- pages ---------------------------------------------------------------------------------------


@coordinator_required
@require_GET
def job_list_view(request: HttpRequest) -> HttpResponse:
    cohort = None
    if request.GET.get("cohort", "").isdigit():
        cohort = get_object_or_404(Cohort, pk=int(request.GET["cohort"]))
    status_filter = request.GET.get("status") or None
    if status_filter not in (None, *RegistrationJob.Status.values):
        status_filter = None
    jobs_qs = selectors.job_list(cohort=cohort, status=status_filter)[:500]
    return render(
        request,
        "registration/job_list.html",
        {"jobs": jobs_qs, "cohort": cohort, "status": status_filter or ""},
    )


@coordinator_required
@require_GET
def job_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = selectors.job_get(pk=pk)
    except RegistrationJob.DoesNotExist as exc:
        raise Http404("no such job") from exc
    return render(
        request,
        "registration/job_detail.html",
        {
            "job": job,
            "status": selectors.job_status_dict(job),
            "show_traceback": user_is_admin(request.user),
        },
    )


@coordinator_required
@require_POST
def case_register_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(Case, pk=pk)
    try:
        job = job_create(case=case, method=_method(request), user=request.user)
    except JobError as exc:
        messages.error(request, str(exc))
        return redirect(_back(request, "registration:job-list"))
    messages.success(request, f"Registration of case {case.case_code} queued.")
    return redirect(_back(request, f"/jobs/{job.pk}/"))


@coordinator_required
@require_POST
def cohort_register_all_view(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = get_object_or_404(Cohort, pk=pk)
    try:
        created = jobs_create_for_cohort(cohort=cohort, method=_method(request), user=request.user)
    except JobError as exc:
        messages.error(request, str(exc))
    else:
        if created:
            messages.success(
                request, f"{len(created)} registration job(s) queued for {cohort.name}."
            )
        else:
            messages.info(request, "Every case already has a registered series or an active job.")
    return redirect(_back(request, f"/jobs/?cohort={cohort.pk}"))


@coordinator_required
@require_POST
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(RegistrationJob, pk=pk)
    try:
        job_cancel(job=job, user=request.user)
        messages.success(request, f"Job {job.pk}: cancel requested.")
    except JobError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request, f"/jobs/{job.pk}/"))


@coordinator_required
@require_POST
def job_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(RegistrationJob, pk=pk)
    try:
        job_retry(job=job, user=request.user)
        messages.success(request, f"Job {job.pk} queued again.")
    except JobError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request, f"/jobs/{job.pk}/"))


# --- JSON for the progress bars, and QC images ---------------------------------------------------


@coordinator_required
@require_GET
def job_status_json(request: HttpRequest, pk: int) -> JsonResponse:
    try:
        job = selectors.job_get(pk=pk)
    except RegistrationJob.DoesNotExist as exc:
        raise Http404("no such job") from exc
    return JsonResponse(selectors.job_status_dict(job))


@coordinator_required
@require_GET
def cohort_jobs_json(request: HttpRequest, pk: int) -> JsonResponse:
    cohort = get_object_or_404(Cohort, pk=pk)
    return JsonResponse(selectors.cohort_jobs_status(cohort=cohort))


# A FileResponse streams (it is no HttpResponse subclass, which the decorator's type names).
@coordinator_required  # type: ignore[arg-type]
@require_GET
def job_qc_view(request: HttpRequest, pk: int, name: str) -> FileResponse:
    job = get_object_or_404(RegistrationJob, pk=pk)
    qc = selectors.job_qc_path(job=job, name=name)
    if qc is None:
        raise Http404("no such QC image")
    response = FileResponse(qc.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response
