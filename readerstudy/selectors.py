"""Reader-study reads: what a reader may see now, worklist state, progress, results visibility.

Every reader-facing lookup goes through ``reader_assignment_get`` / ``reader_view_get``: they only
ever find the user's own assignments in an open study whose arm session has opened, and raise
``DoesNotExist`` otherwise, which views turn into 404 (never 403, which would confirm existence).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max, QuerySet
from django.utils import timezone

from accounts.models import User
from readerstudy.models import (
    Assignment,
    AssignmentSeries,
    AuditEvent,
    Read,
    ReaderStudy,
    Snapshot,
    StudyReader,
)


def reader_session_opens_at(*, reader: StudyReader, session: int) -> datetime | None:
    """When ``session`` opens for ``reader``; None while the previous session is unfinished.

    Session 1 opens with the study; session s opens ``washout_days`` after the reader's last
    submission in session s − 1, once every case of s − 1 has been submitted at least once.
    """
    study = reader.study
    if study.opened_at is None:
        return None
    if session <= 1:
        return study.opened_at
    previous = Assignment.objects.filter(reader=reader, session=session - 1)
    total = previous.count()
    if total == 0:
        return None
    submitted = Read.objects.filter(assignment__in=previous, submitted_at__isnull=False)
    if submitted.count() < total:
        return None
    last = submitted.aggregate(last=Max("submitted_at"))["last"]
    return last + timedelta(days=study.washout_days)


def assignment_is_available(*, assignment: Assignment, now: datetime | None = None) -> bool:
    if assignment.study.status != ReaderStudy.Status.OPEN:
        return False
    opens = reader_session_opens_at(reader=assignment.reader, session=assignment.session)
    return opens is not None and opens <= (now or timezone.now())


def reader_assignment_get(*, user: User, token: str) -> Assignment:
    assignment = Assignment.objects.select_related("study", "reader", "arm").get(
        token=token, reader__user=user
    )
    if not assignment_is_available(assignment=assignment):
        raise Assignment.DoesNotExist("not available")
    return assignment


def reader_view_get(*, user: User, token: str) -> AssignmentSeries:
    view = AssignmentSeries.objects.select_related(
        "assignment__study", "assignment__reader", "series"
    ).get(token=token, assignment__reader__user=user)
    if not assignment_is_available(assignment=view.assignment):
        raise AssignmentSeries.DoesNotExist("not available")
    return view


def reader_view_by_series_uid(*, user: User, series_uid: str) -> AssignmentSeries:
    view = AssignmentSeries.objects.select_related(
        "assignment__study", "assignment__reader__study", "series"
    ).get(series_uid=series_uid, assignment__reader__user=user)
    if not assignment_is_available(assignment=view.assignment):
        raise AssignmentSeries.DoesNotExist("not available")
    return view


@dataclass
class WorklistState:
    """A reader's standing in one study, in words a reader may see (no arm, no case code)."""

    study: ReaderStudy
    session: int
    sessions: int
    total: int
    done: int
    opens_at: datetime | None
    finished: bool
    next_assignment: Assignment | None
    done_items: list[Assignment] = field(default_factory=list)
    todo_items: list[Assignment] = field(default_factory=list)
    # Submitted reads of the sessions before this one: listed (codes only, no link, so a reader
    # cannot look back at the other arm's images of a patient during the washout design).
    earlier_done: list[Assignment] = field(default_factory=list)

    @property
    def next_is_draft(self) -> bool:
        read = getattr(self.next_assignment, "read", None) if self.next_assignment else None
        return read is not None and read.status == Read.Status.DRAFT

    @property
    def waiting(self) -> bool:
        return not self.finished and (self.opens_at is None or self.opens_at > timezone.now())

    @property
    def current_number(self) -> int:
        return min(self.done + 1, self.total)


