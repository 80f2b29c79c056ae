from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from readerstudy import selectors
from readerstudy.models import (
    Arm,
    Assignment,
    AssignmentSeries,
    AuditEvent,
    Read,
    ReaderStudy,
    Snapshot,
    StudyReader,
)


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0


class StudyReaderInline(admin.TabularInline):
    model = StudyReader
    extra = 0


@admin.register(ReaderStudy)
class ReaderStudyAdmin(admin.ModelAdmin):
    list_display = ["name", "cohort", "status", "washout_days", "reference_standard", "created_at"]
    list_filter = ["status"]
    inlines = [ArmInline, StudyReaderInline]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["study", "reader", "arm", "session", "position", "reading_code", "case"]
    list_filter = ["study", "arm__kind"]
    search_fields = ["reading_code"]


@admin.register(AssignmentSeries)
class AssignmentSeriesAdmin(admin.ModelAdmin):
    list_display = ["assignment", "role", "series", "series_uid"]


@admin.register(Read)
class ReadAdmin(admin.ModelAdmin):
    """Reads change only through the audited services; scores show once results are frozen."""

    list_display = ["assignment", "status", "active_seconds", "submitted_at"]
    list_filter = ["status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and selectors.study_results_visible(study=obj.assignment.study):
            return []
        return ["pirads", "zone", "side", "likert", "comment"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit events and snapshots are evidence: viewable, never edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "study", "user", "action", "assignment"]
    list_filter = ["action", "study"]


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["study", "created_at", "sha256"]
