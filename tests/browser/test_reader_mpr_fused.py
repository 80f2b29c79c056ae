"""MPR (1×3) and the fused arm side by side, in a real browser (Debian chromium).

The original arm shows the real ProstateX T2; the fused arm's registered T2 and TRUS are SYNTHETIC.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from readerstudy import read_services
from readerstudy.models import Assignment
from tests.browser.conftest import login, wait_js
from tests.browser.test_reader_study import pixels, study, wait_viewer  # noqa: F401
from tests.readerstudy.builders import complete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

READY = (
    "(() => { const m = window.mritrusViewer.mpr; return m && m.views.sagittal && "
    "m.views.coronal && m.views.sagittal.getCurrentImageId() && "
    "document.querySelectorAll('#ref-lines-coronal line').length === 2; })()"
)


def test_mpr_views_render_real_pixels_with_reference_lines(page, live_server, study, screenshot):  # noqa: ANN001, F811
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    page.select_option("#layout", "1x3")
    wait_js(page, READY, timeout=30000)
    for plane in ("sagittal", "coronal"):
        wait_js(
            page,
            f"window.mritrusViewer.mpr.views.{plane}.getImageData && "
            f"window.mritrusViewer.mpr.views.{plane}.getImageData()",
            timeout=30000,
        )
        assert pixels(page, f"#viewport-{plane}").var() > 100, plane
        assert page.locator(f"#ref-lines-{plane} line").count() == 2
    assert page.locator("#ref-lines-axial line").count() == 2
    markers = {
        plane: [
            page.text_content(f"#{plane}-marker-{s}") for s in ("left", "right", "top", "bottom")
        ]
        for plane in ("sagittal", "coronal")
    }
    assert markers == {"sagittal": ["A", "P", "S", "I"], "coronal": ["R", "L", "S", "I"]}, markers
    # a double-click on the axial view moves the other planes through that point
    box = page.locator("#viewport-primary canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2 + 50, box["y"] + box["height"] / 2 + 30
    world = page.evaluate(
        "([x, y]) => window.mritrusViewer.primary.canvasToWorld([x, y])",
        [x - box["x"], y - box["y"]],
    )
    page.mouse.dblclick(x, y)
    wait_js(
        page,
        f"Math.abs(window.mritrusViewer.mpr.crossing()[0] - {world[0]}) <= 1.01",
        timeout=10000,
    )
    crossing = page.evaluate("window.mritrusViewer.mpr.crossing()")
    assert abs(crossing[1] - world[1]) <= 1.01
    screenshot(page, "reader-mpr-1x3")
    # every canvas is drawn at its displayed size (a stale size would stretch the image)
    sizes = page.evaluate(
        "[...document.querySelectorAll('.viewport canvas')].map(c => [c.width, c.clientWidth])"
    )
    assert all(abs(w - cw) <= 1 for w, cw in sizes), sizes
    # the layout comes back after a reload
    wait_js(
        page,  # the state is written (debounced) before the reload
        "(JSON.parse(localStorage.getItem('mritrus:view:' + location.pathname) || '{}')"
        ".layout) === '1x3'",
    )
    page.reload()
    wait_viewer(page)
    wait_js(page, READY, timeout=30000)
    assert page.input_value("#layout") == "1x3"
    assert not page.console_errors, page.console_errors


def test_fused_side_by_side_linked_crosshair_and_own_window(page, live_server, study, screenshot):  # noqa: ANN001, F811
    junior = get_user_model().objects.get(username="b_junior")
    for a in Assignment.objects.filter(study=study, reader__user=junior, session=1):
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=5)
    login(page, live_server, "b_junior")
    page.click("#resume")
    wait_viewer(page)
    page.select_option("#layout", "side")
    wait_js(page, "document.querySelector('#viewport-stack').dataset.mode === 'side'")
    under = page.locator("#viewport-underlay canvas").bounding_box()
    prim = page.locator("#viewport-primary canvas").bounding_box()
    assert prim["x"] >= under["x"] + under["width"] - 2  # beside, not over
    # point on the TRUS: the cross appears at the same place on the T2
    page.mouse.move(under["x"] + under["width"] * 0.6, under["y"] + under["height"] * 0.4)
    wait_js(page, "!document.querySelector('#cross-primary').hidden")
    cu = page.locator("#cross-underlay").bounding_box()
    cp = page.locator("#cross-primary").bounding_box()
    assert abs((cu["x"] - under["x"]) - (cp["x"] - prim["x"])) <= 2
    assert abs((cu["y"] - under["y"]) - (cp["y"] - prim["y"])) <= 2
    screenshot(page, "reader-fused-side-by-side")
    # window/level of the TRUS alone
    voi = (
        "[window.mritrusViewer.underlay.getProperties().voiRange,"
        " window.mritrusViewer.primary.getProperties().voiRange]"
    )
    before = page.evaluate(voi)
    cx, cy = under["x"] + under["width"] / 2, under["y"] + under["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 40, steps=6)
    page.mouse.up()
    wait_js(
        page,
        f"window.mritrusViewer.underlay.getProperties().voiRange.upper !== {before[0]['upper']}",
    )
    after = page.evaluate(voi)
    assert after[1] == before[1]  # the T2 kept its window
    assert not page.console_errors, page.console_errors
