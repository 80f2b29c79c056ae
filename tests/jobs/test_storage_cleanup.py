"""`manage.py storage_cleanup [--delete]` on a store that holds everything a live site holds: imported
series, the outputs of succeeded registrations, a running job's temp and output folders, writes in
progress, and true orphans. Only the true orphans may go. All cases are SYNTHETIC."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from inference.qc import QC_IMAGES
from registration.jobs.run import job_claim, job_run
from registration.jobs.services import job_create
from registration.models import ImageSeries, RegistrationJob
from registration.storage import job_output_dir
from tests.jobs.cases import case_make

pytestmark = pytest.mark.django_db


def _media() -> Path:
    return Path(settings.MEDIA_ROOT)


def _age(path: Path, seconds: float) -> Path:
    """Make ``path`` (and its content) look untouched for ``seconds``."""
    then = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (then, then))
    return path


def _folder(path: Path, *, age: float) -> Path:
    path.mkdir(parents=True)
    (path / "data.bin").write_bytes(b"x")
    return _age(path, age)


def _cleanup(*args: str) -> str:
    out = io.StringIO()
    call_command("storage_cleanup", *args, stdout=out)
    return out.getvalue()


def test_cleanup_removes_only_true_orphans(case, cohort, coordinator, client_for) -> None:  # noqa: ANN001
    done = []
    for code, seed in (("SYN-R1", 1), ("SYN-R2", 2)):
        job = job_create(case=case_make(cohort, code, seed=seed), method="initial")
        assert job_run(job_pk=job.pk, worker_id="w") == "succeeded"
        job.refresh_from_db()
        done.append(job)
    # Everything that is live is old, so age alone cannot protect it.
    for p in (_media() / "cohorts").iterdir():
        _age(p, 7200)
    running = job_create(case=case, method="initial")
    assert job_claim(job_pk=running.pk, worker_id="busy") is not None
    running.refresh_from_db()
    running_tmp = _folder(
        _media() / "tmp" / f"job{running.pk}-a{running.attempt}-cafe", age=7200
    )  # a long registration: its temp folder may be old
    running_out = _folder(_media() / job_output_dir(running, "cafe"), age=7200)
    fresh_series = _folder(_media() / "tmp" / "series-inprogress", age=1)
    case_dir = _media() / f"cohorts/{case.cohort_id}/{case.pk}"
    young_move = _folder(case_dir / "2.25.1234", age=1)  # moved in, its commit still to come
    orphans = [
        _folder(case_dir / "2.25.999", age=7200),  # series folder of a rolled-back write
        _folder(case_dir / "registrations" / "job9999-a1-dead", age=7200),  # job row deleted
        _folder(_media() / "cohorts" / str(cohort.pk) / "424242", age=7200),  # case deleted
        _folder(_media() / "tmp" / "extract-old", age=7200),  # interrupted import
        _folder(_media() / "tmp" / "job9999-a1-beef", age=7200),  # dead job's temp folder
    ]
    client = client_for(coordinator)
    qc_urls = [
        reverse("registration:job-qc", kwargs={"pk": job.pk, "name": name})
        for job in done
        for name in QC_IMAGES
    ]
    assert all(client.get(url).status_code == 200 for url in qc_urls)

    listed = _cleanup()
    assert f"{len(orphans)} folder(s) found" in listed
    assert all(str(p) in listed for p in orphans)
    removed = _cleanup("--delete")
    assert f"{len(orphans)} folder(s) removed" in removed
    assert not any(p.exists() for p in orphans)

    # The outputs of the succeeded jobs, every series and the live folders are all still there.
    assert all(client.get(url).status_code == 200 for url in qc_urls)
    assert all((_media() / job.output_dir).is_dir() for job in done)
    for series in ImageSeries.objects.all():
        assert (_media() / series.nifti_path).is_file()
        assert all((_media() / i.path).is_file() for i in series.instances.all())
    assert running_tmp.is_dir() and running_out.is_dir()
    assert fresh_series.is_dir() and young_move.is_dir()
    assert RegistrationJob.objects.get(pk=running.pk).status == RegistrationJob.Status.RUNNING
    assert "0 folder(s) found" in _cleanup()
