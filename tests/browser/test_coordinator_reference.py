"""Study integrity in a real browser: a cohort with a case lacking its reference standard is
refused at study creation, with the case named; the coordinator fills it in and tries again.
Cases are SYNTHETIC (no images are needed to create a study)."""

from __future__ import annotations

import secrets

import pytest
from django.urls import reverse

from accounts.factories import UserFactory
from readerstudy.models import ReaderStudy
from registration.models import Case, Cohort
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_case_without_reference_refused_then_filled_in(page, live_server, screenshot):  # noqa: ANN001
    UserFactory(username="r_coord", role="coordinator", reader_level="", years_experience=None)
    UserFactory(username="r_reader", role="reader", reader_level="junior")
    cohort = Cohort.objects.create(name="Reference cohort (synthetic)", synthetic=True)
    for code, pirads in (("SYN-1", 4), ("SYN-2", None)):
        Case.objects.create(
            cohort=cohort,
            case_code=code,
            reference_pirads=pirads,
            synthetic=True,
            deid_key=secrets.token_hex(16),
        )
    login(page, live_server, "r_coord")

    def create() -> None:
        page.goto(f"{live_server.url}{reverse('readerstudy:study-create')}")
        page.fill("input[name=name]", "Needs a reference")
        page.select_option("select[name=cohort]", str(cohort.pk))
        page.check("input[name=readers]")
        page.select_option("select[name=reference_standard]", "pirads")
        page.click("form.card button.primary")
        page.wait_for_load_state("domcontentloaded")

    create()
    error = page.locator(".field .error").first.text_content()
    assert "SYN-2" in error and "SYN-1" not in error and "clinical PI-RADS" in error
    assert not ReaderStudy.objects.exists()
    screenshot(page, "coordinator-study-refused")

    page.goto(f"{live_server.url}{reverse('registration:cohort-detail', args=[cohort.pk])}")
    page.click("#reference-link")
    row = page.locator("tr[data-case='SYN-2']")
    row.locator("select[name=reference_pirads]").select_option("2")
    row.locator("select[name=cspca]").select_option("no")
    row.locator("select[name=isup_grade]").select_option("1")
    row.locator("input[name=gleason]").fill("3+3")
    row.locator("button[type=submit]").click()
    page.wait_for_load_state("domcontentloaded")
    # Gleason 3+3 is ISUP 1, and csPCa "no" agrees with ISUP 1
    assert "Case SYN-2 saved." in page.text_content(".messages")
    assert "0 case(s) without clinical PI-RADS" in page.text_content("#missing-summary")
    screenshot(page, "coordinator-reference-page")

    create()
    assert ReaderStudy.objects.filter(name="Needs a reference").exists()
    assert not page.console_errors, page.console_errors
