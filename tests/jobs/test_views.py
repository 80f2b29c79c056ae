"""Job pages, progress JSON, QC images and the /api/jobs/ API: coordinators only (SYNTHETIC data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from registration.jobs.run import job_run
from registration.jobs.services import job_create
from registration.models import RegistrationJob

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _finished_job(case):  # noqa: ANN001, ANN202
    job = job_create(case=case, method="initial")
    job_run(job_pk=job.pk, worker_id="test")
    job.refresh_from_db()
    assert job.status == "succeeded"
    return job


def test_pages_refuse_anonymous_and_readers(client, client_for, junior, case):
    job = job_create(case=case, method="initial")
    urls = [
        "/jobs/",
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/status.json",
        f"/cohorts/{case.cohort_id}/jobs.json",
        f"/jobs/{job.pk}/qc/checkerboard.png",
    ]
    reader = client_for(junior)
    for url in urls:
        r = client.get(url)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], url
        assert reader.get(url).status_code == 403, url
    posts = [
        f"/cases/{case.pk}/register/",
        f"/cohorts/{case.cohort_id}/register-all/",
        f"/jobs/{job.pk}/cancel/",
        f"/jobs/{job.pk}/retry/",
    ]
    for url in posts:
        assert reader.post(url).status_code == 403, url
        assert client.post(url).status_code == 302, url
    job.refresh_from_db()
    assert job.status == "queued" and RegistrationJob.objects.count() == 1
    for url in ("/api/jobs/", f"/api/jobs/{job.pk}/"):
        assert client.get(url).status_code in (401, 403)
        assert reader.get(url).status_code == 403
    assert reader.post("/api/jobs/", {"case": case.pk}).status_code == 403


def test_register_cancel_retry_through_the_pages(client_for, coordinator, case):
    c = client_for(coordinator)
    r = c.post(f"/cases/{case.pk}/register/", {"method": "initial"})
    job = RegistrationJob.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.pk}/"
    page = c.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200 and b"<progress" in page.content and b"Cancel" in page.content
    status = c.get(f"/jobs/{job.pk}/status.json").json()
    assert status["status"] == "queued" and status["active"] and status["case_code"] == "SYN001"

    r = c.post(f"/cases/{case.pk}/register/", {"method": "initial"}, follow=True)
    assert b"already has a queued or running" in r.content

    c.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.status == "cancelled"
    c.post(f"/jobs/{job.pk}/retry/")
    job.refresh_from_db()
    assert job.status == "queued"


def test_register_all_and_cohort_progress(client_for, coordinator, cohort):
    from tests.jobs.cases import case_make

    for i in range(3):
        case_make(cohort, f"C{i}", seed=i, landmarks=False)
    c = client_for(coordinator)
    r = c.post(f"/cohorts/{cohort.pk}/register-all/", {"method": "initial"})
    assert r.status_code == 302
    assert RegistrationJob.objects.filter(status="queued").count() == 3
    first = RegistrationJob.objects.order_by("pk").first()
    job_run(job_pk=first.pk, worker_id="w")
    data = c.get(f"/cohorts/{cohort.pk}/jobs.json").json()
    assert data["counts"]["succeeded"] == 1 and data["counts"]["queued"] == 2
    assert data["active"] is True and 0 < data["progress"] < 100
    codes = {row["case_code"]: row["jobs"][0]["status"] for row in data["cases"]}
    assert codes == {"C0": "succeeded", "C1": "queued", "C2": "queued"}
    page = c.get(f"/jobs/?cohort={cohort.pk}")
    assert page.status_code == 200 and b"Register all" in page.content


def test_finished_job_shows_qc_and_metrics(client_for, coordinator, junior, case):
    job = _finished_job(case)
    c = client_for(coordinator)
    page = c.get(f"/jobs/{job.pk}/")
    assert b"qc/checkerboard.png" in page.content
    assert b"Gland Dice after registration" in page.content
    assert b"Synthetic" in page.content
    for name in ("checkerboard", "contours"):
        r = c.get(f"/jobs/{job.pk}/qc/{name}.png")
        assert r.status_code == 200 and r["Content-Type"] == "image/png"
        assert b"".join(r.streaming_content).startswith(b"\x89PNG")
    assert c.get(f"/jobs/{job.pk}/qc/other.png").status_code == 404
    status = c.get(f"/jobs/{job.pk}/status.json").json()
    assert status["progress"] == 100 and set(status["qc"]) == {"checkerboard", "contours"}
    # What the metrics were measured against, on the page, in the progress JSON and in the API.
    basis = "against the gland labels given with the images (reference labels)"
    assert basis in page.content.decode() and basis in status["metrics_basis"]
    assert basis in c.get(f"/api/jobs/{job.pk}/").json()["metrics_basis"]


def test_failed_registration_says_why_on_the_page_and_in_the_api(client_for, coordinator, cohort):
    """A registration that fails its checks ends failed, with the reason, never "succeeded"."""
    import numpy as np

    from tests.jobs.cases import MR_SHAPE, case_make

    tiny = np.zeros(MR_SHAPE, np.uint8)
    tiny[14:17, 14:17, 4:6] = 1  # SYNTHETIC: a 0.05 mL "gland" against a 1.6 mL TRUS gland
    bad = case_make(cohort, "TINY", mr_label_override=tiny, landmarks=False)
    job = job_create(case=bad, method="initial")
    job_run(job_pk=job.pk, worker_id="test")
    job.refresh_from_db()
    assert job.status == "failed" and job.registered_series is None
    c = client_for(coordinator)
    why = "The gland volumes disagree"
    assert why in c.get(f"/jobs/{job.pk}/").content.decode()
    assert why in c.get(f"/api/jobs/{job.pk}/").json()["error"]
    assert why in c.get(f"/jobs/{job.pk}/status.json").json()["error"]
    assert why in c.get(f"/cases/{bad.pk}/").content.decode()


def test_case_panel_renders_register_button_and_qc(rf, coordinator, case):
    from django.template.loader import render_to_string

    job = _finished_job(case)
    request = rf.get("/")
    request.user = coordinator
    html = render_to_string("registration/job_case_panel.html", {"case": case}, request=request)
    assert f"/cases/{case.pk}/register/" in html
    assert f"/jobs/{job.pk}/qc/contours.png" in html


def test_api_jobs(client_for, coordinator, case):
    c = client_for(coordinator)
    r = c.post(
        "/api/jobs/", {"case": case.pk, "method": "initial"}, content_type="application/json"
    )
    assert r.status_code == 201 and r.json()["status"] == "queued"
    pk = r.json()["id"]
    r = c.post(
        "/api/jobs/", {"case": case.pk, "method": "initial"}, content_type="application/json"
    )
    assert r.status_code == 409 and "already has" in r.json()["detail"]
    listing = c.get("/api/jobs/", {"cohort": case.cohort_id}).json()
    assert [j["id"] for j in listing["results"]] == [pk]
    assert c.post(f"/api/jobs/{pk}/cancel/").json()["status"] == "cancelled"
    assert c.post(f"/api/jobs/{pk}/cancel/").status_code == 409
    assert c.post(f"/api/jobs/{pk}/retry/").json()["status"] == "queued"
    r = c.post(
        "/api/jobs/register-cohort/",
        {"cohort": case.cohort_id, "method": "io"},
        content_type="application/json",
    )
    assert r.status_code == 201 and len(r.json()) == 1
    schema = c.get("/api/schema/").content.decode()
    for p in (
        "/api/jobs/",
        "/api/jobs/{id}/cancel/",
        "/api/jobs/{id}/retry/",
        "/api/jobs/register-cohort/",
    ):
        assert p in schema, p


def test_web_process_never_imports_torch():
    code = (
        "import os, sys, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mritrus_site.settings')\n"
        "django.setup()\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "import mritrus_site.wsgi, registration.jobs.views, registration.jobs.api\n"
        "import registration.jobs.services, registration.jobs.tasks, registration.jobs.recovery\n"
        "from registration.templatetags import registration_jobs\n"
        "print('torch' in sys.modules, 'inference.pipeline' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MRITRUS_VAR_DIR": str(ROOT / "var")},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def test_worker_recovery_thread_only_in_worker_processes():
    from registration.jobs.recovery import worker_process_start

    assert worker_process_start(["manage.py", "runserver"]) is False
    assert worker_process_start(["gunicorn", "mritrus_site.wsgi"]) is False


def test_cohort_and_case_pages_carry_the_job_controls(client_for, coordinator, case):
    c = client_for(coordinator)
    job = _finished_job(case)
    cohort_page = c.get(f"/cohorts/{case.cohort_id}/").content.decode()
    assert f"/cohorts/{case.cohort_id}/register-all/" in cohort_page
    assert f"/cohorts/{case.cohort_id}/jobs.json" in cohort_page
    # The poller is a static file (no inline script under the CSP), included once.
    assert cohort_page.count("js/job_poll.js") == 1
    case_page = c.get(f"/cases/{case.pk}/").content.decode()
    assert f"/cases/{case.pk}/register/" in case_page
    assert f"/jobs/{job.pk}/qc/checkerboard.png" in case_page
    assert case_page.count("js/job_poll.js") == 1
