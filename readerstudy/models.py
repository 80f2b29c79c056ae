"""Reader studies: design (study, arms, readers), worklists (assignments), reads, audit, snapshots.

Rules that must hold whatever code writes the rows are database constraints here; the audit trail
is append-only at the model and queryset level.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from registration.models import Case


class ReaderStudy(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        LOCKED = "locked", "Locked"

    class ReferenceStandard(models.TextChoices):
        PIRADS = "pirads", "Clinical PI-RADS (4–5 positive)"
        BIOPSY = "biopsy", "Biopsy (clinically significant cancer)"

    name = models.CharField(max_length=200, unique=True)
    cohort = models.ForeignKey(
        "registration.Cohort", on_delete=models.PROTECT, related_name="reader_studies"
    )
    washout_days = models.PositiveSmallIntegerField(default=28)
    seed = models.BigIntegerField(help_text="Randomisation seed: worklist orders derive from it.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    reference_standard = models.CharField(
        max_length=8, choices=ReferenceStandard.choices, default=ReferenceStandard.PIRADS
    )
    # Empty for studies made before lesion marks existed; the study form proposes 3.
    mark_required_from = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Score from which the reader must mark the lesion on the image (empty: never).",
    )
    generation_notes = models.JSONField(
        default=list,
        blank=True,
        help_text="Notes of the last worklist generation (cases left out).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "reader studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "locked"]), name="study_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(reference_standard__in=["pirads", "biopsy"]),
                name="study_reference_standard_valid",
            ),
            models.CheckConstraint(condition=Q(washout_days__lte=365), name="study_washout_0_365"),
            models.CheckConstraint(
                condition=Q(mark_required_from__isnull=True)
                | (Q(mark_required_from__gte=1) & Q(mark_required_from__lte=5)),
                name="study_mark_required_from_1_5",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Arm(models.Model):
    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original T2"
        REGISTERED = "registered", "Registered T2"
        FUSED = "fused", "Registered T2 fused over TRUS"

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="arms")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    index = models.PositiveSmallIntegerField(help_text="Order of the arm in the design (0-based).")
    model_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="Registered/fused arms: which registration model's series (empty: the newest).",
    )

    class Meta:
        ordering = ["study", "index"]
        constraints = [
            models.UniqueConstraint(fields=["study", "kind"], name="arm_kind_unique_in_study"),
            models.UniqueConstraint(fields=["study", "index"], name="arm_index_unique_in_study"),
            models.CheckConstraint(
                condition=Q(kind__in=["original", "registered", "fused"]), name="arm_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study} · {self.kind}"


class StudyReader(models.Model):
    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="readers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="study_memberships"
    )
    pseudonym = models.CharField(max_length=16, help_text="R1, R2, … used in exports.")
    # Arm primary keys in the order this reader reads them (counterbalanced at generation).
    arm_order = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["study", "pseudonym"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="reader_unique_in_study"),
            models.UniqueConstraint(
                fields=["study", "pseudonym"], name="reader_pseudonym_unique_in_study"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study} · {self.pseudonym}"


class Assignment(models.Model):
    """One case to read by one reader in one arm; the unit of the worklist and of blinding."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(StudyReader, on_delete=models.CASCADE, related_name="assignments")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="assignments")
    case = models.ForeignKey(
        "registration.Case", on_delete=models.PROTECT, related_name="reader_assignments"
    )
    session = models.PositiveSmallIntegerField(
        help_text="1-based: which arm this is for the reader."
    )
    position = models.PositiveIntegerField(help_text="1-based position in the reader's arm list.")
    reading_code = models.CharField(max_length=12, help_text="Random code shown to the reader.")
    token = models.CharField(max_length=40, unique=True, help_text="Opaque id used in reader URLs.")

    class Meta:
        ordering = ["reader", "session", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "reader", "arm", "case"], name="one_assignment_per_reader_arm_case"
            ),
            models.UniqueConstraint(
                fields=["reader", "arm", "position"], name="assignment_position_unique"
            ),
            models.UniqueConstraint(
                fields=["study", "reading_code"], name="reading_code_unique_in_study"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="assignment_position_ge_1"),
            models.CheckConstraint(condition=Q(session__gte=1), name="assignment_session_ge_1"),
        ]

    def __str__(self) -> str:
        return f"{self.reader.pseudonym} {self.reading_code}"


