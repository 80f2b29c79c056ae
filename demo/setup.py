"""The demo that `make run` loads: users by role, two SIMULATED cohorts, and an open reader study.

Everything here is idempotent: a second run finds what the first made and changes nothing.
Setup itself only simulates and imports (seconds), so the server answers at once. The cases of
"Demo reader study (simulated)" are queued for registration like any coordinator's "Register all"
(progress on the cohort page); the background worker registers them, then opens the demo study
with every arm (``demo.tasks.demo_study_when_registered``).
Cohort "Demo to register (simulated)" is left unregistered for the coordinator to try.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

STUDY_COHORT = "Demo reader study (simulated)"
REGISTER_COHORT = "Demo to register (simulated)"
DEMO_USERS: list[dict[str, Any]] = [
    {"username": "admin", "role": "admin", "reader_level": "", "years": None, "superuser": True},
    {"username": "coordinator", "role": "coordinator", "reader_level": "", "years": None},
    {"username": "junior", "role": "reader", "reader_level": "junior", "years": 3},
    {"username": "senior", "role": "reader", "reader_level": "senior", "years": 15},
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


def _yale_dir() -> Path | None:
    candidate = Path(settings.BASE_DIR).parent / "shared" / "data" / "yale-prostate-t2"
    return candidate if candidate.is_dir() else None


def demo_users_ensure(*, logins_file: Path) -> list[DemoLogin]:
    """Create the demo users once, with random passwords kept in ``logins_file`` (git-ignored)."""
    from accounts.models import User

    known: dict[str, str] = {}
    if logins_file.exists():
        for line in logins_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "login:":
                known[parts[1]] = parts[2]
    logins = []
    for spec in DEMO_USERS:
        password = known.get(spec["username"]) or secrets.token_urlsafe(9)
        user, created = User.objects.get_or_create(
            username=spec["username"],
            defaults={
                "role": spec["role"],
                "reader_level": spec["reader_level"],
                "years_experience": spec["years"],
                "is_staff": bool(spec.get("superuser")),
                "is_superuser": bool(spec.get("superuser")),
            },
        )
        if created or spec["username"] not in known:
            user.set_password(password)
            user.save()
        logins.append(DemoLogin(spec["username"], password, spec["role"]))
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    logins_file.write_text(
        "Demo logins (local demo only; passwords are random per install):\n"
        + "".join(f"login: {x.username} {x.password}  ({x.role})\n" for x in logins)
    )
    logins_file.chmod(0o600)
    return logins


def demo_cohort_ensure(*, name: str, n_cases: int, seed: int, user: Any, echo: Any) -> Any:
    """Simulate and import a demo cohort unless it is already there."""
    from inference.simulate import write_demo_cohort
    from registration.importing.run import cohort_import
    from registration.models import Cohort

    cohort = Cohort.objects.filter(name=name).first()
    if cohort is not None and cohort.cases.exists():
        return cohort
    with tempfile.TemporaryDirectory(prefix="mritrus-demo-") as tmp:
        echo(f"Simulating {n_cases} cases for '{name}' …")
        manifest = write_demo_cohort(
            Path(tmp) / "cohort", n_cases=n_cases, seed=seed, yale_dir=_yale_dir()
        )
        run = cohort_import(path=manifest.parent, cohort_name=name, user=user, source_name=name)
    echo(f"  imported: {run.accepted} accepted, {run.rejected} rejected")
    if run.rejected or not run.accepted:
        raise RuntimeError(f"demo import failed: {run.report}")
    cohort = Cohort.objects.get(name=name)
    if not cohort.synthetic:
        cohort.synthetic = True
        cohort.save(update_fields=["synthetic"])
    return cohort


def demo_cohort_register(*, cohort: Any, user: Any, echo: Any) -> int:
    """Queue registration of every case without a registered series; the worker runs them.

    Then queue the task that opens the demo study once the cohort's jobs have finished. Returns
    the number of jobs queued (0 on a second run, when they exist or are done).
    """
    from demo.tasks import demo_study_when_registered
    from registration.jobs.services import job_method_default, jobs_create_for_cohort

    method = job_method_default()
    with transaction.atomic():
        jobs = jobs_create_for_cohort(cohort=cohort, method=method, user=user)
        cohort_pk, user_pk = cohort.pk, user.pk
        transaction.on_commit(
            lambda: demo_study_when_registered.enqueue(cohort_pk=cohort_pk, coordinator_pk=user_pk)
        )
    if jobs:
        echo(
            f"  queued {len(jobs)} registrations ({method}) for the background worker; "
            "progress on the cohort page. The demo reader study opens when they are done."
        )
    return len(jobs)


def demo_setup(
    *, echo: Any = print, n_study_cases: int = 8, n_register_cases: int = 4
) -> list[DemoLogin]:
    """Load the whole demo; returns the logins (also written to ``var/demo_logins.txt``)."""
    from accounts.models import User

    logins = demo_users_ensure(logins_file=Path(settings.VAR_DIR) / "demo_logins.txt")
    coordinator = User.objects.get(username="coordinator")
    study_cohort = demo_cohort_ensure(
        name=STUDY_COHORT, n_cases=n_study_cases, seed=0, user=coordinator, echo=echo
    )
    demo_cohort_register(cohort=study_cohort, user=coordinator, echo=echo)
    demo_cohort_ensure(
        name=REGISTER_COHORT, n_cases=n_register_cases, seed=1, user=coordinator, echo=echo
    )
    return logins
