"""Fixtures for the registration-job tests (all image data here is SYNTHETIC)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _jobs_settings(settings):  # noqa: ANN001, ANN202
    # Nothing is really queued in-process tests: job_run is called directly, like a worker would.
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.dummy.DummyBackend",
            "QUEUES": ["default", "registration"],
        }
    }
    settings.MRITRUS_HEARTBEAT_SECONDS = 30.0
    settings.MRITRUS_HEARTBEAT_STALE_SECONDS = 60.0
    settings.MRITRUS_JOB_MAX_ATTEMPTS = 3
    settings.MRITRUS_REGISTRATION_METHOD = "initial"


@pytest.fixture
def cohort(db):  # noqa: ANN001, ANN201
    from tests.jobs.cases import cohort_make

    return cohort_make()


@pytest.fixture
def case(cohort):  # noqa: ANN001, ANN201
    from tests.jobs.cases import case_make

    return case_make(cohort, "SYN001")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):  # noqa: ANN001, ANN201
    """A migrated SQLite database file, made once per session for the subprocess deployments."""
    from tests.jobs.deployment import Deployment

    d = Deployment(tmp_path_factory.mktemp("sqlite-template"))
    d.harness("migrate", timeout=300)
    return d.tmp / "var" / "mritrus.sqlite3"
