"""Crash recovery: jobs whose worker stopped sending heartbeats (killed, out of memory, node lost)
are re-queued or failed, and what their attempt left on disk is removed.

Queue workers run `jobs_requeue_stale` at start-up and periodically (`worker_process_start`, from
the app's ``ready()``); ``manage.py jobs_recover`` runs it by hand.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from registration import storage
from registration.jobs.services import job_enqueue_on_commit
from registration.jobs.state import Status, job_transition
from registration.models import Case, RegistrationJob

logger = logging.getLogger(__name__)

# Worker command names whose processes run registration jobs (see `worker_process_start`).
WORKER_COMMANDS = {"db_worker", "rqworker", "rqworker-pool"}

_maintenance_started = False


def _abandoned_task_mark(job: RegistrationJob) -> None:
    """With the database queue, mark the dead worker's queue entry failed; otherwise it would show
    as running forever in the queue's admin. (Redis/RQ moves abandoned jobs aside by itself.)"""
    from django.apps import apps
    from django.core.exceptions import ValidationError

    if not job.task_result_id or not apps.is_installed("django_tasks_db"):
        return
    from django_tasks_db.models import DBTaskResult

    from registration.tasks_compat import TaskResultStatus

    try:
        DBTaskResult.objects.filter(id=job.task_result_id, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path="registration.jobs.WorkerLost",
            traceback=f"worker {job.worker_id} stopped responding; job {job.pk} re-queued",
        )
    except (ValidationError, ValueError):  # an id from another backend
        return


def _stale_job_move(job: RegistrationJob) -> str | None:
    """Re-queue ``job`` (or fail it after its last attempt); None when another caller moved it."""
    expect = {"attempt": job.attempt, "worker_id": job.worker_id, "heartbeat_at": job.heartbeat_at}
    attempt = job.attempt
    last = f"worker {job.worker_id or '?'}"
    if attempt >= job.max_attempts:
        message = (
            f"The worker running this job stopped responding {attempt} time(s) "
            f"(last: {last}); gave up after {job.max_attempts} attempts. Check the worker "
            "logs (out of memory?) and press Retry."
        )
        moved = job_transition(job=job, to=Status.FAILED, expect=expect, error=message)
        return str(Status.FAILED) if moved else None
    with transaction.atomic():
        moved = job_transition(
            job=job,
            to=Status.QUEUED,
            expect=expect,
            stage="re-queued",
            progress=0.0,
            heartbeat_at=None,
            error=f"Attempt {attempt} was interrupted ({last} stopped responding); re-queued.",
        )
        if moved:
            _abandoned_task_mark(job)
            job_enqueue_on_commit(job=job)
    return str(Status.QUEUED) if moved else None


def jobs_requeue_stale(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Put back every running job whose heartbeat is older than MRITRUS_HEARTBEAT_STALE_SECONDS.

    Its partial outputs are removed first. A job that has used all its attempts ends failed.
    Returns ``[(job_pk, new_status), ...]``. Safe to run from several workers at once: each job
    moves only once (conditional UPDATE on the stale heartbeat and attempt).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=float(settings.MRITRUS_HEARTBEAT_STALE_SECONDS))
    stale = RegistrationJob.objects.select_related("case").filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff),
        status=Status.RUNNING,
    )
    changed: list[tuple[int, str]] = []
    for job in stale:
        attempt, started = job.attempt, job.started_at
        # Move the job first: from then on the old worker, should it still be alive, can no
        # longer commit (its conditional UPDATEs stop matching), so its files are safe to remove.
        new_status = _stale_job_move(job)
        if new_status is None:
            continue
        _partial_outputs_remove(job, attempt=attempt)
        _stale_series_tmp_remove(since=started, older_than=cutoff)
        _orphan_series_folders_remove(job.case, older_than=cutoff)
        if new_status == Status.FAILED:
            _abandoned_task_mark(job)
        changed.append((job.pk, new_status))
    return changed


