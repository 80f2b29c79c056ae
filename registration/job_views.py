"""Pages, JSON progress endpoints and the DRF API for registration jobs (coordinators only).

Views parse the request, call a service in `registration.jobs` or a selector in
`registration.job_selectors`, and render. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from accounts.permissions import IsCoordinator, user_is_admin, user_is_coordinator
from registration import job_selectors, jobs
from registration.models import Case, Cohort, RegistrationJob


def _coordinator(request: HttpRequest) -> None:
    if not user_is_coordinator(request.user):
        raise PermissionDenied("coordinators only")


def _method(request: HttpRequest) -> str:
    from django.conf import settings

    return (request.POST.get("method") or settings.MRITRUS_REGISTRATION_METHOD).strip()


def _back(request: HttpRequest, fallback: str) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, {request.get_host()}, request.is_secure()):
        return nxt
    return fallback


# --- pages ---------------------------------------------------------------------------------------


@login_required
@require_GET
def job_list_view(request: HttpRequest) -> HttpResponse:
    _coordinator(request)
    cohort = None
    if request.GET.get("cohort", "").isdigit():
        cohort = get_object_or_404(Cohort, pk=int(request.GET["cohort"]))
    status_filter = request.GET.get("status") or None
    if status_filter not in (None, *RegistrationJob.Status.values):
        status_filter = None
    jobs_qs = job_selectors.job_list(cohort=cohort, status=status_filter)[:500]
    return render(
        request,
        "registration/job_list.html",
        {"jobs": jobs_qs, "cohort": cohort, "status": status_filter or ""},
    )


@login_required
@require_GET
def job_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    _coordinator(request)
    try:
        job = job_selectors.job_get(pk=pk)
    except RegistrationJob.DoesNotExist as exc:
        raise Http404("no such job") from exc
    return render(
        request,
        "registration/job_detail.html",
        {
            "job": job,
            "status": job_selectors.job_status_dict(job),
            "show_traceback": user_is_admin(request.user),
        },
    )


@login_required
@require_POST
def case_register_view(request: HttpRequest, pk: int) -> HttpResponse:
    _coordinator(request)
    case = get_object_or_404(Case, pk=pk)
    try:
        job = jobs.job_create(case=case, method=_method(request), user=request.user)
    except jobs.JobError as exc:
        messages.error(request, str(exc))
        return redirect(_back(request, "registration:job-list"))
    messages.success(request, f"Registration of case {case.case_code} queued.")
    return redirect(_back(request, f"/jobs/{job.pk}/"))


@login_required
@require_POST
def cohort_register_all_view(request: HttpRequest, pk: int) -> HttpResponse:
    _coordinator(request)
    cohort = get_object_or_404(Cohort, pk=pk)
    try:
        created = jobs.jobs_create_for_cohort(
            cohort=cohort, method=_method(request), user=request.user
        )
    except jobs.JobError as exc:
        messages.error(request, str(exc))
    else:
        if created:
            messages.success(
                request, f"{len(created)} registration job(s) queued for {cohort.name}."
            )
        else:
            messages.info(request, "Every case already has a registered series or an active job.")
    return redirect(_back(request, f"/jobs/?cohort={cohort.pk}"))


@login_required
@require_POST
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    _coordinator(request)
    job = get_object_or_404(RegistrationJob, pk=pk)
    try:
        jobs.job_cancel(job=job, user=request.user)
        messages.success(request, f"Job {job.pk}: cancel requested.")
    except jobs.JobError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request, f"/jobs/{job.pk}/"))


@login_required
@require_POST
def job_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    _coordinator(request)
    job = get_object_or_404(RegistrationJob, pk=pk)
    try:
        jobs.job_retry(job=job, user=request.user)
        messages.success(request, f"Job {job.pk} queued again.")
    except jobs.JobError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request, f"/jobs/{job.pk}/"))


# --- JSON for the progress bars, and QC images ---------------------------------------------------


@login_required
@require_GET
def job_status_json(request: HttpRequest, pk: int) -> JsonResponse:
    _coordinator(request)
    try:
        job = job_selectors.job_get(pk=pk)
    except RegistrationJob.DoesNotExist as exc:
        raise Http404("no such job") from exc
    return JsonResponse(job_selectors.job_status_dict(job))


@login_required
@require_GET
def cohort_jobs_json(request: HttpRequest, pk: int) -> JsonResponse:
    _coordinator(request)
    cohort = get_object_or_404(Cohort, pk=pk)
    return JsonResponse(job_selectors.cohort_jobs_status(cohort=cohort))


@login_required
@require_GET
def job_qc_view(request: HttpRequest, pk: int, name: str) -> FileResponse:
    _coordinator(request)
    job = get_object_or_404(RegistrationJob, pk=pk)
    qc = job_selectors.job_qc_path(job=job, name=name)
    if qc is None:
        raise Http404("no such QC image")
    response = FileResponse(qc.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


# --- API -----------------------------------------------------------------------------------------


class RegistrationJobSerializer(serializers.ModelSerializer):
    case_code = serializers.CharField(source="case.case_code", read_only=True)
    cohort = serializers.IntegerField(source="case.cohort_id", read_only=True)

    class Meta:
        model = RegistrationJob
        fields = [
            "id",
            "case",
            "case_code",
            "cohort",
            "method",
            "status",
            "stage",
            "progress",
            "cancel_requested",
            "attempt",
            "max_attempts",
            "heartbeat_at",
            "worker_id",
            "device",
            "model_name",
            "model_checkpoint",
            "model_sha256",
            "model_synthetic_training",
            "code_version",
            "stage_seconds",
            "metrics",
            "metrics_basis",
            "warnings",
            "error",
            "registered_series",
            "created_at",
            "enqueued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = [f for f in fields if f not in ("case", "method")]


class RegistrationJobCreateSerializer(serializers.Serializer):
    case = serializers.PrimaryKeyRelatedField(queryset=Case.objects.all())
    method = serializers.ChoiceField(choices=list(jobs.METHODS), required=False)


class CohortRegisterSerializer(serializers.Serializer):
    cohort = serializers.PrimaryKeyRelatedField(queryset=Cohort.objects.all())
    method = serializers.ChoiceField(choices=list(jobs.METHODS), required=False)


def _default_method() -> str:
    from django.conf import settings

    return str(settings.MRITRUS_REGISTRATION_METHOD)


class RegistrationJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Registration jobs: list, detail, create (one case or a whole cohort), cancel, retry."""

    permission_classes = [IsCoordinator]
    serializer_class = RegistrationJobSerializer

    def get_queryset(self) -> Any:
        params = self.request.query_params
        qs = job_selectors.job_list(status=params.get("status") or None)
        if params.get("cohort", "").isdigit():
            qs = qs.filter(case__cohort_id=int(params["cohort"]))
        if params.get("case", "").isdigit():
            qs = qs.filter(case_id=int(params["case"]))
        return qs

    @extend_schema(
        request=RegistrationJobCreateSerializer,
        responses={201: RegistrationJobSerializer, 409: OpenApiTypes.OBJECT},
    )
    def create(self, request: Request) -> Response:
        data = RegistrationJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = jobs.job_create(
                case=data.validated_data["case"],
                method=data.validated_data.get("method") or _default_method(),
                user=request.user,
            )
        except jobs.JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RegistrationJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CohortRegisterSerializer, responses={201: RegistrationJobSerializer(many=True)}
    )
    # The jobs just created, all of them: never paged.
    @action(detail=False, methods=["post"], url_path="register-cohort", pagination_class=None)
    def register_cohort(self, request: Request) -> Response:
        data = CohortRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = jobs.jobs_create_for_cohort(
                cohort=data.validated_data["cohort"],
                method=data.validated_data.get("method") or _default_method(),
                user=request.user,
            )
        except jobs.JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            RegistrationJobSerializer(created, many=True).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=None, responses={200: RegistrationJobSerializer, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        try:
            jobs.job_cancel(job=job, user=request.user)
        except jobs.JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RegistrationJobSerializer(job).data)

    @extend_schema(
        request=None, responses={200: RegistrationJobSerializer, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        try:
            jobs.job_retry(job=job, user=request.user)
        except jobs.JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RegistrationJobSerializer(job).data)


_router = SimpleRouter()
_router.register("api/jobs", RegistrationJobViewSet, basename="api-job")

job_urlpatterns = [
    path("jobs/", job_list_view, name="job-list"),
    path("jobs/<int:pk>/", job_detail_view, name="job-detail"),
    path("jobs/<int:pk>/status.json", job_status_json, name="job-status-json"),
    path("jobs/<int:pk>/cancel/", job_cancel_view, name="job-cancel"),
    path("jobs/<int:pk>/retry/", job_retry_view, name="job-retry"),
    path("jobs/<int:pk>/qc/<str:name>.png", job_qc_view, name="job-qc"),
    path("cases/<int:pk>/register/", case_register_view, name="case-register"),
    path("cohorts/<int:pk>/register-all/", cohort_register_all_view, name="cohort-register-all"),
    path("cohorts/<int:pk>/jobs.json", cohort_jobs_json, name="cohort-jobs-json"),
    *_router.urls,
]
