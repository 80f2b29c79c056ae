"""Job state: the statuses, every allowed status change, and the one function that makes one.

Job state lives in `RegistrationJob`, never in the queue: the queue only carries a primary key, and
every status change is a conditional UPDATE through `job_transition`, so two workers holding the same
key (a duplicate enqueue, or a requeue after a worker was presumed dead) cannot both run or both
write outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from registration.models import RegistrationJob

logger = logging.getLogger(__name__)

Status = RegistrationJob.Status
ACTIVE = RegistrationJob.ACTIVE_STATUSES
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

# Every allowed status change. running -> queued is stale-heartbeat recovery; terminal -> queued is
# retry / re-run.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.SUCCEEDED: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset({Status.QUEUED}),
}


class JobError(Exception):
    """A request the coordinator made that cannot be done (message is shown to them)."""


class InvalidTransition(JobError):
    pass


class JobInputError(Exception):
    """The case's inputs or the registration output are unusable; the message names the problem."""


class JobLost(Exception):
    """This worker no longer owns the job (it was requeued to another worker); write nothing."""


class JobCancelled(Exception):
    pass


def job_transition(
    *,
    job: RegistrationJob,
    to: str,
    expect: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move ``job`` from its current status to ``to`` with one conditional UPDATE.

    The UPDATE only matches if the row still has the status ``job.status`` (and the ``expect``
    lookups), so concurrent callers cannot both win. Returns whether this call made the change;
    ``job`` is refreshed either way. Terminal states get ``finished_at``.
    """
    frm = job.status
    if to not in ALLOWED_TRANSITIONS[frm]:
        raise InvalidTransition(f"A {frm} job cannot become {to}.")
    now = timezone.now()
    if to in TERMINAL:
        fields.setdefault("finished_at", now)
    if to == Status.SUCCEEDED:
        fields.setdefault("progress", 100.0)
    rows = RegistrationJob.objects.filter(pk=job.pk, status=frm, **dict(expect or {}))
    try:
        with transaction.atomic():
            changed = rows.update(status=to, **fields) == 1
    except IntegrityError as exc:
        # Only the "one active job per case and method" constraint can fire here.
        raise JobError(
            f"Case {job.case.case_code} already has a queued or running {job.method} job."
        ) from exc
    job.refresh_from_db()
    if changed:
        logger.info("job %s: %s -> %s", job.pk, frm, to)
    return changed
