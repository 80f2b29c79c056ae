"""Queue tasks. Each takes a primary key and calls a service; job state lives in the database."""

from __future__ import annotations

from registration.jobs.run import job_run
from registration.jobs.worker import worker_identity
from registration.tasks_compat import task


@task(queue_name="registration")
def registration_job_run(job_pk: int) -> str:
    """Run one registration job in this worker process (one job at a time per process/GPU)."""
    return job_run(job_pk=job_pk, worker_id=worker_identity())
