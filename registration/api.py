"""DRF API for cohorts, cases, image series and cohort uploads (coordinators and admins only)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCoordinator
from registration import selectors
from registration.importing.run import NO_SPACE, cohort_import_upload
from registration.models import Case, Cohort, ImageSeries, ImportRun


class CohortSerializer(serializers.ModelSerializer):
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Cohort
        fields = ["id", "name", "description", "synthetic", "case_count", "created_at"]


class SeriesSerializer(serializers.ModelSerializer):
    instance_count = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = ImageSeries
        fields = [
            "id",
            "case",
            "modality",
            "kind",
            "label_of",
            "model_key",
            "shape",
            "spacing",
            "direction",
            "origin",
            "affine",
            "frame_of_reference_uid",
            "study_instance_uid",
            "series_instance_uid",
            "series_description",
            "nifti_sha256",
            "source",
            "source_format",
            "import_notes",
            "instance_count",
            "manifest_url",
            "thumbnail_url",
            "created_at",
        ]

    def get_instance_count(self, obj: ImageSeries) -> int:
        return int(getattr(obj, "instance_count", None) or obj.instances.count())

    def get_manifest_url(self, obj: ImageSeries) -> str:
        return reverse("registration:series-manifest", args=[obj.pk])

    def get_thumbnail_url(self, obj: ImageSeries) -> str:
        return reverse("registration:series-thumbnail", args=[obj.pk])


class CaseSerializer(serializers.ModelSerializer):
    series = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "cohort",
            "case_code",
            "age",
            "reference_pirads",
            "cspca",
            "isup_grade",
            "gleason",
            "lesion_side",
            "synthetic",
            "series",
            "created_at",
        ]


class ImportRunSerializer(serializers.ModelSerializer):
    """A run without its report (lists stay small whatever the cohort size)."""

    class Meta:
        model = ImportRun
        fields = [
            "id",
            "cohort",
            "source_name",
            "status",
            "accepted",
            "rejected",
            "skipped",
            "error",
            "started_at",
            "finished_at",
        ]


class ImportReportPageSerializer(serializers.Serializer):
    cohort = serializers.CharField()
    notes = serializers.ListField(child=serializers.CharField())
    cases = serializers.ListField(child=serializers.DictField(), help_text="this page's cases")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    case_count = serializers.IntegerField()


class ImportRunDetailSerializer(ImportRunSerializer):
    """A run with one page of its report (``?page=N``, MRITRUS_REPORT_PAGE_SIZE cases a page)."""

    report = serializers.SerializerMethodField()

    class Meta(ImportRunSerializer.Meta):
        fields = [*ImportRunSerializer.Meta.fields, "report"]

    @extend_schema_field(ImportReportPageSerializer)
    def get_report(self, obj: ImportRun) -> dict[str, Any]:
        request = self.context.get("request")
        page = _int_param(request, "page") if request is not None else None
        return selectors.import_report_page(run=obj, page=page or 1)


class UploadSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="zip with manifest.csv + images, or DICOM only")
    cohort_name = serializers.CharField(required=False, allow_blank=True, max_length=200)


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else None


class CohortViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAuthenticated, IsCoordinator]
    serializer_class = CohortSerializer

    def get_queryset(self) -> Any:
        return selectors.cohort_list()


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cases; ``?cohort=<id>`` filters."""

    permission_classes = [IsAuthenticated, IsCoordinator]
    serializer_class = CaseSerializer

    def get_queryset(self) -> Any:
        qs = Case.objects.prefetch_related("series").order_by("cohort", "case_code")
        cohort = _int_param(self.request, "cohort")
        return qs.filter(cohort_id=cohort) if cohort is not None else qs


class SeriesViewSet(viewsets.ReadOnlyModelViewSet):
    """Image series; ``?case=<id>`` filters."""

    permission_classes = [IsAuthenticated, IsCoordinator]
    serializer_class = SeriesSerializer

    def get_queryset(self) -> Any:
        from django.db.models import Count

        qs = ImageSeries.objects.annotate(instance_count=Count("instances")).order_by("pk")
        case = _int_param(self.request, "case")
        return qs.filter(case_id=case) if case is not None else qs


class ImportRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Import runs; the detail carries one page of the report (``?page=N``)."""

    permission_classes = [IsAuthenticated, IsCoordinator]
    serializer_class = ImportRunSerializer

    def get_serializer_class(self) -> Any:
        return ImportRunDetailSerializer if self.action == "retrieve" else ImportRunSerializer

    @extend_schema(parameters=[OpenApiParameter("page", int, description="report page, 1-based")])
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return selectors.import_run_list()


class CohortUploadAPIView(APIView):
    """Upload a cohort zip; the answer is the import report: 201 imported, 422 the input was
    refused (the report says why), 507 the storage is full; 400 only for a form that does not
    validate (no file, not a .zip), with DRF's field → messages body."""

    permission_classes = [IsAuthenticated, IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request=UploadSerializer,
        responses={
            201: ImportRunDetailSerializer,
            422: ImportRunDetailSerializer,
            507: ImportRunDetailSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        data = UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        archive = data.validated_data["archive"]
        if not archive.name.lower().endswith(".zip"):
            return Response(
                {"archive": ["Upload a .zip file."]}, status=status.HTTP_400_BAD_REQUEST
            )
        run = cohort_import_upload(
            uploaded=archive,
            cohort_name=data.validated_data.get("cohort_name") or None,
            user=request.user,
        )
        code = status.HTTP_201_CREATED
        if run.status == ImportRun.Status.FAILED:
            full = run.error.startswith(NO_SPACE)
            code = (
                status.HTTP_507_INSUFFICIENT_STORAGE
                if full
                else status.HTTP_422_UNPROCESSABLE_ENTITY
            )
        return Response(
            ImportRunDetailSerializer(run, context={"request": request}).data, status=code
        )
