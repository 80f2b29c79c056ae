"""Viewer tools in a real browser: what the reader sees is the same in every arm, the submit button
stays visible on common laptop screens, and Ctrl+Enter says what is missing.

Same cohort as test_reader_study.py: the real ProstateX T2 (original arm), SYNTHETIC registered
T2 and TRUS (fused arm).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from readerstudy import read_services
from readerstudy.models import Assignment
from tests.browser.conftest import login, wait_js
from tests.browser.test_reader_study import study, wait_viewer  # noqa: F401
from tests.readerstudy.builders import complete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ON_SCREEN = """(sel) => {
  const el = document.querySelector(sel);
  const r = el.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const inside = r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
  return inside && (document.elementFromPoint(x, y) === el || el.contains(document.elementFromPoint(x, y)));
}"""


def overlay_text(page) -> dict:  # noqa: ANN001
    counter = page.text_content("#slice-counter")
    return {
        "total": counter.split("/")[1].split("·")[0].strip(),
        "markers": [
            page.text_content(f"#primary-marker-{s}") for s in ("left", "right", "top", "bottom")
        ],
        "scale": page.text_content("#primary-scale-bar"),
    }


def test_submit_visible_and_ctrl_enter_names_what_is_missing(page, live_server, study, screenshot):  # noqa: ANN001, F811
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    for width, height in ((1280, 720), (1440, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        assert page.evaluate(ON_SCREEN, "#submit-read"), (width, height)
    page.locator("#viewport-primary").click()
    page.keyboard.press("Control+Enter")
    errors = page.locator("#form-errors")
    assert errors.text_content().startswith("Still missing: a PI-RADS score")
    for word in ("zone", "side", "confidence"):
        assert word in errors.text_content()
    assert page.evaluate(ON_SCREEN, "#form-errors")
    screenshot(page, "reader-missing-fields-1440x900")
    page.keyboard.press("Digit4")
    page.keyboard.press("KeyP")
    page.keyboard.press("Control+Enter")
    text = errors.text_content()
    assert "PI-RADS" not in text and "zone" not in text and "side" in text
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(200)
    assert page.evaluate(ON_SCREEN, "#form-errors")
    screenshot(page, "reader-missing-fields-1280x720")
    assert not page.console_errors, page.console_errors


def test_on_screen_geometry_is_the_same_in_both_arms(page, live_server, study):  # noqa: ANN001, F811
    """The blinding cues on screen: slice count, orientation markers, scale bar per arm."""
    junior = get_user_model().objects.get(username="b_junior")
    login(page, live_server, "b_junior")
    seen = {}
    for session in (1, 2):
        items = Assignment.objects.filter(study=study, reader__user=junior, session=session)
        page.goto(f"{live_server.url}/reading/case/{items.first().token}/")
        wait_viewer(page)
        seen[items.first().arm.kind] = overlay_text(page)
        # Leave the viewer first: its autosave must not hold the (shared in-memory) SQLite table
        # while this thread submits the reads.
        page.goto("about:blank")
        page.wait_for_timeout(300)
        for a in items:
            read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    assert seen["original"] == seen["fused"], seen
    assert seen["original"]["total"] == "40"
    assert not page.console_errors, page.console_errors


def test_markers_follow_flips_and_oblique_directions(page, live_server, study):  # noqa: ANN001, F811
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    sides = ("left", "right", "top", "bottom")

    def markers() -> list[str]:
        return [page.text_content(f"#primary-marker-{s}") for s in sides]

    assert markers() == ["R", "L", "A", "P"]
    # a horizontally flipped display swaps left and right (the camera is what is rendered)
    page.evaluate("window.mritrusViewer.primary.setCamera({flipHorizontal: true})")
    page.evaluate("window.mritrusViewer.primary.render(); window.mritrusViewer.overlay.update()")
    assert markers() == ["L", "R", "A", "P"]
    page.evaluate("window.mritrusViewer.primary.setCamera({flipHorizontal: false})")
    page.evaluate("window.mritrusViewer.overlay.update()")
    assert markers() == ["R", "L", "A", "P"]
    # the letters of oblique directions (LPS vectors), strongest component first
    label = "(v) => import('/static/js/viewer_overlay.js').then((m) => m.orientationLabel(v))"
    assert page.evaluate(label, [0.95, 0.0, -0.31]) == "LI"  # 18° oblique row direction
    assert page.evaluate(label, [0.0, 0.978, -0.208]) == "P"  # 12°: below the 0.3 threshold
    assert page.evaluate(label, [-0.7, 0.7, 0.0]) in ("RP", "PR")
    assert page.evaluate(label, [0.0, 0.0, -1.0]) == "I"


def test_lesion_mark_saved_and_shown_again_on_resume(page, live_server, study, screenshot):  # noqa: ANN001, F811
    from readerstudy.models import Read

    type(study).objects.filter(pk=study.pk).update(mark_required_from=3)
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    token = page.url.rstrip("/").split("/")[-1]
    page.keyboard.press("ArrowDown")  # off the middle slice, so resume must restore it
    page.keyboard.press("ArrowDown")
    for key in ("Digit4", "KeyP", "KeyL", "Shift+Digit6"):
        page.keyboard.press(key)
    page.keyboard.press("Control+Enter")
    assert "a lesion mark" in page.text_content("#form-errors")
    box = page.locator("#viewport-primary canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 - 40
    page.keyboard.press("KeyM")
    page.mouse.click(x, y)
    assert page.locator("#lesion-mark").is_visible()
    assert page.text_content("#mark-info").startswith("Marked on slice")
    wait_js(page, "document.querySelector('#save-status').textContent.startsWith('Draft saved')")
    read = Read.objects.get(assignment__token=token)
    # right of the centre on screen = the patient's left (+x); above = anterior (-y)
    assert read.mark_x > 5 and read.mark_y < -3, (read.mark_x, read.mark_y)
    world = page.evaluate(
        "([x, y]) => window.mritrusViewer.primary.canvasToWorld([x, y])",
        [x - box["x"], y - box["y"]],
    )
    # within a screen pixel or two (the mouse lands on whole pixels)
    assert [read.mark_x, read.mark_y, read.mark_z] == pytest.approx(world, abs=0.3)
    slice_text = page.text_content("#slice-counter").split("·")[0]
    assert read.mark_slice == int(slice_text.split()[1]) - 1

    # the longest diameter: D, then both ends (60 px apart on screen)
    page.keyboard.press("KeyD")
    page.mouse.click(x - 30, y)
    page.mouse.click(x + 30, y)
    assert "Longest diameter" in page.text_content("#mark-info")
    mm_per_px = page.evaluate(
        "(() => { const c = window.mritrusViewer.primary; return Math.abs("
        "c.canvasToWorld([100, 0])[0] - c.canvasToWorld([0, 0])[0]) / 100; })()"
    )
    for _ in range(50):  # until the autosave (0.7 s after the change) has landed
        read.refresh_from_db()
        if read.mark_diameter:
            break
        page.wait_for_timeout(100)
    assert read.mark_diameter["mm"] == pytest.approx(60 * mm_per_px, abs=0.3)

    page.reload()
    wait_viewer(page)
    assert page.text_content("#slice-counter").split("·")[0] == slice_text
    assert page.locator("#diameter-line line").count() == 1
    dot = page.locator("#lesion-mark").bounding_box()
    assert abs(dot["x"] + dot["width"] / 2 - x) <= 3 and abs(dot["y"] + dot["height"] / 2 - y) <= 3
    screenshot(page, "reader-lesion-mark")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: token not in url, timeout=10000)
    wait_viewer(page)  # the next case loads completely before the test database goes
    assert Read.objects.get(assignment__token=token).status == "submitted"
    assert not page.console_errors, page.console_errors


def test_state_after_reload_cine_shortcuts_and_continue(page, live_server, study, screenshot):  # noqa: ANN001, F811
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    box = page.locator("#viewport-primary").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")  # zoom
    page.mouse.move(cx, cy + 60, steps=6)
    page.mouse.up(button="right")
    page.mouse.move(cx, cy)
    page.mouse.down()  # window/level
    page.mouse.move(cx + 50, cy + 30, steps=6)
    page.mouse.up()
    page.keyboard.press("Digit2")  # a draft
    wait_js(page, "document.querySelector('#save-status').textContent.startsWith('Draft saved')")
    read_state = (
        "(() => { const v = window.mritrusViewer.primary; const r = v.getProperties().voiRange;"
        " return {slice: v.getCurrentImageIdIndex(), scale: v.getCamera().parallelScale,"
        " lower: r.lower, upper: r.upper}; })()"
    )
    before = page.evaluate(read_state)
    wait_js(
        page,  # the state is written (debounced) before the reload
        "(() => { const s = JSON.parse(localStorage.getItem('mritrus:view:' + location.pathname)"
        " || 'null'); return s && Math.abs(s.camera.parallelScale - "
        "window.mritrusViewer.primary.getCamera().parallelScale) < 1e-6 && s.slice === "
        "window.mritrusViewer.primary.getCurrentImageIdIndex(); })()",
    )
    page.reload()
    wait_viewer(page)
    after = page.evaluate(read_state)
    assert after["slice"] == before["slice"] != 20  # not the middle: where the reader was
    assert after["scale"] == pytest.approx(before["scale"], rel=1e-3)
    assert (after["lower"], after["upper"]) == pytest.approx((before["lower"], before["upper"]))
    assert page.evaluate("window.mritrusViewer.restored") is True

    # the shortcut list
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    screenshot(page, "reader-shortcuts")
    page.keyboard.press("?")
    assert not page.locator("#shortcuts").is_visible()

    # cine plays through the slices until stopped
    start = page.text_content("#slice-counter")
    page.keyboard.press("c")
    wait_js(page, f"document.querySelector('#slice-counter').textContent !== {start!r}")
    page.keyboard.press("c")
    assert page.evaluate("window.mritrusViewer.cine.playing()") is False

    # the worklist offers to continue the draft
    page.goto(f"{live_server.url}/reading/")
    assert page.text_content("#resume").startswith("Continue")
    assert not page.console_errors, page.console_errors
