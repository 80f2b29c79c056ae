"""The job body the queue task calls: claim the job, load its inputs, call
`inference.pipeline.register_case`, write the outputs, record the outcome.

The worker proves it still owns the job (status running, its worker id, its attempt) at every stage
boundary and with every progress write; a job taken over by another worker writes nothing.
"""

from __future__ import annotations

import logging
import time
import traceback as tb
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from registration import storage
from registration.jobs import worker
from registration.jobs.inputs import JobInputs, job_inputs_load
from registration.jobs.outputs import (
    job_outputs_commit,
    job_outputs_write_tmp,
    json_number,
    result_check,
)
from registration.jobs.state import (
    JobCancelled,
    JobInputError,
    JobLost,
    Status,
    job_transition,
)
from registration.models import RegistrationJob

logger = logging.getLogger(__name__)

# Where each stage sits on the progress bar (percent at its start).
PROGRESS_LOAD = 2.0
PROGRESS_INFER_START = 5.0
PROGRESS_INFER_END = 85.0
PROGRESS_WRITE = 88.0


class _Progress:
    """Stage/percent reporter that also enforces ownership and cancellation between stages."""

    def __init__(self, *, job: RegistrationJob, worker_id: str, heartbeat: Any) -> None:
        self.job_pk = job.pk
        self.worker_id = worker_id
        self.attempt = job.attempt
        self.heartbeat = heartbeat
        self.stage = ""
        self._last_write = 0.0
        self.stage_started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}

    def owned(self) -> QuerySet[RegistrationJob]:
        return RegistrationJob.objects.filter(
            pk=self.job_pk, status=Status.RUNNING, worker_id=self.worker_id, attempt=self.attempt
        )

    def check(self) -> None:
        if self.heartbeat.lost.is_set():
            raise JobLost()
        row = self.owned().values_list("cancel_requested", flat=True).first()
        if row is None:
            raise JobLost()
        if row or self.heartbeat.cancel_requested.is_set():
            raise JobCancelled()

    def set(self, stage: str, percent: float, *, force: bool = False) -> None:
        now = time.monotonic()
        new_stage = stage != self.stage
        if new_stage:
            if self.stage:
                self.stage_seconds[self.stage] = round(now - self.stage_started, 3)
            self.stage, self.stage_started = stage, now
        if not (new_stage or force or now - self._last_write >= 0.5):
            return
        self._last_write = now
        percent = float(min(100.0, max(0.0, percent)))
        if (
            self.owned().update(stage=stage[:40], progress=percent, heartbeat_at=timezone.now())
            == 0
        ):
            raise JobLost()

    def finish_stage(self) -> None:
        if self.stage:
            self.stage_seconds[self.stage] = round(time.monotonic() - self.stage_started, 3)
            self.stage = ""


def job_claim(*, job_pk: int, worker_id: str, device: str = "") -> RegistrationJob | None:
    """Take a queued job for this worker: exactly one concurrent caller gets it."""
    job = RegistrationJob.objects.select_related("case").filter(pk=job_pk).first()
    if job is None or job.status != Status.QUEUED:
        return None
    if job.cancel_requested:
        job_transition(job=job, to=Status.CANCELLED, error="Cancelled before it started.")
        return None
    now = timezone.now()
    won = job_transition(
        job=job,
        to=Status.RUNNING,
        expect={"attempt": job.attempt, "cancel_requested": False},
        attempt=F("attempt") + 1,
        worker_id=worker_id[:200],
        device=device[:16],
        started_at=now,
        heartbeat_at=now,
        stage="starting",
        progress=0.0,
        error="",
        traceback="",
    )
    return job if won else None


def _fail(job: RegistrationJob, worker_id: str, message: str, trace: str) -> None:
    job_transition(
        job=job,
        to=Status.FAILED,
        expect={"worker_id": worker_id, "attempt": job.attempt},
        error=message[:2000],
        traceback=trace,
    )


