"""DRF serializers of the reader-study API (``readerstudy.api``).

A reader's serializers carry no arm, case code or reference; a coordinator sees scores only once
the study is frozen (``CoordinatorReadSerializer`` reads them from the snapshot in its context).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import User
from readerstudy.models import Arm, Assignment, Read, ReaderStudy, StudyReader
from registration.models import Cohort


class StudyReaderSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    reader_level = serializers.CharField(source="user.reader_level", read_only=True)
    years_experience = serializers.IntegerField(source="user.years_experience", read_only=True)
    arm_order = serializers.SerializerMethodField()

    class Meta:
        model = StudyReader
        fields = ["id", "pseudonym", "username", "reader_level", "years_experience", "arm_order"]

    def get_arm_order(self, obj: StudyReader) -> list[str]:
        kinds = dict(obj.study.arms.values_list("pk", "kind"))
        return [kinds[pk] for pk in obj.arm_order if pk in kinds]


class StudySerializer(serializers.ModelSerializer):
    arms = serializers.SerializerMethodField()
    readers = StudyReaderSerializer(many=True, read_only=True)

    class Meta:
        model = ReaderStudy
        fields = [
            "id",
            "name",
            "cohort",
            "status",
            "washout_days",
            "seed",
            "reference_standard",
            "mark_required_from",
            "arms",
            "readers",
            "generation_notes",
            "created_at",
            "opened_at",
            "locked_at",
        ]
        read_only_fields = fields

    def get_arms(self, obj: ReaderStudy) -> list[str]:
        return [arm.kind for arm in obj.arms.order_by("index")]


class StudyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    cohort = serializers.PrimaryKeyRelatedField(queryset=Cohort.objects.all())
    arm_kinds = serializers.ListField(child=serializers.ChoiceField(choices=Arm.Kind.choices))
    readers = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(role=User.Role.READER), many=True
    )
    washout_days = serializers.IntegerField(min_value=0, max_value=365, default=28)
    seed = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    reference_standard = serializers.ChoiceField(
        choices=ReaderStudy.ReferenceStandard.choices, default="pirads"
    )
    model_key = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ProgressSerializer(serializers.Serializer):
    reader = serializers.CharField(source="reader.pseudonym")
    reader_level = serializers.CharField(source="reader.user.reader_level")
    arm = serializers.CharField(source="arm_kind")
    session = serializers.IntegerField()
    read = serializers.IntegerField()
    total = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    last_activity = serializers.DateTimeField(allow_null=True)


class SnapshotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    reads = serializers.SerializerMethodField()

    def get_reads(self, obj: Any) -> int:
        return len(obj.payload.get("reads", []))


class WorklistItemSerializer(serializers.ModelSerializer):
    """What a reader may know about one of their cases: no arm, case code or reference."""

    study = serializers.CharField(source="study.name")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["token", "study", "reading_code", "session", "position", "status"]

    def get_status(self, obj: Assignment) -> str:
        read = getattr(obj, "read", None)
        return read.status if read is not None else "todo"


class ScoresSerializer(serializers.Serializer):
    pirads = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    zone = serializers.ChoiceField(choices=Read.Zone.choices, required=False, allow_blank=True)
    side = serializers.ChoiceField(choices=Read.Side.choices, required=False, allow_blank=True)
    likert = serializers.IntegerField(min_value=1, max_value=7, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    # The index-lesion mark {"x", "y", "z", "slice"} in served mm (checked by the service).
    mark = serializers.JSONField(required=False, allow_null=True)
    active_seconds = serializers.FloatField(required=False, min_value=0, default=0)


class OwnReadSerializer(serializers.ModelSerializer):
    reading_code = serializers.CharField(source="assignment.reading_code", read_only=True)
    token = serializers.CharField(source="assignment.token", read_only=True)

    class Meta:
        model = Read
        fields = [
            "id",
            "token",
            "reading_code",
            "status",
            "pirads",
            "zone",
            "side",
            "likert",
            "comment",
            "mark_x",
            "mark_y",
            "mark_z",
            "mark_slice",
            "mark_diameter",
            "active_seconds",
            "started_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields


class CoordinatorReadSerializer(serializers.ModelSerializer):
    """Status and timing always; scores only once the study is locked or snapshotted."""

    study = serializers.IntegerField(source="assignment.study_id", read_only=True)
    reader = serializers.CharField(source="assignment.reader.pseudonym", read_only=True)
    reading_code = serializers.CharField(source="assignment.reading_code", read_only=True)
    case_code = serializers.CharField(source="assignment.case.case_code", read_only=True)
    arm = serializers.CharField(source="assignment.arm.kind", read_only=True)
    scores = serializers.SerializerMethodField()

    class Meta:
        model = Read
        fields = [
            "id",
            "study",
            "reader",
            "reading_code",
            "case_code",
            "arm",
            "status",
            "active_seconds",
            "started_at",
            "submitted_at",
            "scores",
        ]
        read_only_fields = fields

    def get_scores(self, obj: Read) -> dict[str, Any] | None:
        frozen = self.context.get("frozen", {}).get(obj.assignment.study_id)
        if frozen is None:
            return None
        row = frozen.get(obj.assignment.reading_code)
        if row is None:
            return None
        return {k: row[k] for k in ("pirads", "zone", "side", "likert", "comment")}


class ReopenSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
