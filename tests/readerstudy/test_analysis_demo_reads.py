"""The demo filler: SYNTHETIC reads through the reading service, refused on real cohorts."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from readerstudy.analysis.services import analysis_run
from readerstudy.models import AuditEvent, Read
from tests.readerstudy.analysis_study import analysis_study_build


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _all_drafts(n_readers: int, n_cases: int) -> set[tuple[int, str, int]]:
    return {
        (r, arm, c)
        for r in range(n_readers)
        for arm in ("original", "registered")
        for c in range(n_cases)
    }


def test_fills_a_synthetic_study_and_snapshots_it(db, coordinator) -> None:  # noqa: ANN001
    study = analysis_study_build(
        name="Demo-like", coordinator=coordinator, n_cases=12, skip=_all_drafts(2, 12)
    )
    assert not Read.objects.filter(assignment__study=study, status="submitted").exists()
    call_command("analysis_demo_reads", "Demo-like", "--snapshot", "--seed", "3")
    reads = Read.objects.filter(assignment__study=study)
    assert reads.count() == 2 * 2 * 12
    assert set(reads.values_list("status", flat=True)) == {"submitted"}
    assert set(reads.values_list("comment", flat=True)) == {"SYNTHETIC demo read"}
    assert AuditEvent.objects.filter(study=study, action="submit").count() == 48
    results = analysis_run(snapshot=study.snapshots.get())
    assert results["synthetic"] is True
    assert len(results["per_reader_arm"]) == 4


def test_refuses_a_real_cohort(db, coordinator) -> None:  # noqa: ANN001
    analysis_study_build(
        name="Real one", coordinator=coordinator, n_cases=6, synthetic=False, skip=_all_drafts(2, 6)
    )
    with pytest.raises(CommandError, match="not flagged synthetic"):
        call_command("analysis_demo_reads", "Real one")
    assert not Read.objects.filter(status="submitted", assignment__study__name="Real one").exists()
