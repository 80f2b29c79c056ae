"""Background steps of the demo. Each takes primary keys and calls a service."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from registration.tasks_compat import task

# How often the demo checks whether its cohort's registrations are done.
POLL_SECONDS = 5


@task(queue_name="default")
def demo_study_when_registered(cohort_pk: int, coordinator_pk: int) -> str:
    """Open the demo reader study once no registration job of the cohort is queued or running.

    Until then the task queues itself again ``POLL_SECONDS`` later: the demo cannot know which
    worker runs which job, so it asks the job table rather than waiting for a signal.
    """
    from accounts.models import User
    from demo.study import demo_study_create
    from registration.models import Cohort, RegistrationJob

    cohort = Cohort.objects.get(pk=cohort_pk)
    active = RegistrationJob.objects.filter(
        case__cohort=cohort,
        status__in=RegistrationJob.ACTIVE_STATUSES,
    ).count()
    if active:
        later = timezone.now() + dt.timedelta(seconds=POLL_SECONDS)
        demo_study_when_registered.using(run_after=later).enqueue(
            cohort_pk=cohort_pk, coordinator_pk=coordinator_pk
        )
        return f"waiting for {active} registration(s)"
    coordinator = User.objects.get(pk=coordinator_pk)
    readers = list(User.objects.filter(username__in=["junior", "senior"]).order_by("username"))
    study = demo_study_create(cohort=cohort, coordinator=coordinator, readers=readers)
    return f"demo study {study.pk} open"