def _partial_outputs_remove(job: RegistrationJob, *, attempt: int | None = None) -> list[str]:
    """Remove what an interrupted attempt may have left: its temp folder and a moved-in output
    folder that no committed job row points at."""
    media = storage.media_root()
    removed: list[str] = []
    attempts = [attempt] if attempt is not None else list(range(0, job.attempt + 1))
    tmp_root = media / storage.TMP
    for a in attempts:
        prefix = storage.job_attempt_prefix(job, a)
        if tmp_root.is_dir():
            for p in tmp_root.iterdir():
                if p.name.startswith(prefix):
                    storage.tree_remove(p)
                    removed.append(str(p.relative_to(media)))
        reg_root = storage.case_registrations_dir(job.case)
        if reg_root.is_dir():
            for p in reg_root.iterdir():
                rel = str(p.relative_to(media))
                if p.name.startswith(prefix) and rel != job.output_dir:
                    storage.tree_remove(p)
                    removed.append(rel)
    return removed


def _tree_mtime(path: Path) -> float:
    latest = path.stat().st_mtime
    for p in path.rglob("*"):
        try:
            latest = max(latest, p.stat().st_mtime)
        except OSError:  # removed while we walk
            continue
    return latest


def _stale_series_tmp_remove(*, since: datetime | None, older_than: datetime) -> list[str]:
    """Temp folders of series writes (``tmp/series-*``) that a killed worker left behind.

    The storage service names them without an owner, so they are recognised by time: created
    after the dead attempt started and untouched for longer than the heartbeat limit. A live
    write touches its folder with every slice, so it is never taken for garbage.
    """
    tmp_root = storage.media_root() / storage.TMP
    if not tmp_root.is_dir():
        return []
    start = (since.timestamp() - 1.0) if since else 0.0
    cutoff = older_than.timestamp()
    removed = []
    for p in tmp_root.iterdir():
        if not (p.is_dir() and p.name.startswith("series-")):
            continue
        try:
            created = p.stat().st_ctime
            if created >= start and _tree_mtime(p) < cutoff:
                storage.tree_remove(p)
                removed.append(p.name)
        except FileNotFoundError:
            continue
    return removed


def _orphan_series_folders_remove(case: Case, *, older_than: datetime) -> list[str]:
    """Series folders of ``case`` with no ImageSeries row (a series write killed between its move
    and its DB commit). Only folders older than ``older_than`` are touched, so a write in
    progress elsewhere is never removed."""
    media = storage.media_root()
    folder = media / storage.case_dir_relative(case)
    if not folder.is_dir():
        return []
    known = {p.name for p in storage.series_folders(list(case.series.all()))}
    cutoff = older_than.timestamp()
    removed = []
    for p in folder.iterdir():
        if p.name == storage.REGISTRATIONS or not p.is_dir() or p.name in known:
            continue
        if p.stat().st_mtime < cutoff:
            storage.tree_remove(p)
            removed.append(str(p.relative_to(media)))
    return removed


def _maintenance_loop(period: float) -> None:
    while True:
        try:
            close_old_connections()
            requeued = jobs_requeue_stale()
            if requeued:
                logger.warning("re-queued or failed stale registration jobs: %s", requeued)
        except Exception:  # never let recovery crash the worker
            logger.exception("stale-job recovery failed")
        finally:
            connection.close()
        time.sleep(period)


def worker_process_start(argv: list[str] | None = None) -> bool:
    """In a queue worker process, recover stale jobs at start-up and then periodically.

    Called from the app's ``ready()``; does nothing in the web process or other commands. Returns
    whether the maintenance thread was started.
    """
    global _maintenance_started
    args = sys.argv if argv is None else argv
    if _maintenance_started or len(args) < 2 or args[1] not in WORKER_COMMANDS:
        return False
    if os.environ.get("MRITRUS_NO_JOB_RECOVERY", "").lower() in {"1", "true", "yes"}:
        return False
    period = max(1.0, float(settings.MRITRUS_HEARTBEAT_STALE_SECONDS) / 2)
    thread = threading.Thread(
        target=_maintenance_loop, args=(period,), name="job-recovery", daemon=True
    )
    thread.start()
    _maintenance_started = True
    return True
