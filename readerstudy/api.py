"""DRF API: studies (coordinators), worklists and reads (readers use their own).

Reader endpoints look everything up through the same selectors as the pages, so the blinding
rules (404 for anything not the reader's own open assignment; no case codes, arms or references in
what a reader receives) hold for the API too.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsCoordinator, IsReader, user_is_coordinator, user_is_reader
from readerstudy import read_services, selectors, services
from readerstudy.analysis import services as analysis_services
from readerstudy.models import Assignment, Read, ReaderStudy
from readerstudy.serializers import (
    CoordinatorReadSerializer,
    OwnReadSerializer,
    ProgressSerializer,
    ReopenSerializer,
    ScoresSerializer,
    SnapshotSerializer,
    StudyCreateSerializer,
    StudySerializer,
    WorklistItemSerializer,
)


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    if hasattr(exc, "error_dict"):
        return ValidationError(
            {k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()}
        )
    return ValidationError({"detail": exc.messages})


# --- studies -------------------------------------------------------------------------------------


class StudyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Reader studies (coordinators and admins)."""

    permission_classes = [IsAuthenticated, IsCoordinator]
    serializer_class = StudySerializer

    def get_queryset(self) -> QuerySet[ReaderStudy]:
        return ReaderStudy.objects.prefetch_related("arms", "readers__user").order_by("-created_at")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return StudyCreateSerializer if self.action == "create" else StudySerializer

    @extend_schema(request=StudyCreateSerializer, responses={201: StudySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = StudyCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            study = services.study_create(
                name=data["name"],
                cohort=data["cohort"],
                created_by=request.user,
                arm_kinds=data["arm_kinds"],
                readers=data["readers"],
                washout_days=data["washout_days"],
                seed=data.get("seed"),
                reference_standard=data["reference_standard"],
                model_key=data.get("model_key", ""),
                mark_required_from=data.get("mark_required_from"),
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        return Response(StudySerializer(study).data, status=status.HTTP_201_CREATED)

    def _act(self, fn: Any) -> Response:
        study = self.get_object()
        try:
            fn(study)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        study.refresh_from_db()
        return Response(StudySerializer(study).data)

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def generate(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        """Generate the fully crossed, counterbalanced worklists (draft studies only)."""
        return self._act(lambda s: services.study_worklists_generate(study=s, user=request.user))

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def open(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        return self._act(lambda s: services.study_open(study=s, user=request.user))

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def lock(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """Freeze the reads and take a snapshot."""
        return self._act(lambda s: services.study_lock(study=s, user=request.user))

    @extend_schema(request=None, responses={201: SnapshotSerializer})
    @action(detail=True, methods=["post"])
    def snapshot(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        study = self.get_object()
        try:
            snap = analysis_services.snapshot_create(study=study, user=request.user)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        return Response(SnapshotSerializer(snap).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ProgressSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # a short list, never paged
    def progress(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        """Per reader and arm: reads submitted of total, median time, last activity (no scores)."""
        rows = selectors.study_progress(study=self.get_object())
        return Response(ProgressSerializer(rows, many=True).data)


# --- worklists (readers) --------------------------------------------------------------------------


class WorklistViewSet(viewsets.ReadOnlyModelViewSet):
    """The reader's own cases that are open for reading now; draft and submit through it."""

    permission_classes = [IsAuthenticated, IsReader]
    serializer_class = WorklistItemSerializer
    lookup_field = "token"
    pagination_class = None

    def get_queryset(self) -> QuerySet[Assignment]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no real user
            return Assignment.objects.none()
        return (
            Assignment.objects.filter(
                reader__user=self.request.user, study__status=ReaderStudy.Status.OPEN
            )
            .select_related("study", "reader", "read")
            .order_by("study", "session", "position")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items = [a for a in self.get_queryset() if selectors.assignment_is_available(assignment=a)]
        return Response(WorklistItemSerializer(items, many=True).data)

    def get_object(self) -> Assignment:
        try:
            return selectors.reader_assignment_get(
                user=self.request.user, token=self.kwargs["token"]
            )
        except Assignment.DoesNotExist:
            raise NotFound() from None

    def _write(self, request: Request, *, submit: bool) -> Response:
        assignment = self.get_object()
        incoming = ScoresSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        seconds = data.pop("active_seconds", 0)
        service = read_services.read_submit if submit else read_services.read_draft_save
        try:
            read = service(
                assignment=assignment, user=request.user, data=data, active_seconds=seconds
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        return Response(OwnReadSerializer(read).data)

    @extend_schema(request=ScoresSerializer, responses=OwnReadSerializer)
    @action(detail=True, methods=["post"])
    def draft(
        self, request: Request, token: str | None = None, format: str | None = None
    ) -> Response:
        """Save a draft (partial scores allowed) and credit active reading seconds."""
        return self._write(request, submit=False)

    @extend_schema(request=ScoresSerializer, responses=OwnReadSerializer)
    @action(detail=True, methods=["post"])
    def submit(
        self, request: Request, token: str | None = None, format: str | None = None
    ) -> Response:
        """Submit the read (all scores required); it becomes read-only."""
        return self._write(request, submit=True)


# --- reads ---------------------------------------------------------------------------------------


class ReadViewSet(viewsets.ReadOnlyModelViewSet):
    """Readers: their own reads. Coordinators: every read, scores hidden until frozen."""

    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[Read]:
        if getattr(self, "swagger_fake_view", False):
            return Read.objects.none()
        user = self.request.user
        qs = Read.objects.select_related(
            "assignment__study", "assignment__reader", "assignment__arm", "assignment__case"
        ).order_by("pk")
        if user_is_coordinator(user):
            study = self.request.query_params.get("study")
            return qs.filter(assignment__study_id=study) if study and study.isdigit() else qs
        if user_is_reader(user):
            # Only the reads of their own assignments in studies open now (like the worklist).
            return qs.filter(
                assignment__reader__user=user, assignment__study__status=ReaderStudy.Status.OPEN
            )
        return qs.none()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if user_is_coordinator(self.request.user):
            return CoordinatorReadSerializer
        return OwnReadSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        frozen: dict[int, dict[str, dict[str, Any]]] = {}
        if user_is_coordinator(self.request.user):
            for study in ReaderStudy.objects.all():
                if selectors.study_results_visible(study=study):
                    snap = selectors.study_latest_snapshot(study=study)
                    if snap is not None:
                        frozen[study.pk] = {r["reading_code"]: r for r in snap.payload["reads"]}
        context["frozen"] = frozen
        return context

    def get_object(self) -> Read:
        try:
            return super().get_object()
        except Http404:
            raise NotFound() from None

    @extend_schema(request=ReopenSerializer, responses=CoordinatorReadSerializer)
    @action(detail=True, methods=["post"])
    def reopen(
        self, request: Request, pk: str | None = None, format: str | None = None
    ) -> Response:
        """Coordinator: make a submitted read editable again (audited with the reason)."""
        if not user_is_coordinator(request.user):
            raise PermissionDenied("coordinators only")
        incoming = ReopenSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            read = read_services.read_reopen(
                read=self.get_object(), user=request.user, reason=incoming.validated_data["reason"]
            )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        return Response(CoordinatorReadSerializer(read, context=self.get_serializer_context()).data)
