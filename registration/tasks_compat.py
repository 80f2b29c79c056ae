"""The django.tasks API, from Django itself when it has it (6.0+), else the django-tasks backport."""

from __future__ import annotations

try:  # Django >= 6.0
    from django.tasks import TaskResultStatus, default_task_backend, task, task_backends
except ImportError:  # Django 5.2 LTS: the backport with the same API
    from django_tasks import (  # type: ignore[no-redef]
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )

__all__ = ["task", "task_backends", "default_task_backend", "TaskResultStatus"]
