"""In a real browser (Debian chromium): "Register all" on a cohort, the progress bars move as jobs
finish, and the case page shows the QC images. SYNTHETIC cases; the test thread plays the worker
(job_run, the very body the queue task calls) so the steps are deterministic."""

from __future__ import annotations

import pytest

from accounts.factories import UserFactory
from registration.jobs.run import job_run
from registration.models import RegistrationJob
from tests.browser.conftest import login, wait_js
from tests.jobs.cases import case_make, cohort_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BAR = "document.querySelector('progress.cohort-progress')"


def test_register_all_progress_and_qc_in_the_browser(page, live_server, screenshot):
    UserFactory(username="coord", role="coordinator", reader_level="", years_experience=None)
    cohort = cohort_make()
    cases = [case_make(cohort, f"B{i}", seed=i, landmarks=False) for i in range(2)]
    login(page, live_server, "coord")

    page.goto(f"{live_server.url}/cohorts/{cohort.pk}/")
    page.select_option("section.job-panel select[name=method]", "initial")
    page.click("section.job-panel button:has-text('Register all')")
    page.wait_for_load_state("domcontentloaded")
    assert page.url.endswith(f"/cohorts/{cohort.pk}/")
    queued = list(RegistrationJob.objects.order_by("pk"))
    assert [j.case for j in queued] == cases and all(j.method == "initial" for j in queued)
    wait_js(
        page,
        f"document.querySelector(\".case-job-state[data-field='case-{cases[0].pk}']\")"
        ".textContent.includes('queued')",
    )
    assert page.evaluate(f"{BAR}.value") == 0

    job_run(job_pk=queued[0].pk, worker_id="browser-test")
    wait_js(page, f"{BAR}.value >= 50 && {BAR}.value < 100", timeout=15000)
    job_run(job_pk=queued[1].pk, worker_id="browser-test")
    wait_js(page, f"{BAR}.value == 100", timeout=15000)
    cell = page.locator(f".case-job-state[data-field='case-{cases[1].pk}']")
    assert "succeeded" in cell.inner_text()
    screenshot(page, "jobs-cohort-registered")

    page.goto(f"{live_server.url}/cases/{cases[0].pk}/")
    for alt in ("Checkerboard", "Gland contours"):
        img = page.locator(f"section.job-panel img[alt^='{alt}']")
        wait_js(page, "(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    screenshot(page, "jobs-case-qc")
    assert not [e for e in page.console_errors if "/static/" not in e]
