"""The reader study in a real browser (Debian chromium): worklist, Cornerstone viewer, scoring.

The original arm shows the real ProstateX T2 from ../shared/data; the registered T2 and TRUS of the
fused arm are SYNTHETIC stand-ins (the cases are flagged synthetic).
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from accounts.factories import UserFactory
from readerstudy import read_services, services
from readerstudy.models import Assignment, Read
from readerstudy.serving import view_slice_uids
from registration.models import Cohort
from tests.browser.conftest import login, wait_js
from tests.readerstudy.builders import case_with_series, complete, prostatex_t2

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Grey levels of the viewport canvas, every 2nd pixel each way, as base64 (fast to transfer).
CANVAS_PIXELS = """(selector) => {
  const src = document.querySelector(selector + ' canvas');
  if (!src || !src.width) return null;
  const w = Math.floor(src.width / 2), h = Math.floor(src.height / 2);
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  ctx.drawImage(src, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h).data;
  let s = '';
  for (let i = 0; i < w * h; i++) {
    s += String.fromCharCode(Math.round(0.299 * d[4*i] + 0.587 * d[4*i+1] + 0.114 * d[4*i+2]));
  }
  return btoa(s);
}"""


def pixels(page, selector: str = "#viewport-primary") -> np.ndarray:  # noqa: ANN001
    encoded = page.evaluate(CANVAS_PIXELS, selector)
    assert encoded, f"no canvas under {selector}"
    return np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).astype(np.float64)


def wait_viewer(page) -> None:  # noqa: ANN001
    wait_js(
        page,
        "window.mritrusViewer && (window.mritrusViewer.ready || window.mritrusViewer.error)",
        timeout=30000,
    )
    assert page.evaluate("window.mritrusViewer.error") is None
    page.wait_for_timeout(300)  # let the first render land on the canvas


def wait_pixels_change(page, before: np.ndarray, selector: str = "#viewport-primary") -> np.ndarray:  # noqa: ANN001
    for _ in range(40):
        after = pixels(page, selector)
        if after.shape != before.shape or np.abs(after - before).mean() > 0.5:
            return after
        page.wait_for_timeout(100)
    return after


@pytest.fixture
def study(shared_data, settings):  # noqa: ANN001, ANN201
    """Two cases with the real ProstateX T2 (TRUS and registered T2 simulated), arms
    original → fused for the junior (counterbalanced: the senior starts with fused)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    t2 = prostatex_t2(shared_data)
    cohort = Cohort.objects.create(name="Browser cohort (TRUS simulated)", synthetic=True)
    for n in range(2):
        case_with_series(cohort, f"PX-{n}", t2=t2, seed=n, synthetic=True)
    coordinator = UserFactory(
        username="b_coord", role="coordinator", reader_level="", years_experience=None
    )
    junior = UserFactory(username="b_junior", role="reader", reader_level="junior")
    senior = UserFactory(username="b_senior", role="reader", reader_level="senior")
    other_junior = UserFactory(username="b_junior2", role="reader", reader_level="junior")
    study = services.study_create(
        name="Browser study",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "fused"],
        readers=[junior, senior, other_junior],
        washout_days=0,
        seed=11,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    return services.study_open(study=study, user=coordinator)


