"""DRF API for registration jobs: list, detail, create (one case or a whole cohort), cancel, retry."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsCoordinator
from inference.methods import method_names
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
    method = serializers.ChoiceField(choices=list(method_names()), required=False)


class CohortRegisterSerializer(serializers.Serializer):
    cohort = serializers.PrimaryKeyRelatedField(queryset=Cohort.objects.all())
    method = serializers.ChoiceField(choices=list(method_names()), required=False)


class RegistrationJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Registration jobs: list, detail, create (one case or a whole cohort), cancel, retry."""

    permission_classes = [IsCoordinator]
    serializer_class = RegistrationJobSerializer

    def get_queryset(self) -> Any:
        params = self.request.query_params
        qs = selectors.job_list(status=params.get("status") or None)
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
            job = job_create(
                case=data.validated_data["case"],
                method=data.validated_data.get("method") or job_method_default(),
                user=request.user,
            )
        except JobError as exc:
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
            created = jobs_create_for_cohort(
                cohort=data.validated_data["cohort"],
                method=data.validated_data.get("method") or job_method_default(),
                user=request.user,
            )
        except JobError as exc:
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
            job_cancel(job=job, user=request.user)
        except JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RegistrationJobSerializer(job).data)

    @extend_schema(
        request=None, responses={200: RegistrationJobSerializer, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        try:
            job_retry(job=job, user=request.user)
        except JobError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RegistrationJobSerializer(job).data)
