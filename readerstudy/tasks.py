"""Queue tasks of reader studies. Each takes a primary key and calls a service."""

from __future__ import annotations

from registration.tasks_compat import task


@task(queue_name="default")
def study_display_prepare_task(study_pk: int) -> int:
    """Build every display grid of a study that has just been opened."""
    from readerstudy.display_services import study_display_prepare
    from readerstudy.models import ReaderStudy

    return study_display_prepare(study=ReaderStudy.objects.get(pk=study_pk))
