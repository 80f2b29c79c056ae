"""Writes the web process makes on registration jobs: create (one case or a cohort), cancel, retry.

A new or re-queued job is handed to the queue by primary key once its transaction commits, so a
worker never looks for a row that is not there yet.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inference.methods import method_get, method_names
from registration.jobs.selectors import case_missing_inputs
from registration.jobs.state import ACTIVE, TERMINAL, JobError, Status, job_transition
from registration.jobs.tasks import registration_job_run
from registration.models import Case, Cohort, ImageSeries, RegistrationJob


def job_enqueue_on_commit(*, job: RegistrationJob) -> None:
    """Send ``job``'s key to the queue when the current transaction commits."""
    pk = job.pk

    def enqueue() -> None:
        result = registration_job_run.enqueue(job_pk=pk)
        RegistrationJob.objects.filter(pk=pk).update(
            task_result_id=str(result.id)[:64], enqueued_at=timezone.now()
        )

    transaction.on_commit(enqueue)


def _method_check(method: str) -> None:
    try:
        method_get(method)
    except ValueError:
        raise JobError(
            f"Unknown registration method {method!r}; choose one of {', '.join(method_names())}."
        ) from None


def job_method_default() -> str:
    """The method of "Register" / "Register all" when none is chosen (``MRITRUS_REGISTRATION_METHOD``)."""
    return str(settings.MRITRUS_REGISTRATION_METHOD)


def job_create(*, case: Case, method: str, user: Any = None) -> RegistrationJob:
    """Queue one registration of ``case`` with ``method``; the task is sent when the transaction
    commits."""
    _method_check(method)
    missing = case_missing_inputs(case=case)
    if missing:
        raise JobError(
            f"Case {case.case_code} has no {missing} image; registration needs both the MR T2 "
            "and the TRUS."
        )
    try:
        with transaction.atomic():
            job = RegistrationJob.objects.create(
                case=case,
                method=method,
                created_by=user if getattr(user, "pk", None) else None,
                max_attempts=int(settings.MRITRUS_JOB_MAX_ATTEMPTS),
            )
    except IntegrityError as exc:
        raise JobError(
            f"Case {case.case_code} already has a queued or running {method} job."
        ) from exc
    job_enqueue_on_commit(job=job)
    return job


def jobs_create_for_cohort(
    *, cohort: Cohort, method: str, user: Any = None
) -> list[RegistrationJob]:
    """Queue a job for every case of ``cohort`` that has both images, no registered series for this
    method and no active job. Returns the new jobs (possibly none)."""
    _method_check(method)
    cases = (
        cohort.cases.filter(
            series__kind=ImageSeries.Kind.ORIGINAL, series__modality=ImageSeries.Modality.US
        )
        .filter(series__kind=ImageSeries.Kind.ORIGINAL, series__modality=ImageSeries.Modality.MR_T2)
        .exclude(
            pk__in=ImageSeries.objects.filter(
                kind=ImageSeries.Kind.REGISTERED, model_key=method
            ).values("case_id")
        )
        .exclude(
            pk__in=RegistrationJob.objects.filter(method=method, status__in=ACTIVE).values(
                "case_id"
            )
        )
        .distinct()
        .order_by("case_code")
    )
    jobs = []
    for case in cases:
        try:
            jobs.append(job_create(case=case, method=method, user=user))
        except JobError:
            # Another request queued this case between our query and the insert: nothing to do.
            continue
    return jobs


def job_cancel(*, job: RegistrationJob, user: Any = None) -> RegistrationJob:
    """Cancel a queued job at once; ask a running job to stop at its next stage boundary."""
    if job.status == Status.QUEUED and job_transition(
        job=job, to=Status.CANCELLED, error="Cancelled before it started."
    ):
        return job
    if job.status == Status.RUNNING:
        RegistrationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            cancel_requested=True
        )
        job.refresh_from_db()
        return job
    raise JobError(f"Job {job.pk} is {job.status}; there is nothing to cancel.")


def job_retry(*, job: RegistrationJob, user: Any = None) -> RegistrationJob:
    """Queue a finished job again (failed, cancelled, or succeeded to re-run); its outputs are
    replaced whole when it succeeds."""
    if job.status not in TERMINAL:
        raise JobError(f"Job {job.pk} is still {job.status}; cancel it first or wait.")
    with transaction.atomic():
        job_transition(
            job=job,
            to=Status.QUEUED,
            attempt=0,
            cancel_requested=False,
            stage="",
            progress=0.0,
            error="",
            traceback="",
            heartbeat_at=None,
            started_at=None,
            finished_at=None,
            max_attempts=int(settings.MRITRUS_JOB_MAX_ATTEMPTS),
        )
        job_enqueue_on_commit(job=job)
    return job
