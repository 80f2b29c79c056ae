"""Study design, worklist generation, washout, reads, audit and snapshots (service layer)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.factories import UserFactory
from readerstudy import read_services, selectors, services
from readerstudy.analysis import services as analysis_services
from readerstudy.models import (
    AppendOnlyError,
    Assignment,
    AssignmentSeries,
    AuditEvent,
    Read,
    ReaderStudy,
    Snapshot,
)
from readerstudy.serving import view_slice_uids
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db


def first_session(study: ReaderStudy, user) -> list[Assignment]:  # noqa: ANN001
    return list(
        Assignment.objects.filter(study=study, reader__user=user, session=1).order_by("position")
    )


def test_study_create_refuses_bad_design_and_writes_nothing(cohort, coordinator, junior, admin):
    with pytest.raises(ValidationError) as err:
        services.study_create(
            name="  ",
            cohort=cohort,
            created_by=coordinator,
            arm_kinds=["original", "warped"],
            readers=[junior, admin],
            washout_days=400,
        )
    messages = err.value.message_dict
    assert "name" in messages
    assert "warped" in " ".join(messages["arm_kinds"])
    assert "t_admin" in " ".join(messages["readers"])
    assert "washout_days" in messages
    assert not ReaderStudy.objects.exists()


def test_study_create_needs_a_coordinator(cohort, junior):
    with pytest.raises(PermissionDenied):
        services.study_create(
            name="x", cohort=cohort, created_by=junior, arm_kinds=["original"], readers=[junior]
        )


def test_worklists_fully_crossed_and_case_without_series_left_out_with_note(open_study):
    notes = open_study.generation_notes
    assert len(notes) == 1 and "SYN-C" in notes[0] and "registered T2" in notes[0]
    assignments = Assignment.objects.filter(study=open_study)
    # 2 readers × 3 arms × 2 readable cases
    assert assignments.count() == 12
    cells = Counter((a.reader_id, a.arm_id) for a in assignments)
    assert set(cells.values()) == {2}
    assert not assignments.filter(case__case_code="SYN-C").exists()
    codes = list(assignments.values_list("reading_code", flat=True))
    assert len(set(codes)) == len(codes)
    fused = assignments.filter(arm__kind="fused").first()
    assert set(fused.views.values_list("role", flat=True)) == {"primary", "underlay"}


def test_counterbalanced_arm_order_within_each_level(cohort, three_cases, coordinator):
    readers = [
        UserFactory(username=f"r{i}", role="reader", reader_level=level)
        for i, level in enumerate(["junior", "junior", "senior", "senior"])
    ]
    study = services.study_create(
        name="cb",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "registered"],
        readers=readers,
        washout_days=0,
        seed=5,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    first_arm = {}
    for reader in study.readers.select_related("user"):
        a = Assignment.objects.filter(reader=reader, session=1).select_related("arm").first()
        first_arm[reader.user.username] = a.arm.kind
    assert {first_arm["r0"], first_arm["r1"]} == {"original", "registered"}
    assert {first_arm["r2"], first_arm["r3"]} == {"original", "registered"}


def test_one_junior_one_senior_start_with_different_arms(open_study, junior, senior):
    first = {
        a.reader.user_id: a.arm.kind
        for a in Assignment.objects.filter(study=open_study, session=1).select_related("arm")
    }
    assert first[junior.pk] != first[senior.pk]


def _orders(study: ReaderStudy) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for a in Assignment.objects.filter(study=study).order_by("position"):
        out.setdefault((a.reader.pseudonym, a.arm.kind), []).append(a.case_id)
    return out


def test_positions_reproducible_from_seed_and_codes_fresh(cohort, coordinator, junior, senior):
    from tests.readerstudy.builders import case_with_series

    for n in range(6):
        case_with_series(cohort, f"SYN-{n}", registered=True, trus=False, seed=n)
    study = services.study_create(
        name="seeded",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "registered"],
        readers=[junior, senior],
        seed=99,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    first, codes_first = (
        _orders(study),
        set(study.assignments.values_list("reading_code", flat=True)),
    )
    services.study_worklists_generate(study=study, user=coordinator)
    assert _orders(study) == first
    assert codes_first != set(study.assignments.values_list("reading_code", flat=True))
    study.seed = 100
    study.save()
    services.study_worklists_generate(study=study, user=coordinator)
    assert _orders(study) != first
    # each reader × arm order is a permutation of the same cases
    assert all(sorted(v) == sorted(next(iter(first.values()))) for v in first.values())


def test_two_arms_of_one_patient_share_no_uid_or_code(open_study, junior):
    by_case: dict[int, list[Assignment]] = {}
    for a in Assignment.objects.filter(study=open_study, reader__user=junior):
        by_case.setdefault(a.case_id, []).append(a)
    for items in by_case.values():
        assert len({a.reading_code for a in items}) == len(items) == 3
        uid_sets = [
            set().union(
                *(set(v.uid_map.values()) | set(view_slice_uids(view=v)) for v in a.views.all())
            )
            for a in items
        ]
        stored = set().union(*(set(v.uid_map) for a in items for v in a.views.all()))
        for i, left in enumerate(uid_sets):
            assert not (left & stored)
            for right in uid_sets[i + 1 :]:
                assert not (left & right)


def test_washout_gates_the_next_session(open_study, junior, coordinator):
    open_study.washout_days = 2
    open_study.save()
    session1 = first_session(open_study, junior)
    session2 = list(Assignment.objects.filter(study=open_study, reader__user=junior, session=2))
    assert all(selectors.assignment_is_available(assignment=a) for a in session1)
    assert not any(selectors.assignment_is_available(assignment=a) for a in session2)
    for a in session1:
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=3)
    later = timezone.now() + timedelta(days=2, minutes=1)
    assert not selectors.assignment_is_available(assignment=session2[0])
    assert selectors.assignment_is_available(assignment=session2[0], now=later)
    state = selectors.reader_worklists(user=junior)[0]
    assert state.session == 2 and state.waiting and state.next_assignment is None


def test_zero_washout_opens_next_session_at_once(open_study, junior):
    for a in first_session(open_study, junior):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    state = selectors.reader_worklists(user=junior)[0]
    assert state.session == 2 and not state.waiting and state.next_assignment is not None


def test_draft_then_submit_accumulates_time_and_audits(open_study, junior):
    a = first_session(open_study, junior)[0]
    read_services.read_draft_save(assignment=a, user=junior, data={"pirads": 3}, active_seconds=4.5)
    read = read_services.read_draft_save(
        assignment=a, user=junior, data={"pirads": "4", "zone": "tz"}, active_seconds=2
    )
    assert read.status == "draft" and read.pirads == 4 and read.zone == "tz"
    with pytest.raises(ValidationError) as err:
        read_services.read_submit(assignment=a, user=junior, data={"pirads": 4}, active_seconds=1)
    assert {"zone", "side", "likert"} <= set(err.value.message_dict)
    read = read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1.5)
    assert read.status == "submitted" and read.submitted_at is not None
    # the refused submit credited nothing: the browser keeps that time and resends it
    assert read.active_seconds == pytest.approx(4.5 + 2 + 1.5)
    actions = list(AuditEvent.objects.filter(assignment=a).values_list("action", flat=True))
    assert actions == ["draft_save", "draft_save", "submit"]
    with pytest.raises(ValidationError, match="submitted"):
        read_services.read_draft_save(assignment=a, user=junior, data={"pirads": 1})


@pytest.mark.parametrize(
    "data",
    [
        {"pirads": 6},
        {"pirads": 0},
        {"likert": 8},
        {"zone": "cz"},
        {"side": "up"},
        {"pirads": "2.5"},
    ],
)
def test_out_of_range_scores_rejected_with_field_named(open_study, junior, data):
    a = first_session(open_study, junior)[0]
    with pytest.raises(ValidationError) as err:
        read_services.read_draft_save(assignment=a, user=junior, data=data)
    assert set(err.value.message_dict) == set(data)
    assert not Read.objects.filter(assignment=a).exclude(pirads=None).exists()


def test_negative_or_huge_time_is_not_credited(open_study, junior):
    a = first_session(open_study, junior)[0]
    read = read_services.read_draft_save(assignment=a, user=junior, data={}, active_seconds=-50)
    assert read.active_seconds == 0
    read = read_services.read_draft_save(assignment=a, user=junior, data={}, active_seconds=1e9)
    assert read.active_seconds == read_services.MAX_ACTIVE_SECONDS_PER_SAVE


def test_other_reader_cannot_write_my_read(open_study, junior, senior):
    a = first_session(open_study, junior)[0]
    with pytest.raises(PermissionDenied):
        read_services.read_draft_save(assignment=a, user=senior, data={"pirads": 2})


def test_reopen_by_coordinator_only_with_reason_and_audited(open_study, junior, coordinator):
    a = first_session(open_study, junior)[0]
    read = read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    with pytest.raises(PermissionDenied):
        read_services.read_reopen(read=read, user=junior, reason="oops")
    with pytest.raises(ValidationError):
        read_services.read_reopen(read=read, user=coordinator, reason="  ")
    read = read_services.read_reopen(read=read, user=coordinator, reason="reader asked")
    assert read.status == "draft"
    event = AuditEvent.objects.get(action="reopen")
    assert event.user == coordinator and event.details["reason"] == "reader asked"
    read = read_services.read_submit(
        assignment=a, user=junior, data=complete({"pirads": 2}), active_seconds=1
    )
    assert read.pirads == 2 and read.status == "submitted"


def test_database_constraints(open_study, junior):
    a = first_session(open_study, junior)[0]
    for bad in ({"pirads": 6}, {"likert": 0}, {"status": "submitted"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Read.objects.create(assignment=a, **bad)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            study=a.study,
            reader=a.reader,
            arm=a.arm,
            case=a.case,
            session=a.session,
            position=99,
            reading_code="ZZZZZZ",
            token="another-token",
        )


def test_audit_trail_is_append_only(open_study, junior):
    a = first_session(open_study, junior)[0]
    event = read_services.assignment_view_record(assignment=a, user=junior)
    event.details = {"edited": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(details={})
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).details == {}


def test_snapshot_hash_covers_submitted_reads_only(open_study, junior, coordinator):
    a, b = first_session(open_study, junior)[:2]
    read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=2)
    read_services.read_draft_save(assignment=b, user=junior, data={"pirads": 1})
    snap = analysis_services.snapshot_create(study=open_study, user=coordinator)
    canonical = json.dumps(snap.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert snap.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert [r["reading_code"] for r in snap.payload["reads"]] == [a.reading_code]
    row = snap.payload["reads"][0]
    assert row["case_code"] == a.case.case_code and row["pirads"] == 4 and row["arm"] == a.arm.kind
    assert selectors.study_results_visible(study=open_study)


def test_lock_freezes_reads_and_snapshots(open_study, junior, coordinator):
    a, b = first_session(open_study, junior)[:2]
    read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=2)
    assert not selectors.study_results_visible(study=open_study)
    snap = services.study_lock(study=open_study, user=coordinator)
    open_study.refresh_from_db()
    assert open_study.status == "locked" and Snapshot.objects.get() == snap
    assert selectors.study_results_visible(study=open_study)
    b = Assignment.objects.get(pk=b.pk)
    with pytest.raises(ValidationError):
        read_services.read_draft_save(assignment=b, user=junior, data={"pirads": 2})
    with pytest.raises(ValidationError):
        read_services.read_reopen(read=Read.objects.get(assignment=a), user=coordinator, reason="x")
    with pytest.raises(ValidationError):
        services.study_worklists_generate(study=open_study, user=coordinator)


def test_progress_counts_and_median_time(open_study, junior, coordinator):
    a, b = first_session(open_study, junior)
    read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=10)
    read_services.read_submit(assignment=b, user=junior, data=complete(), active_seconds=30)
    rows = selectors.study_progress(study=open_study)
    assert len(rows) == 6
    row = next(r for r in rows if r.reader.user == junior and r.session == 1)
    assert (row.read, row.total, row.median_seconds) == (2, 2, 20.0)
    assert row.last_activity is not None
    other = next(r for r in rows if r.reader.user != junior and r.session == 1)
    assert (other.read, other.median_seconds, other.last_activity) == (0, None, None)


def test_open_needs_worklists(cohort, three_cases, coordinator, junior):
    study = services.study_create(
        name="empty",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[junior],
    )
    with pytest.raises(ValidationError, match="Generate"):
        services.study_open(study=study, user=coordinator)
    assert AssignmentSeries.objects.count() == 0
