"""The upload page posts through its progress script and lands on the report. SYNTHETIC.

(On loopback the upload and import finish before a poll; tests/registration/test_upload_progress.py
checks the counts the page polls.)"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tests.browser.conftest import login
from tests.dicomweb.conftest import t2_files

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_shows_progress_then_the_report(
    page, live_server, tmp_path: Path, screenshot
) -> None:  # noqa: ANN001
    from accounts.factories import UserFactory
    from registration.models import ImportRun

    UserFactory(username="up_coord", role="coordinator", reader_level="", years_experience=None)
    archive = tmp_path / "sim-dicom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for patient in ("SIM-U1", "SIM-U2"):
            for p in t2_files(tmp_path / patient, patient=patient, slices=2):
                zf.write(p, f"{patient}/{p.name}")
    login(page, live_server, "up_coord")
    page.goto(f"{live_server.url}/cohorts/upload/")
    page.fill("input[name=cohort_name]", "Synthetic browser upload")
    page.set_input_files("input[name=archive]", str(archive))
    with page.expect_navigation(url=re.compile(r"/imports/\d+/$"), timeout=60000):
        page.click("form[data-upload-progress] button[type=submit]")
    run = ImportRun.objects.get()
    assert run.accepted == 2 and run.report.get("upload_key")  # sent by the page's script
    assert "2 accepted" in page.content()
    assert not page.console_errors, page.console_errors  # CSP: the script is a static file
    screenshot(page, "upload-report")