class AssignmentSeries(models.Model):
    """A series as one assignment sees it: an opaque token and its own fresh UIDs.

    ``uid_map`` maps every stored UID (study, series, frame of reference, SOP instances) to a
    random one made for this assignment, so two arms of one patient share no UID.
    """

    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        UNDERLAY = "underlay", "Underlay"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="views")
    series = models.ForeignKey(
        "registration.ImageSeries", on_delete=models.PROTECT, related_name="reader_views"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    token = models.CharField(max_length=40, unique=True)
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64, unique=True)
    uid_map = models.JSONField(default=dict)

    class Meta:
        ordering = ["assignment", "role"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "role"], name="one_view_per_role"),
            models.CheckConstraint(
                condition=Q(role__in=["primary", "underlay"]), name="view_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} {self.role}"


class Read(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    class Zone(models.TextChoices):
        PZ = "pz", "Peripheral zone"
        TZ = "tz", "Transition zone"
        NONE = "none", "None"

    # The same choices as the biopsy side, so side agreement compares like with like.
    Side = Case.Side

    # One read per reader × case × arm follows from one assignment per reader × arm × case.
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="read")
    pirads = models.PositiveSmallIntegerField(null=True, blank=True)
    zone = models.CharField(max_length=4, choices=Zone.choices, blank=True)
    side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    likert = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True, max_length=4000)
    # The index lesion as the reader clicked it: served patient mm (LPS, relative to the gland
    # centre of the display grid, readerstudy/display.py) and the display slice (0-based).
    mark_x = models.FloatField(null=True, blank=True)
    mark_y = models.FloatField(null=True, blank=True)
    mark_z = models.FloatField(null=True, blank=True)
    mark_slice = models.PositiveSmallIntegerField(null=True, blank=True)
    # Optional longest diameter on the mark's slice: {"a": [x, y, z], "b": [x, y, z], "mm": d}.
    mark_diameter = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    active_seconds = models.FloatField(default=0.0)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["assignment"]
        constraints = [
            models.CheckConstraint(
                condition=Q(pirads__isnull=True) | (Q(pirads__gte=1) & Q(pirads__lte=5)),
                name="read_pirads_1_5",
            ),
            models.CheckConstraint(
                condition=Q(likert__isnull=True) | (Q(likert__gte=1) & Q(likert__lte=7)),
                name="read_likert_1_7",
            ),
            models.CheckConstraint(
                condition=Q(zone__in=["", "pz", "tz", "none"]), name="read_zone_valid"
            ),
            models.CheckConstraint(
                condition=Q(side__in=["", "left", "right", "bilateral", "none"]),
                name="read_side_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "submitted"]), name="read_status_valid"
            ),
            models.CheckConstraint(condition=Q(active_seconds__gte=0), name="read_time_ge_0"),
            models.CheckConstraint(
                condition=(
                    Q(mark_x__isnull=True)
                    & Q(mark_y__isnull=True)
                    & Q(mark_z__isnull=True)
                    & Q(mark_slice__isnull=True)
                )
                | (
                    Q(mark_x__isnull=False)
                    & Q(mark_y__isnull=False)
                    & Q(mark_z__isnull=False)
                    & Q(mark_slice__isnull=False)
                ),
                name="read_mark_whole_or_none",
            ),
            models.CheckConstraint(
                condition=Q(status="draft")
                | (
                    Q(pirads__isnull=False)
                    & Q(likert__isnull=False)
                    & ~Q(zone="")
                    & ~Q(side="")
                    & Q(submitted_at__isnull=False)
                ),
                name="read_submitted_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"read {self.assignment} ({self.status})"


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("the audit trail is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit trail is append-only")


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        DRAFT_SAVE = "draft_save", "Draft saved"
        SUBMIT = "submit", "Submitted"
        REOPEN = "reopen", "Reopened"
        STUDY_OPEN = "study_open", "Study opened"
        STUDY_LOCK = "study_lock", "Study locked"
        WORKLISTS = "worklists", "Worklists generated"
        SNAPSHOT = "snapshot", "Snapshot taken"

    study = models.ForeignKey(ReaderStudy, on_delete=models.PROTECT, related_name="audit_events")
    assignment = models.ForeignKey(
        Assignment, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=12, choices=Action.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit trail is append-only")


class Snapshot(models.Model):
    """A frozen copy of a study's submitted reads; analysis runs on one, named by its hash."""

    study = models.ForeignKey(ReaderStudy, on_delete=models.PROTECT, related_name="snapshots")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sha256 = models.CharField(max_length=64)
    payload = models.JSONField(help_text="{'study': {...}, 'reads': [...]} as hashed.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"{self.study} snapshot {self.sha256[:12]}"
