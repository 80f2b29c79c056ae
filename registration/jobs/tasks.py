"""Queue tasks. Each takes a primary key and calls a service; job state lives in the database.

The web process imports this module only to enqueue; the body's imports (the job runner, which
reaches torch) happen in the worker, inside the task. import-linter's contract for web modules
ignores exactly these two edges (pyproject.toml).
"""

from __future__ import annotations

from registration.tasks_compat import task


@task(queue_name="registration")
def registration_job_run(job_pk: int) -> str:
    """Run one registration job in this worker process (one job at a time per process/GPU)."""
    from registration.jobs.run import job_run
    from registration.jobs.worker import worker_identity

    return job_run(job_pk=job_pk, worker_id=worker_identity())