def _register(
    *, job: RegistrationJob, worker_id: str, inputs: JobInputs, progress: _Progress
) -> tuple[Any, float]:
    """``register_case`` with its progress and cancellation wired to the job row, its errors
    worded for the job page. Returns the result and the seconds the call took."""
    # After the claim, so the first job's torch import counts as run time, not queue time.
    try:
        device = worker.device_for(job.method)
    except Exception:  # no usable torch/CUDA: run on CPU rather than not at all
        device = "cpu"
    progress.owned().update(device=device[:16])
    config = worker.registration_config(job.method, device)
    progress.check()

    from inference.pipeline import RegistrationCancelled, RegistrationFailed, register_case
    from inference.registry import CheckpointError

    def on_progress(stage: str, fraction: float) -> None:
        span = PROGRESS_INFER_END - PROGRESS_INFER_START
        progress.set(stage, PROGRESS_INFER_START + span * float(fraction))

    def should_cancel() -> bool:
        worker.stage_delay()
        try:
            progress.check()
        except JobCancelled:
            return True
        return False

    code = job.case.case_code
    t0 = time.monotonic()
    try:
        result = register_case(
            mr=inputs.mr,
            mr_affine=inputs.mr_affine,
            us=inputs.us,
            us_affine=inputs.us_affine,
            mr_label=inputs.mr_label,
            us_label=inputs.us_label,
            mr_landmarks=inputs.mr_landmarks,
            us_landmarks=inputs.us_landmarks,
            config=config,
            progress=on_progress,
            should_cancel=should_cancel,
        )
    except RegistrationCancelled as exc:
        progress.check()  # JobLost takes precedence over a cancel
        raise JobCancelled() from exc
    except CheckpointError as exc:
        raise JobInputError(
            f"No usable trained model for method {job.method!r} is installed on worker "
            f"{worker_id} ({exc}). Choose another method or install the checkpoint."
        ) from exc
    except RegistrationFailed as exc:
        raise JobInputError(f"Registration of case {code} failed: {exc}") from exc
    except ValueError as exc:
        raise JobInputError(f"The images of case {code} cannot be registered: {exc}") from exc
    return result, round(time.monotonic() - t0, 3)


def _job_body(*, job: RegistrationJob, worker_id: str, progress: _Progress, tmp: Path) -> None:
    """Load, register, write, commit; every stage boundary checks ownership and cancellation."""
    progress.set("loading images", PROGRESS_LOAD, force=True)
    worker.stage_delay()
    progress.check()
    inputs = job_inputs_load(case=job.case)
    progress.set("loading model", PROGRESS_INFER_START, force=True)
    result, seconds = _register(job=job, worker_id=worker_id, inputs=inputs, progress=progress)
    progress.finish_stage()
    stage_seconds = dict(json_number(dict(getattr(result, "stage_seconds", {}) or {})))
    stage_seconds.setdefault("registration", seconds)
    result_check(case=job.case, result=result)

    progress.set("writing outputs", PROGRESS_WRITE, force=True)
    t1 = time.monotonic()
    tmp.mkdir(parents=True)
    written = job_outputs_write_tmp(job=job, inputs=inputs, result=result, tmp=tmp)
    worker.stage_delay()
    progress.check()
    stage_seconds["writing outputs"] = round(time.monotonic() - t1, 3)
    for k, v in progress.stage_seconds.items():
        stage_seconds.setdefault(k, v)
    job_outputs_commit(
        job=job,
        worker_id=worker_id,
        inputs=inputs,
        result=result,
        tmp=tmp,
        written=written,
        stage_seconds=stage_seconds,
    )


def job_run(*, job_pk: int, worker_id: str) -> str:
    """The task body: claim, register, write outputs atomically, record the outcome.

    Returns the final status (or ``skipped`` when another worker had the job). Never raises for a
    job-level problem: those end the job failed with a message, and the queue moves on.
    """
    job = job_claim(job_pk=job_pk, worker_id=worker_id)
    if job is None:
        return "skipped"
    heartbeat = worker.Heartbeat(
        job_pk=job.pk,
        worker_id=worker_id,
        attempt=job.attempt,
        interval=float(settings.MRITRUS_HEARTBEAT_SECONDS),
    )
    heartbeat.start()
    progress = _Progress(job=job, worker_id=worker_id, heartbeat=heartbeat)
    tmp = storage.tmp_root() / f"{storage.job_attempt_prefix(job)}{uuid.uuid4().hex[:8]}"
    try:
        _job_body(job=job, worker_id=worker_id, progress=progress, tmp=tmp)
        return str(Status.SUCCEEDED)
    except JobLost:
        logger.warning("job %s was taken over by another worker; %s stops", job.pk, worker_id)
        return "lost"
    except JobCancelled:
        job_transition(
            job=job,
            to=Status.CANCELLED,
            expect={"worker_id": worker_id, "attempt": job.attempt},
            error="Cancelled by a coordinator.",
        )
        return str(Status.CANCELLED)
    except JobInputError as exc:
        _fail(job, worker_id, str(exc), tb.format_exc())
        return str(Status.FAILED)
    except Exception as exc:
        logger.exception("job %s failed", job.pk)
        stage = progress.stage or "start-up"
        _fail(
            job,
            worker_id,
            f"Registration of case {job.case.case_code} failed while {stage}: "
            f"{type(exc).__name__}: {exc}",
            tb.format_exc(),
        )
        return str(Status.FAILED)
    finally:
        heartbeat.stop()
        storage.tree_remove(tmp)
