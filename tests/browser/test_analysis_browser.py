"""The analysis page in a real browser (Debian chromium): snapshot, figures, downloads.

The reads are SYNTHETIC (tests/readerstudy/analysis_study.py); the page and figures say so.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import openpyxl
import pandas as pd
import pytest
from django.urls import reverse
from PIL import Image

from accounts.factories import UserFactory
from readerstudy.analysis.exports import EXPORT_FORMATS
from tests.browser.conftest import login, wait_js
from tests.readerstudy.analysis_study import analysis_study_build
from tests.readerstudy.test_analysis_exports import parse_imrmc

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def study(settings):  # noqa: ANN001, ANN201
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    coordinator = UserFactory(
        username="a_coord", role="coordinator", reader_level="", years_experience=None
    )
    readers = [
        UserFactory(username="a_junior", role="reader", reader_level="junior"),
        UserFactory(username="a_senior", role="reader", reader_level="senior"),
        UserFactory(username="a_junior2", role="reader", reader_level="junior"),
    ]
    return analysis_study_build(
        name="Browser analysis study",
        coordinator=coordinator,
        readers=readers,
        n_cases=20,
        skip={(2, "registered", 5)},
    )


def _element_pixels(page, selector: str) -> np.ndarray:  # noqa: ANN001
    png = page.locator(selector).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def test_coordinator_snapshots_sees_figures_and_downloads(
    page, live_server, study, screenshot, tmp_path
) -> None:  # noqa: ANN001
    # CI machines are shared: drawing four charts can take a while there.
    page.set_default_timeout(120_000)
    login(page, live_server, "a_coord")
    url = f"{live_server.url}{reverse('readerstudy:analysis', args=[study.pk])}"

    # Not frozen yet: no results, an offer to snapshot.
    response = page.goto(url)
    assert response is not None and response.status == 409
    assert page.locator("#analysis-unavailable").is_visible()
    assert page.locator("table.analysis-table").count() == 0
    screenshot(page, "analysis-unavailable")
    page.console_errors.clear()  # type: ignore[attr-defined]  # the 409 above was expected

    page.click("button:has-text('Take a snapshot of the submitted reads')")
    page.wait_for_selector("#snapshot-sha256")
    sha = page.inner_text("#snapshot-sha256").strip()
    assert len(sha) == 64
    assert study.snapshots.get().sha256 == sha
    assert "Clinical PI-RADS" in page.inner_text("#reference-standard")
    assert page.locator("#synthetic-badge").is_visible()

    # Four real charts, inlined as SVG, drawn (not blank) and labelled synthetic.
    figures = page.locator("figure.analysis-figure")
    assert figures.count() == 4
    wait_js(
        page,
        "document.querySelectorAll('.svg-holder[data-state=ready]').length === 4"
        " || document.querySelector('.svg-holder[data-state=error]') !== null",
    )
    assert page.locator(".svg-holder[data-state=error]").count() == 0
    for key in ("roc", "kappa", "likert", "mrmc"):
        svg = page.locator(f"#figure-{key} svg")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150, key
        assert "SYNTHETIC" in svg.inner_html()
        grey = _element_pixels(page, f"#figure-{key} svg")
        assert grey.std() > 10, f"figure {key} looks blank"
    assert page.locator("#figure-roc svg path").count() > 10

    tables = page.locator("table.analysis-table")
    assert tables.count() == 6
    assert "Reads with a mark" in page.inner_text("#table-localisation")
    assert "AUC [95% CI]" in page.inner_text("#table-per-reader-arm")
    assert "DeLong" in page.inner_text("#table-tests")
    assert "R3" in page.inner_text("#missing-data")
    screenshot(page, "analysis-page")
    assert not page.console_errors  # type: ignore[attr-defined]

    # Every export downloads through the page and parses back; content types come from the server.
    files = {}
    for key, fmt in EXPORT_FORMATS.items():
        link = page.locator(f"a[data-export='{key}']")
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert sha[:12] in download.suggested_filename
        path = tmp_path / download.suggested_filename
        download.save_as(str(path))
        files[key] = path.read_bytes()
        head = page.request.get(f"{live_server.url}{link.get_attribute('href')}")
        assert head.status == 200
        assert head.headers["content-type"].split(";")[0] == fmt.content_type
        assert head.headers["x-snapshot-sha256"] == sha

    reads = pd.read_csv(io.BytesIO(files["reads-csv"]))
    assert len(reads) == 3 * 2 * 20 - 1
    assert set(reads["snapshot_sha256"]) == {sha}
    workbook = openpyxl.load_workbook(io.BytesIO(files["workbook-xlsx"]))
    about = {r[0]: r[1] for r in workbook["About"].iter_rows(values_only=True)}
    assert about["snapshot_sha256"] == sha
    results = json.loads(files["results-json"])
    assert results["snapshot"]["sha256"] == sha
    assert len(results["per_reader_arm"]) == 6
    imrmc = parse_imrmc(files["imrmc"].decode())
    assert imrmc["header"]["NR"] == 3 and len(imrmc["scores"]) == len(reads)
    import zipfile

    figures_zip = zipfile.ZipFile(io.BytesIO(files["figures-zip"]))
    assert "roc.svg" in figures_zip.namelist() and "mrmc.png" in figures_zip.namelist()
    long = pd.read_csv(io.BytesIO(files["mrmc-long-csv"]))
    assert list(long.columns[:5]) == ["reader", "treatment", "case", "truth", "rating"]

    # Figure downloads: SVG and PNG with the right types, both parse.
    for key in ("roc", "mrmc"):
        svg_href = page.locator(f"a[data-download='{key}-svg']").get_attribute("href")
        png_href = page.locator(f"a[data-download='{key}-png']").get_attribute("href")
        svg = page.request.get(f"{live_server.url}{svg_href}")
        assert svg.headers["content-type"] == "image/svg+xml"
        assert ET.fromstring(svg.body()).tag.endswith("svg")
        png = page.request.get(f"{live_server.url}{png_href}")
        assert png.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(png.body()))
        assert image.size[0] > 600 and np.asarray(image.convert("L")).std() > 10


def test_reader_gets_no_analysis_in_the_browser(page, live_server, study) -> None:  # noqa: ANN001
    from accounts.models import User
    from readerstudy.analysis.services import analysis_snapshot_build

    analysis_snapshot_build(study=study, user=User.objects.get(username="a_coord"))
    login(page, live_server, "a_junior")
    response = page.goto(f"{live_server.url}{reverse('readerstudy:analysis', args=[study.pk])}")
    assert response is not None and response.status == 403
    assert "AUC" not in page.content()
    api = page.request.get(
        f"{live_server.url}{reverse('readerstudy:api-analysis-export', args=[study.pk, 'reads-csv'])}"
    )
    assert api.status == 403
