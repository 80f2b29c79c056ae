"""Job services and the job body against the real storage service and the real `initial` pipeline
(numpy-only stand-in). All cases are SYNTHETIC."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from registration.jobs.recovery import jobs_requeue_stale
from registration.jobs.run import job_claim, job_run
from registration.jobs.services import job_cancel, job_create, job_retry, jobs_create_for_cohort
from registration.jobs.state import InvalidTransition, JobError, job_transition
from registration.models import ImageSeries, RegistrationJob
from registration.storage import job_output_dir
from tests.jobs.cases import US_SHAPE, case_make

pytestmark = pytest.mark.django_db

S = RegistrationJob.Status


def media() -> Path:
    return Path(settings.MEDIA_ROOT)


def tmp_entries() -> list[str]:
    tmp = media() / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def run(job: RegistrationJob, worker: str = "test-worker") -> str:
    out = job_run(job_pk=job.pk, worker_id=worker)
    job.refresh_from_db()
    return out


def registered(case, method: str = "initial"):  # noqa: ANN001, ANN201
    return ImageSeries.objects.filter(case=case, kind="registered", model_key=method)


def test_job_run_writes_every_output(case, coordinator):
    job = job_create(case=case, method="initial", user=coordinator)
    assert job.status == S.QUEUED and job.created_by == coordinator
    assert run(job) == "succeeded"
    assert job.status == S.SUCCEEDED and job.progress == 100 and job.attempt == 1
    assert job.stage == "done" and job.finished_at and job.device == "cpu"

    reg = registered(case).get()
    us = case.series.get(kind="original", modality="US")
    assert job.registered_series == reg
    assert reg.frame_of_reference_uid == us.frame_of_reference_uid
    assert reg.series_instance_uid != us.series_instance_uid
    assert "regist" not in reg.series_description.lower()
    img = nib.load(str(media() / reg.nifti_path))
    assert img.shape == US_SHAPE
    assert np.allclose(img.affine, np.asarray(us.affine), atol=1e-4)
    assert reg.instances.count() == US_SHAPE[2]
    label = ImageSeries.objects.get(label_of=reg, kind="label")
    assert np.asarray(nib.load(str(media() / label.nifti_path)).dataobj).any()

    out = media() / job.output_dir
    for name in (
        "displacement.nii.gz",
        "registered_mr.nii.gz",
        "warped_gland_label.nii.gz",
        "qc_checkerboard.png",
        "qc_contours.png",
        "metrics.json",
    ):
        assert (out / name).is_file(), name
    disp = nib.load(str(out / "displacement.nii.gz"))
    assert disp.shape == (*US_SHAPE, 3)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["synthetic"] is True and summary["case_code"] == "SYN001"

    m = job.metrics
    assert m["dsc_after"] > 0.8 and m["tre_after_mean"] < 2.5
    assert "hd95_after" in m and m["folding_fraction"] == 0.0
    assert "reference labels" in job.metrics_basis and job.warnings == []
    assert summary["metrics_basis"] == job.metrics_basis and len(summary["world"]) == 4
    assert {"initial", "metrics", "writing outputs"} <= set(job.stage_seconds)
    assert job.model_name == "initial-alignment" and job.code_version
    assert job.model_checkpoint == "" and job.model_synthetic_training is False
    assert tmp_entries() == []


def test_job_names_the_shipped_checkpoint_and_its_simulated_training(case):
    from inference.registry import checkpoint_resolve

    shipped = checkpoint_resolve(kind="rern")
    job = job_create(case=case, method="rern", user=None)
    assert run(job) == "succeeded"
    assert job.model_checkpoint == shipped.key and job.model_sha256 == shipped.sha256
    assert job.model_synthetic_training is True


def test_rerun_replaces_outputs_whole(case):
    job = job_create(case=case, method="initial")
    run(job)
    first_series = job.registered_series
    first_dir = media() / job.output_dir
    first_folder = (media() / first_series.nifti_path).parent

    again = job_create(case=case, method="initial")  # a second job for the same case+model
    assert run(again) == "succeeded"
    assert registered(case).count() == 1
    assert (
        ImageSeries.objects.filter(case=case, kind="label", label_of__kind="registered").count()
        == 1
    )
    assert not first_folder.exists() and not first_dir.exists()
    job.refresh_from_db()
    assert job.output_dir == "" and job.registered_series is None

    before = again.output_dir
    job_retry(job=again)  # "run again" on a succeeded job: its attempt counter restarts
    assert run(again) == "succeeded"
    assert again.output_dir != before and not (media() / before).exists()
    assert registered(case).count() == 1
    dirs = list((media() / again.output_dir).parent.iterdir())
    assert [d.name for d in dirs] == [Path(again.output_dir).name]


def test_job_runs_once_when_delivered_twice(case):
    job = job_create(case=case, method="initial")
    assert run(job, "w1") == "succeeded"
    assert run(job, "w2") == "skipped"
    assert job.attempt == 1 and job.worker_id == "w1"


def test_transitions_are_enforced_and_conditional(case):
    job = job_create(case=case, method="initial")
    with pytest.raises(InvalidTransition):
        job_transition(job=job, to=S.SUCCEEDED)
    stale = RegistrationJob.objects.get(pk=job.pk)
    assert job_transition(job=job, to=S.RUNNING, worker_id="a")
    # A second caller that still believes the job is queued loses, and sees the truth afterwards.
    assert not job_transition(job=stale, to=S.RUNNING, worker_id="b")
    assert stale.status == S.RUNNING and stale.worker_id == "a"
    with pytest.raises(InvalidTransition):
        job_transition(job=job, to=S.RUNNING)


def test_create_refuses_missing_trus_and_duplicates(cohort, case):
    no_trus = case_make(cohort, "NOTRUS", trus=False, labels=False, landmarks=False)
    with pytest.raises(JobError, match="NOTRUS has no TRUS image"):
        job_create(case=no_trus, method="initial")
    job_create(case=case, method="initial")
    with pytest.raises(JobError, match="already has a queued or running"):
        job_create(case=case, method="initial")
    with pytest.raises(JobError, match="Unknown registration method"):
        job_create(case=case, method="magic")


def test_register_all_skips_registered_active_and_incomplete(cohort):
    done = case_make(cohort, "DONE", seed=1)
    active = case_make(cohort, "ACTIVE", seed=2)
    todo = case_make(cohort, "TODO", seed=3)
    case_make(cohort, "NOTRUS", trus=False, labels=False, landmarks=False)
    run(job_create(case=done, method="initial"))
    job_create(case=active, method="initial")
    created = jobs_create_for_cohort(cohort=cohort, method="initial")
    assert [j.case for j in created] == [todo]
    assert jobs_create_for_cohort(cohort=cohort, method="initial") == []
    # Another method counts separately.
    assert len(jobs_create_for_cohort(cohort=cohort, method="io")) == 3


def test_enqueue_happens_on_commit(case, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = job_create(case=case, method="initial")
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.task_result_id and job.enqueued_at is not None


def test_cancel_queued_and_running(case, monkeypatch):
    job = job_create(case=case, method="initial")
    job_cancel(job=job)
    assert job.status == S.CANCELLED and run(job) == "skipped"
    with pytest.raises(JobError, match="nothing to cancel"):
        job_cancel(job=job)

    job_retry(job=job)
    assert job.status == S.QUEUED and job.attempt == 0

    from registration.jobs import worker

    def cancel_at_stage_boundary() -> None:
        running = RegistrationJob.objects.get(pk=job.pk)
        if running.status == S.RUNNING and running.stage not in ("loading images", "starting"):
            job_cancel(job=running)

    monkeypatch.setattr(worker, "stage_delay", cancel_at_stage_boundary)
    assert run(job) == "cancelled"
    assert job.status == S.CANCELLED and job.error == "Cancelled by a coordinator."
    assert not registered(case).exists() and tmp_entries() == []
    assert not (media() / f"cohorts/{case.cohort_id}/{case.pk}/registrations").exists()


def test_retry_after_failure_succeeds(case):
    job = job_create(case=case, method="initial")
    mr = case.series.get(kind="original", modality="MR_T2")
    path = media() / mr.nifti_path
    good = path.read_bytes()
    path.write_bytes(b"not a nifti file")
    assert run(job) == "failed"
    assert "MR T2 image of case SYN001 could not be read" in job.error and job.traceback
    with pytest.raises(JobError, match="still queued"):
        job_retry(job=job_create(case=case, method="io"))
    path.write_bytes(good)
    job_retry(job=job)
    assert job.error == "" and job.attempt == 0
    assert run(job) == "succeeded" and job.attempt == 1


def test_label_outside_the_image_fails_clearly_and_others_go_on(cohort, case):
    from tests.jobs.cases import MR_SHAPE

    outside = np.zeros(MR_SHAPE, np.uint8)
    outside[:3, :3, :2] = 1  # a corner of pure background
    bad = case_make(cohort, "BADLABEL", mr_label_override=outside, landmarks=False)
    bad_job = job_create(case=bad, method="initial")
    good_job = job_create(case=case, method="initial")
    assert run(bad_job) == "failed"
    assert bad_job.error.startswith(
        "Registration of case BADLABEL failed: The gland volumes disagree"
    )
    assert "mL in the MRI (given label)" in bad_job.error and bad_job.registered_series is None
    assert run(good_job) == "succeeded"
    assert not registered(bad).exists()

    empty = case_make(
        cohort, "EMPTY", mr_label_override=np.zeros(MR_SHAPE, np.uint8), landmarks=False
    )
    empty_job = job_create(case=empty, method="initial")
    assert run(empty_job) == "failed"
    assert (
        "MR T2 gland label of case EMPTY is empty: it does not overlap the image" in empty_job.error
    )


def test_nan_output_fails_and_writes_nothing(case, monkeypatch):
    import inference.pipeline as pipeline

    real = pipeline.register_case

    def with_nan(**kwargs):  # noqa: ANN003, ANN202
        result = real(**kwargs)  # the real registration, then one corrupted voxel
        result.displacement[0, 1, 1, 1] = np.nan
        return result

    monkeypatch.setattr(pipeline, "register_case", with_nan)
    job = job_create(case=case, method="initial")
    assert run(job) == "failed"
    assert "invalid values (NaN or infinite) in the displacement field" in job.error
    assert not registered(case).exists() and tmp_entries() == []
    assert job.output_dir == ""


def _fake_crash(job: RegistrationJob, worker: str = "dead-worker") -> Path:
    """Leave the job as a SIGKILLed worker would: running, old heartbeat, partial output."""
    assert job_claim(job_pk=job.pk, worker_id=worker) is not None
    job.refresh_from_db()
    old = timezone.now() - timedelta(seconds=settings.MRITRUS_HEARTBEAT_STALE_SECONDS + 5)
    RegistrationJob.objects.filter(pk=job.pk).update(heartbeat_at=old, stage="writing outputs")
    partial = media() / "tmp" / f"job{job.pk}-a{job.attempt}-deadbeef"
    partial.mkdir(parents=True)
    (partial / "displacement.nii.gz").write_bytes(b"half")
    moved = media() / job_output_dir(job, "deadbeef")
    moved.mkdir(parents=True)
    (moved / "metrics.json").write_text("{}")
    job.refresh_from_db()
    return moved


def test_stale_job_is_requeued_cleaned_and_finishes_once(case):
    job = job_create(case=case, method="initial")
    moved = _fake_crash(job)
    fresh = job_create(case=case_make(case.cohort, "FRESH", seed=5), method="initial")
    assert job_claim(job_pk=fresh.pk, worker_id="alive") is not None

    assert jobs_requeue_stale() == [(job.pk, "queued")]  # the fresh heartbeat is left alone
    job.refresh_from_db()
    assert job.status == S.QUEUED and "dead-worker stopped responding" in job.error
    assert tmp_entries() == [] and not moved.exists()
    assert jobs_requeue_stale() == []  # idempotent

    assert run(job, "second-worker") == "succeeded"
    assert job.attempt == 2 and job.worker_id == "second-worker"
    assert registered(case).count() == 1


def test_stale_job_fails_after_max_attempts(case, settings):
    settings.MRITRUS_JOB_MAX_ATTEMPTS = 2
    job = job_create(case=case, method="initial")
    _fake_crash(job)
    jobs_requeue_stale()
    job.refresh_from_db()
    _fake_crash(job)
    assert jobs_requeue_stale() == [(job.pk, "failed")]
    job.refresh_from_db()
    assert job.status == S.FAILED and job.attempt == 2
    assert "stopped responding 2 time(s)" in job.error and "gave up after 2 attempts" in job.error
    assert tmp_entries() == []


def test_jobs_recover_command(case, capsys):
    job = job_create(case=case, method="initial")
    _fake_crash(job)
    call_command("jobs_recover")
    job.refresh_from_db()
    assert job.status == S.QUEUED
    assert f"job {job.pk}: queued" in capsys.readouterr().out


def test_a_worker_that_lost_its_job_writes_nothing(case):
    from registration.jobs.worker import Heartbeat

    job = job_create(case=case, method="initial")
    job_claim(job_pk=job.pk, worker_id="slow")
    job.refresh_from_db()
    hb = Heartbeat(job_pk=job.pk, worker_id="slow", attempt=job.attempt, interval=60)
    hb.beat()
    assert not hb.lost.is_set()
    RegistrationJob.objects.filter(pk=job.pk).update(worker_id="other", attempt=2)
    hb.beat()
    assert hb.lost.is_set()
