"""What runs beside the readers in bench/load_bench.py: a real registration worker, or a busy core."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _setup import ROOT  # bench/ is on sys.path (load_bench.py puts it there)


def registration_cohort_build(*, cases: int) -> list[int]:
    """A SIMULATED cohort of MR + TRUS cases with queued registration jobs; returns the job pks."""
    import tempfile

    from django.conf import settings

    from accounts.models import User
    from inference.simulate import write_demo_cohort
    from registration.importing.run import cohort_import
    from registration.jobs.services import jobs_create_for_cohort
    from registration.models import Cohort

    # Only queues jobs here; it never logs in.
    user = User.objects.create_user("loadregcoord", password=None, role="coordinator")
    with tempfile.TemporaryDirectory(prefix="mritrus-load-sim-") as tmp:
        manifest = write_demo_cohort(Path(tmp) / "cohort", n_cases=cases, seed=14)
        cohort_import(path=manifest.parent, cohort_name="Load registrations (SIMULATED)", user=user)
    cohort = Cohort.objects.get(name="Load registrations (SIMULATED)")
    jobs = jobs_create_for_cohort(
        cohort=cohort, method=settings.MRITRUS_REGISTRATION_METHOD, user=user
    )
    return [job.pk for job in jobs]


def registration_keeper(job_pks: list[int], stop: Any, finished: list[str]) -> None:
    """Re-queue each job as it finishes, so that the worker always has a registration to run."""
    from django.db import close_old_connections

    from registration.jobs.services import job_retry
    from registration.jobs.state import TERMINAL
    from registration.models import RegistrationJob

    while not stop.wait(2.0):
        close_old_connections()
        for job in RegistrationJob.objects.filter(pk__in=job_pks, status__in=TERMINAL):
            finished.append(str(job.status))
            job_retry(job=job)


def registration_worker_start(var: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``manage.py db_worker`` for the registration queue, as scripts/run_local.sh starts it."""
    return subprocess.Popen(
        [
            "nice",
            "-n",
            "10",
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            "registration",
            "--interval",
            "1",
        ],
        cwd=ROOT,
        env={**env, "MRITRUS_TORCH_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=(var / "worker.log").open("w"),
    )


def busy_start() -> subprocess.Popen[bytes]:
    code = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = a @ a.T / 400\n"
    return subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
