"""Cohort → Case → ImageSeries → DicomInstance, import runs, and registration jobs.

Rules that must hold whatever code writes the rows are database constraints here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inference.methods import DEFAULT_METHOD


class Cohort(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    synthetic = models.BooleanField(
        default=False, help_text="True when any case is simulated; shown in every view and export."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"
        BILATERAL = "bilateral", "Bilateral"
        NONE = "none", "None"

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="cases")
    case_code = models.CharField(max_length=32, help_text="Pseudonymous code, never a patient ID.")
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    # Null only for DICOM-only imports (no manifest): the coordinator fills it in before a study.
    reference_pirads = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Clinical PI-RADS 1–5 (empty until known)."
    )
    cspca = models.BooleanField(
        null=True, blank=True, help_text="Clinically significant cancer at biopsy."
    )
    isup_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    gleason = models.CharField(max_length=16, blank=True)
    lesion_side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    synthetic = models.BooleanField(default=False)
    # Secret per-case pseudonymisation seed: dates are shifted and UIDs remapped from it.
    deid_key = models.CharField(max_length=64, editable=False)
    source_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hash of the imported input, to make re-imports no-ops.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cohort", "case_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["cohort", "case_code"], name="case_code_unique_in_cohort"
            ),
            models.CheckConstraint(
                condition=Q(reference_pirads__isnull=True)
                | (Q(reference_pirads__gte=1) & Q(reference_pirads__lte=5)),
                name="case_reference_pirads_1_5",
            ),
            models.CheckConstraint(
                condition=Q(isup_grade__isnull=True) | Q(isup_grade__lte=5),
                name="case_isup_grade_0_5",
            ),
            models.CheckConstraint(
                condition=Q(age__isnull=True) | (Q(age__gte=18) & Q(age__lte=120)),
                name="case_age_18_120",
            ),
            models.CheckConstraint(
                condition=Q(lesion_side__in=["", "left", "right", "bilateral", "none"]),
                name="case_lesion_side_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cohort.name}/{self.case_code}"


class ImageSeries(models.Model):
    class Modality(models.TextChoices):
        MR_T2 = "MR_T2", "MR T2"
        US = "US", "TRUS"

    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original"
        REGISTERED = "registered", "Registered"
        LABEL = "label", "Gland label"
        LANDMARKS = "landmarks", "Landmarks"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=8, choices=Modality.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    label_of = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="labels",
        help_text="For labels and landmarks: the image series whose grid they share.",
    )
    model_key = models.CharField(
        max_length=100, blank=True, help_text="For registered series: the model that produced it."
    )
    # Geometry (NIfTI RAS+ voxel order i, j, k; see docs/architecture.md)
    shape = models.JSONField(help_text="[ni, nj, nk]")
    spacing = models.JSONField(help_text="[si, sj, sk] in mm")
    direction = models.JSONField(help_text="3×3 direction cosines (columns i, j, k), RAS")
    origin = models.JSONField(help_text="RAS world position of voxel (0, 0, 0) in mm")
    affine = models.JSONField(help_text="4×4 RAS affine")
    frame_of_reference_uid = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64, unique=True)
    series_description = models.CharField(max_length=64, blank=True)
    nifti_path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    nifti_sha256 = models.CharField(max_length=64)
    source = models.TextField(blank=True, help_text="Where it came from (relative input path).")
    source_format = models.CharField(max_length=16, blank=True)  # dicom / nifti / seg / generated
    import_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "modality", "kind", "pk"]
        verbose_name_plural = "image series"
        constraints = [
            models.UniqueConstraint(
                fields=["case", "modality"],
                condition=Q(kind="original"),
                name="one_original_series_per_modality",
            ),
            models.UniqueConstraint(
                fields=["case", "modality", "model_key"],
                condition=Q(kind="registered"),
                name="one_registered_series_per_case_and_model",
            ),
            models.CheckConstraint(
                condition=Q(modality__in=["MR_T2", "US"]), name="series_modality_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["original", "registered", "label", "landmarks"]),
                name="series_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case} {self.modality} {self.kind}"


class DicomInstance(models.Model):
    """One stored DICOM file (one slice) serving an ImageSeries."""

    series = models.ForeignKey(ImageSeries, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    instance_number = models.PositiveIntegerField()
    path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()

    class Meta:
        ordering = ["series", "instance_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "instance_number"], name="instance_number_unique_in_series"
            )
        ]

    def __str__(self) -> str:
        return f"{self.series} #{self.instance_number}"


class ImportRun(models.Model):
    """One cohort import (web upload or command) and its per-case report."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    cohort = models.ForeignKey(
        Cohort, on_delete=models.CASCADE, related_name="imports", null=True, blank=True
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source_name = models.CharField(max_length=300)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    report = models.JSONField(
        default=dict,
        help_text="{'cases': [{'case_code', 'status', 'reasons': [...]}], 'notes': [...]}",
    )
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"import {self.pk} {self.source_name} ({self.status})"


class RegistrationJob(models.Model):
    """Bookkeeping of one registration of one case; the queue only carries our primary key."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # A worker owns, or will own, an active job: its case gets no second job for that method and
    # its folders are never taken for orphans (the same set as the constraint below).
    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="registration_jobs")
    method = models.CharField(max_length=32, default=DEFAULT_METHOD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=40, blank=True)
    progress = models.FloatField(default=0.0)
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=16, blank=True)
    task_result_id = models.CharField(max_length=64, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_checkpoint = models.CharField(max_length=200, blank=True)
    model_sha256 = models.CharField(max_length=64, blank=True)
    model_synthetic_training = models.BooleanField(
        default=False, help_text="The network (or segmenter) used was trained on simulated data."
    )
    code_version = models.CharField(max_length=64, blank=True)
    stage_seconds = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    metrics_basis = models.CharField(
        max_length=300,
        blank=True,
        help_text="What the metrics were measured against (given or segmented gland labels).",
    )
    warnings = models.JSONField(
        default=list, blank=True, help_text="Plausibility warnings of a registration that ran."
    )
    error = models.TextField(blank=True, help_text="Short message for coordinators.")
    traceback = models.TextField(blank=True, help_text="For admins.")
    registered_series = models.ForeignKey(
        ImageSeries, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    output_dir = models.CharField(max_length=500, blank=True, help_text="Relative to MEDIA_ROOT.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=100), name="job_progress_0_100"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="job_status_valid",
            ),
            # At most one active job per case and method: "register all" never double-queues.
            models.UniqueConstraint(
                fields=["case", "method"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_job_per_case_and_method",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.case} {self.status}"
