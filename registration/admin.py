from django.contrib import admin

from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun, RegistrationJob


class CaseInline(admin.TabularInline):
    model = Case
    fields = ["case_code", "reference_pirads", "cspca", "synthetic"]
    extra = 0
    show_change_link = True


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ["name", "synthetic", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [CaseInline]


class SeriesInline(admin.TabularInline):
    model = ImageSeries
    fk_name = "case"
    fields = ("modality", "kind", "model_key", "shape", "series_description", "source_format")
    readonly_fields = (
        "modality",
        "kind",
        "model_key",
        "shape",
        "series_description",
        "source_format",
    )
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["case_code", "cohort", "reference_pirads", "cspca", "isup_grade", "synthetic"]
    list_filter = ["cohort", "synthetic", "reference_pirads"]
    search_fields = ["case_code"]
    # The pseudonymisation key and the input fingerprint are never edited by hand.
    readonly_fields = ["source_fingerprint", "created_at"]
    exclude = ["deid_key"]
    inlines = [SeriesInline]


@admin.register(ImageSeries)
class ImageSeriesAdmin(admin.ModelAdmin):
    list_display = ["__str__", "modality", "kind", "model_key", "source_format", "created_at"]
    list_filter = ["modality", "kind", "source_format"]
    search_fields = ["case__case_code", "series_instance_uid"]
    raw_id_fields = ["case", "label_of"]
    readonly_fields = [
        "shape",
        "spacing",
        "direction",
        "origin",
        "affine",
        "frame_of_reference_uid",
        "study_instance_uid",
        "series_instance_uid",
        "nifti_path",
        "nifti_sha256",
    ]


@admin.register(DicomInstance)
class DicomInstanceAdmin(admin.ModelAdmin):
    list_display = ["sop_instance_uid", "series", "instance_number", "size_bytes"]
    search_fields = ["sop_instance_uid"]
    raw_id_fields = ["series"]
    readonly_fields = ["sop_instance_uid", "path", "sha256", "size_bytes"]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "source_name",
        "cohort",
        "status",
        "accepted",
        "rejected",
        "skipped",
        "started_at",
    ]
    list_filter = ["status"]
    readonly_fields = ["report", "error", "started_at", "finished_at"]


@admin.register(RegistrationJob)
class RegistrationJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "case", "method", "status", "stage", "progress", "attempt", "created_at"]
    list_filter = ["status", "method"]
    raw_id_fields = ["case", "registered_series", "created_by"]
    readonly_fields = ["traceback", "metrics", "stage_seconds", "heartbeat_at", "worker_id"]
