"""Drive a real deployment from the outside, for the worker subprocess tests and the benchmark.

Run as ``python -m tests.jobs.harness COMMAND`` from the repository root with the environment of the
deployment (MRITRUS_VAR_DIR / DATABASE_URL / MRITRUS_TASKS_BACKEND / REDIS_URL ...). Prints JSON.
All cases it makes are SYNTHETIC.

    migrate                migrate only (to make a database template)
    init N [--labels]      a cohort of N synthetic cases (on a migrated database)
    demo N                 import a simulated demo cohort of N cases (inference.simulate)
    queue [--dup K] [--method M]  queue one job per case (commit -> enqueue); K of them twice
    status                 jobs, registered series per case, leftover temp/output folders
    wait-finished T        poll (in this process) until every job is finished, at most T s
    wait-stage STAGE T [--kill PID]  poll until the first job runs STAGE with a temp folder
                           (at most T s), then SIGKILL worker PID if asked
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mritrus_site.settings")
    import django

    django.setup()


def init(n: int, labels: bool) -> dict[str, Any]:
    from tests.jobs.cases import cohort_with_cases

    cohort = cohort_with_cases(n, labels=labels)
    return {"cohort": cohort.pk, "cases": cohort.cases.count()}


def demo(n: int) -> dict[str, Any]:
    import tempfile

    from django.conf import settings

    from inference.simulate import write_demo_cohort
    from registration.importing.run import cohort_import

    src = Path(tempfile.mkdtemp(dir=Path(settings.MEDIA_ROOT).parent))
    manifest = write_demo_cohort(src / "demo", n_cases=n, seed=0)
    run = cohort_import(path=manifest.parent, cohort_name="Demo cohort (SYNTHETIC)")
    return {"accepted": run.accepted, "rejected": run.rejected, "error": run.error}


def queue(dup: int, method: str) -> dict[str, Any]:
    from django.db import transaction

    from registration.jobs.services import jobs_create_for_cohort
    from registration.jobs.tasks import registration_job_run
    from registration.models import Cohort

    cohort = Cohort.objects.get()
    with transaction.atomic():
        created = jobs_create_for_cohort(cohort=cohort, method=method)
    # A duplicate delivery of the same key: the claim must still run each job once.
    for job in created[:dup]:
        registration_job_run.enqueue(job_pk=job.pk)
    return {"jobs": [j.pk for j in created], "duplicates": min(dup, len(created))}


def status() -> dict[str, Any]:
    from django.conf import settings
    from django.db.models import Count

    from registration.models import ImageSeries, RegistrationJob

    media = Path(settings.MEDIA_ROOT)
    tmp = media / "tmp"
    out_dirs = sorted(
        str(p.relative_to(media)) for p in media.glob("cohorts/*/*/registrations/*") if p.is_dir()
    )
    per_case = {
        str(row["case"]): row["n"]
        for row in ImageSeries.objects.filter(kind="registered")
        .values("case")
        .annotate(n=Count("pk"))
    }
    jobs = [
        {
            "pk": j.pk,
            "case": j.case_id,
            "status": j.status,
            "stage": j.stage,
            "attempt": j.attempt,
            "worker_id": j.worker_id,
            "error": j.error,
            "output_dir": j.output_dir,
            "heartbeat_at": j.heartbeat_at.isoformat() if j.heartbeat_at else None,
            "enqueued_at": j.enqueued_at.timestamp() if j.enqueued_at else None,
            "started_at": j.started_at.timestamp() if j.started_at else None,
            "finished_at": j.finished_at.timestamp() if j.finished_at else None,
            "stage_seconds": j.stage_seconds,
        }
        for j in RegistrationJob.objects.order_by("pk")
    ]
    queue: dict[str, int] = {}
    if settings.MRITRUS_TASKS_BACKEND == "db":
        from django_tasks_db.models import DBTaskResult

        for row in DBTaskResult.objects.values("status").annotate(n=Count("pk")):
            queue[str(row["status"])] = row["n"]
    return {
        "jobs": jobs,
        "queue": queue,
        "registered_per_case": per_case,
        "tmp": sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else [],
        "output_dirs": out_dirs,
    }


def _finished(state: dict[str, Any]) -> bool:
    return bool(state["jobs"]) and all(
        j["status"] in ("succeeded", "failed", "cancelled") for j in state["jobs"]
    )


def _in_stage(stage: str) -> Any:
    def check(state: dict[str, Any]) -> bool:
        first = state["jobs"][0] if state["jobs"] else {}
        return bool(
            first.get("stage") == stage and first.get("status") == "running" and state["tmp"]
        )

    return check


def wait(predicate: Any, timeout: float) -> dict[str, Any]:
    import time

    from django.db import connection

    deadline = time.monotonic() + timeout
    while True:
        state = status()
        if predicate(state):
            return {**state, "waited": True}
        if time.monotonic() > deadline:
            return {**state, "waited": False}
        connection.close()
        time.sleep(0.1)


def main(argv: list[str]) -> None:
    _setup()
    cmd = argv[0]
    if cmd == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        result = {"migrated": True}
    elif cmd == "init":
        result = init(int(argv[1]), "--labels" in argv)
    elif cmd == "demo":
        result = demo(int(argv[1]))
    elif cmd == "queue":
        dup = int(argv[argv.index("--dup") + 1]) if "--dup" in argv else 0
        method = argv[argv.index("--method") + 1] if "--method" in argv else "initial"
        result = queue(dup, method)
    elif cmd == "status":
        result = status()
    elif cmd == "wait-finished":
        result = wait(_finished, float(argv[1]))
    elif cmd == "wait-stage":
        result = wait(_in_stage(argv[1]), float(argv[2]))
        if "--kill" in argv and result["waited"]:
            # SIGKILL the worker the moment the stage is seen, not after this process exits.
            import signal

            os.kill(int(argv[argv.index("--kill") + 1]), signal.SIGKILL)
            result["killed"] = True
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
