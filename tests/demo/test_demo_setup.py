"""`make run`'s demo: setup only simulates and imports (the server answers at once); the worker
registers the study cohort in the background, then the demo study opens. All data SYNTHETIC."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture
def queued(settings, tmp_path):  # noqa: ANN001, ANN201
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.dummy.DummyBackend",
            "QUEUES": ["default", "registration"],
        }
    }
    settings.VAR_DIR = tmp_path
    settings.MRITRUS_REGISTRATION_METHOD = "initial"
    from registration.tasks_compat import default_task_backend

    default_task_backend.clear()
    return default_task_backend


def _task_names(backend) -> list[str]:  # noqa: ANN001
    return [r.task.name for r in backend.results]


@pytest.mark.django_db(transaction=True)
def test_demo_setup_queues_registration_and_opens_the_study_after_it(queued):
    from demo.tasks import demo_study_when_registered
    from readerstudy.models import ReaderStudy
    from registration.jobs.run import job_run
    from registration.models import Cohort, RegistrationJob

    call_command("demo_setup", "--study-cases", "2", "--register-cases", "1")

    cohort = Cohort.objects.get(name="Demo reader study (simulated)")
    jobs = list(RegistrationJob.objects.filter(case__cohort=cohort).order_by("pk"))
    # Nothing was registered in the foreground: the jobs wait for the worker.
    assert len(jobs) == 2 and {j.status for j in jobs} == {RegistrationJob.Status.QUEUED}
    assert _task_names(queued).count("registration_job_run") == 2
    assert "demo_study_when_registered" in _task_names(queued)
    assert not ReaderStudy.objects.exists()

    # Before the jobs finish, the demo task waits (queues itself again, later).
    queued.clear()
    assert "waiting for 2" in demo_study_when_registered.call(
        cohort_pk=cohort.pk, coordinator_pk=jobs[0].created_by_id
    )
    (again,) = queued.results
    assert again.task.name == "demo_study_when_registered" and again.task.run_after is not None

    for job in jobs:  # what the worker does
        job_run(job_pk=job.pk, worker_id="test-worker")
    assert "open" in demo_study_when_registered.call(
        cohort_pk=cohort.pk, coordinator_pk=jobs[0].created_by_id
    )
    study = ReaderStudy.objects.get()
    assert set(study.arms.values_list("kind", flat=True)) == {"original", "registered", "fused"}

    # A second `make run` changes nothing and queues no registration.
    queued.clear()
    call_command("demo_setup", "--study-cases", "2", "--register-cases", "1")
    assert "registration_job_run" not in _task_names(queued)
    assert ReaderStudy.objects.count() == 1 and RegistrationJob.objects.count() == 2