def test_reader_reads_a_real_t2_and_submits(page, live_server, study, screenshot):  # noqa: ANN001
    login(page, live_server, "b_junior")
    assert page.url.rstrip("/").endswith("/reading"), page.url
    assert "Case 1 of 2" in page.text_content("#case-counter")
    # The viewer below runs under the site's Content-Security-Policy (no inline script, no eval).
    policy = page.request.get(page.url).headers["content-security-policy"]
    assert (
        "script-src 'self' 'wasm-unsafe-eval'" in policy
        and "unsafe-inline" not in policy.split("style-src-attr")[0]
    )
    screenshot(page, "reader-worklist")
    page.click("#resume")
    wait_viewer(page)
    first_url = page.url
    first = Assignment.objects.get(token=first_url.rstrip("/").split("/")[-1])
    assert first.arm.kind == "original" and first.session == 1

    # the real T2 is on the canvas, not a blank or flat image
    base = pixels(page)
    assert base.var() > 100, base.var()
    counter = page.text_content("#slice-counter")
    assert re.fullmatch(r"Slice \d+ / 40 · [-+]?\d+(\.\d)? mm", counter), counter

    # orientation markers of the real, oblique ProstateX T2 (served on the axial display grid):
    # radiological convention, the patient's right on the screen's left, anterior at the top
    markers = {
        side: page.text_content(f"#primary-marker-{side}")
        for side in ("left", "right", "top", "bottom")
    }
    assert markers == {"left": "R", "right": "L", "top": "A", "bottom": "P"}, markers
    bar = page.locator("#primary-scale-bar")
    assert re.fullmatch(r"\d+ mm", bar.text_content())
    mm, px = float(bar.get_attribute("data-mm")), float(bar.get_attribute("data-px"))
    canvas_px = page.evaluate("window.mritrusViewer.primary.canvas.clientWidth")
    # 256 pixels of 0.5 mm fill the shorter side of the canvas at zoom 1
    box = page.locator("#viewport-primary").bounding_box()
    expected = 128.0 / min(box["width"], box["height"])
    assert mm / px == pytest.approx(expected, rel=0.05), (mm, px, canvas_px)

    # scrolling: arrow key and mouse wheel both move the slice and change the pixels
    page.keyboard.press("ArrowDown")
    wait_js(page, f"document.querySelector('#slice-counter').textContent !== {counter!r}")
    scrolled = wait_pixels_change(page, base)
    assert np.abs(scrolled - base).mean() > 0.5
    box = page.locator("#viewport-primary").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    counter = page.text_content("#slice-counter")
    page.mouse.wheel(0, 120)
    wait_js(page, f"document.querySelector('#slice-counter').textContent !== {counter!r}")

    # window/level by dragging changes the rendered pixels
    before = pixels(page)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 60, steps=8)
    page.mouse.up()
    leveled = wait_pixels_change(page, before)
    assert np.abs(leveled - before).mean() > 0.5
    screenshot(page, "reader-viewer-original")
    voi = "JSON.stringify(window.mritrusViewer.primary.getProperties().voiRange)"
    changed = page.evaluate(voi)
    page.click("#btn-reset")
    page.wait_for_timeout(200)
    reset = page.evaluate(voi)
    preset = page.evaluate("window.mritrusViewer.presets[0]")
    assert reset != changed
    assert json.loads(reset) == pytest.approx({"lower": preset["lower"], "upper": preset["upper"]})

    # score with the keyboard shortcuts and the comment box, then submit
    page.locator("body").focus()
    page.keyboard.press("4")
    page.keyboard.press("p")
    page.keyboard.press("l")
    page.keyboard.press("Shift+Digit6")
    page.fill("#comment", "browser test read")
    page.wait_for_timeout(1200)  # some visible reading time
    page.click("#submit-read")
    page.wait_for_url(lambda url: url != first_url, timeout=10000)
    wait_viewer(page)
    assert "Case 2 of 2" in page.text_content("#case-counter")

    read = Read.objects.get(assignment=first)
    assert read.status == "submitted"
    assert (read.pirads, read.zone, read.side, read.likert) == (4, "pz", "left", 6)
    assert read.comment == "browser test read"
    assert read.active_seconds > 1.0

    # a reload of the worklist resumes at the next case
    second_url = page.url
    page.goto(f"{live_server.url}{reverse('readerstudy:worklist-home')}")
    assert "Case 2 of 2" in page.text_content("#case-counter")
    page.click("#resume")
    page.wait_for_load_state("domcontentloaded")
    assert page.url == second_url

    # another reader's image URL is a 404 for this reader; their own is served
    other = Assignment.objects.filter(study=study, reader__user__username="b_junior2").first()
    view = other.views.get(role="primary")
    url = reverse("readerstudy:wado") + (
        f"?requestType=WADO&studyUID={view.study_uid}&seriesUID={view.series_uid}"
        f"&objectUID={view_slice_uids(view=view)[0]}&contentType=application/dicom"
    )
    assert not page.console_errors, page.console_errors
    assert page.request.get(f"{live_server.url}{url}").status == 404
    own = page.evaluate("fetch(window.location.pathname).then(r => r.status)")
    assert own == 200


def _png(page, selector: str) -> np.ndarray:  # noqa: ANN001
    data = page.locator(selector).screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)


def test_fused_arm_opacity_slider_changes_pixels(page, live_server, study, screenshot):  # noqa: ANN001
    from django.contrib.auth import get_user_model

    junior = get_user_model().objects.get(username="b_junior")
    for a in Assignment.objects.filter(study=study, reader__user=junior, session=1):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=5)
    fused = (
        Assignment.objects.filter(study=study, reader__user=junior, session=2)
        .order_by("position")
        .first()
    )
    assert fused.arm.kind == "fused"
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    assert page.url.rstrip("/").endswith(fused.token)
    underlay = pixels(page, "#viewport-underlay")
    assert underlay.var() > 10
    page.fill("#opacity", "100")
    page.dispatch_event("#opacity", "input")
    page.wait_for_timeout(200)
    opaque = _png(page, "#viewport-stack")
    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    page.wait_for_timeout(200)
    clear = _png(page, "#viewport-stack")
    # the SYNTHETIC fused pair covers ~16 mm of the 128 mm display grid: count changed pixels
    assert (np.abs(opaque - clear) > 10).sum() > 500
    page.fill("#opacity", "50")
    page.dispatch_event("#opacity", "input")
    # slices stay synchronised while scrolling the fused pair
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)
    indices = page.evaluate(
        "[window.mritrusViewer.primary.getCurrentImageIdIndex(),"
        " window.mritrusViewer.underlay.getCurrentImageIdIndex()]"
    )
    assert indices[0] == indices[1]
    # zooming (right drag) the T2 zooms the TRUS underneath by the same amount
    scale = "window.mritrusViewer.{}.getCamera().parallelScale"
    before = page.evaluate(scale.format("primary"))
    box = page.locator("#viewport-primary").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx, cy + 80, steps=8)
    page.mouse.up(button="right")
    page.wait_for_timeout(300)
    zoomed = page.evaluate(scale.format("primary"))
    assert zoomed != pytest.approx(before)
    assert page.evaluate(scale.format("underlay")) == pytest.approx(zoomed)
    screenshot(page, "reader-viewer-fused")
    assert not page.console_errors, page.console_errors


def test_coordinator_dashboard_renders(page, live_server, study, screenshot):  # noqa: ANN001
    login(page, live_server, "b_coord")
    page.goto(f"{live_server.url}{reverse('readerstudy:study-detail', args=[study.pk])}")
    assert "Browser study" in page.text_content("h1")
    assert page.locator("#progress tbody tr").count() == 6
    screenshot(page, "coordinator-study")
    page.goto(f"{live_server.url}{reverse('readerstudy:study-create')}")
    screenshot(page, "coordinator-study-create")