def reader_worklists(*, user: User) -> list[WorklistState]:
    states = []
    memberships = StudyReader.objects.filter(
        user=user, study__status=ReaderStudy.Status.OPEN
    ).select_related("study")
    for reader in memberships:
        assignments = list(
            Assignment.objects.filter(reader=reader)
            .select_related("read")
            .order_by("session", "position")
        )
        if not assignments:
            continue
        sessions = max(a.session for a in assignments)

        def submitted(a: Assignment) -> bool:
            read = getattr(a, "read", None)
            return read is not None and read.status == Read.Status.SUBMITTED

        unfinished = [a for a in assignments if not submitted(a)]
        if not unfinished:
            last = [a for a in assignments if a.session == sessions]
            states.append(
                WorklistState(
                    study=reader.study,
                    session=sessions,
                    sessions=sessions,
                    total=len(last),
                    done=len(last),
                    opens_at=None,
                    finished=True,
                    next_assignment=None,
                    done_items=last,
                    earlier_done=[a for a in assignments if a.session < sessions],
                )
            )
            continue
        session = unfinished[0].session
        current = [a for a in assignments if a.session == session]
        opens = reader_session_opens_at(reader=reader, session=session)
        available = opens is not None and opens <= timezone.now()
        done_items = [a for a in current if submitted(a)]
        todo_items = [a for a in current if not submitted(a)]
        states.append(
            WorklistState(
                study=reader.study,
                session=session,
                sessions=sessions,
                total=len(current),
                done=len(done_items),
                opens_at=opens,
                finished=False,
                next_assignment=todo_items[0] if available else None,
                done_items=done_items if available else [],
                todo_items=todo_items if available else [],
                earlier_done=[a for a in assignments if a.session < session],
            )
        )
    return states


def reader_next_assignment(*, assignment: Assignment) -> Assignment | None:
    """The reader's next unsubmitted case in the same session, if any is open."""
    candidates = (
        Assignment.objects.filter(reader=assignment.reader, session=assignment.session)
        .exclude(read__status=Read.Status.SUBMITTED)
        .exclude(pk=assignment.pk)
        .select_related("study", "reader")
        .order_by("position")
    )
    for candidate in candidates:
        if assignment_is_available(assignment=candidate):
            return candidate
    return None


# --- coordinator -----------------------------------------------------------------------------------


def study_list(*, user: User) -> QuerySet[ReaderStudy]:
    return ReaderStudy.objects.select_related("cohort").order_by("-created_at")


@dataclass(frozen=True)
class ProgressRow:
    reader: StudyReader
    arm_kind: str
    session: int
    read: int
    total: int
    median_seconds: float | None
    last_activity: datetime | None


def study_progress(*, study: ReaderStudy) -> list[ProgressRow]:
    """Per reader and arm: submitted/total, median active seconds per submitted case, last activity.

    Progress shows no scores, so coordinators can watch it while results stay hidden.
    """
    rows = []
    last_by_assignment: dict[int, datetime] = dict(
        AuditEvent.objects.filter(study=study, assignment__isnull=False)
        .values("assignment")
        .annotate(last=Max("at"))
        .values_list("assignment", "last")
    )
    for reader in study.readers.select_related("user").order_by("pseudonym"):
        assignments = list(
            Assignment.objects.filter(reader=reader).select_related("arm", "read").order_by("pk")
        )
        by_arm: dict[int, list[Assignment]] = {}
        for a in assignments:
            by_arm.setdefault(a.arm_id, []).append(a)
        for arm_pk in reader.arm_order or list(by_arm):
            items = by_arm.get(arm_pk, [])
            if not items:
                continue
            reads = [
                a.read
                for a in items
                if getattr(a, "read", None) is not None and a.read.status == Read.Status.SUBMITTED
            ]
            times = [r.active_seconds for r in reads]
            activity = [last_by_assignment[a.pk] for a in items if a.pk in last_by_assignment]
            rows.append(
                ProgressRow(
                    reader=reader,
                    arm_kind=items[0].arm.kind,
                    session=items[0].session,
                    read=len(reads),
                    total=len(items),
                    median_seconds=statistics.median(times) if times else None,
                    last_activity=max(activity) if activity else None,
                )
            )
    return rows


def study_results_visible(*, study: ReaderStudy) -> bool:
    """Scores are shown to coordinators only once frozen: a locked study or a snapshot."""
    return study.status == ReaderStudy.Status.LOCKED or study.snapshots.exists()


def study_latest_snapshot(*, study: ReaderStudy) -> Snapshot | None:
    return study.snapshots.order_by("-created_at", "-pk").first()


def study_reads_for_coordinator(*, study: ReaderStudy) -> QuerySet[Read]:
    """Reads with their status and timing; views must not show scores unless results are visible."""
    return (
        Read.objects.filter(assignment__study=study)
        .select_related("assignment__reader__user", "assignment__arm", "assignment__case")
        .order_by("assignment__reader__pseudonym", "assignment__session", "assignment__position")
    )
