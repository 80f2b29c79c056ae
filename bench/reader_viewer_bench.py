"""Reader viewer: time from opening a case to its first rendered image, and reader WADO throughput.

Imports the real ProstateX T2 into a temporary SQLite + media folder, opens a one-arm study for one
reader, serves the app with gunicorn (2 workers × 4 threads) on loopback and opens the viewer in
Debian chromium (headless, no GPU) with a cold browser cache each time. The figure is the page's own
`performance.now()` at the first rendered image (navigation start → pixels on the canvas), then the
time to fetch every instance of the series through the blinded reader WADO endpoint.

    python bench/reader_viewer_bench.py [--opens 5] [--port 8766]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import PROSTATEX_T2, ROOT, django_fresh, prostatex_manifest  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def _prepare(var: Path) -> tuple[str, str]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.urls import reverse

    from accounts.models import User
    from readerstudy import services
    from readerstudy.models import Assignment
    from registration.importing.run import cohort_import
    from registration.models import Cohort

    call_command("collectstatic", verbosity=0, interactive=False)
    run = cohort_import(path=prostatex_manifest(var / "in"), cohort_name="bench")
    if run.accepted != 1:
        sys.exit(f"import failed: {run.error or run.report}")
    coordinator = User.objects.create_user("bench-coord", password=None, role="coordinator")
    reader = User.objects.create_user(
        "bench-reader", password=None, role="reader", reader_level="junior"
    )
    study = services.study_create(
        name="bench",
        cohort=Cohort.objects.get(name="bench"),
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[reader],
        washout_days=0,
        seed=1,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    services.study_open(study=study, user=coordinator)
    session = SessionStore()
    session[SESSION_KEY] = str(reader.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = reader.get_session_auth_hash()
    session.create()
    token = Assignment.objects.get().token
    return str(session.session_key), reverse("readerstudy:viewer", args=[token])


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    import http.client

    for _ in range(300):
        if proc.poll() is not None:
            sys.exit("gunicorn exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/accounts/login/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("gunicorn did not start")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--port", type=int, default=8766)
    return parser.parse_args()


def _gunicorn(port: int, var: Path) -> subprocess.Popen:
    env = {**os.environ, "MRITRUS_VAR_DIR": str(var), "MRITRUS_MEDIA_ROOT": str(var / "media")}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return subprocess.Popen(
        [str(gunicorn), "mritrus_site.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )


def _open_twice(page: Any, url: str) -> list[tuple[Any, Any]]:
    """(first image ms, stage timings) of opening the viewer cold, then again warm."""
    opened = []
    for _visit in range(2):  # cold (new browser cache), then warm (next case)
        page.goto(url)
        page.wait_for_function(
            "window.mritrusViewer && (window.mritrusViewer.ready || window.mritrusViewer.error)",
            timeout=60000,
        )
        error = page.evaluate("window.mritrusViewer.error")
        if error:
            sys.exit(f"viewer failed: {error}")
        opened.append(
            (
                page.evaluate("window.mritrusViewer.firstImageMs"),
                page.evaluate("window.mritrusViewer.timings"),
            )
        )
    return opened


def _series_fetch_ms(page: Any) -> float:
    """Every instance of the series through the reader WADO endpoint, in the page."""
    return page.evaluate(
        """async () => {
          const m = await (await fetch(document.querySelector('#viewer-config') &&
            JSON.parse(document.querySelector('#viewer-config').textContent).primary)).json();
          const t0 = performance.now();
          await Promise.all(m.imageIds.map(id => fetch(id.slice(8), {cache: 'no-store'}).then(r => r.arrayBuffer())));
          return performance.now() - t0;
        }"""
    )


def _browse(
    sync_playwright: Any, opens: int, base: str, cookie: str, viewer_path: str, figures: dict
) -> None:
    """``opens`` + 1 fresh browser contexts; the figures of all but the first go to ``figures``."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for attempt in range(opens + 1):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
            page = context.new_page()
            (ms, timings), (warm_ms, _) = _open_twice(page, base + viewer_path)
            fetch_ms = _series_fetch_ms(page)
            if attempt:  # the first open warms gunicorn's workers and imports
                figures["first_image"].append(ms)
                figures["warm"].append(warm_ms)
                figures["stages"].append(timings)
                figures["series_fetch"].append(fetch_ms)
            context.close()
        browser.close()


def _report(
    opens: int,
    first_image: list[float],
    warm: list[float],
    stages: list[dict[str, float]],
    series_fetch: list[float],
) -> None:
    from readerstudy.display import MATRIX, SLICES

    print(
        f"Reader viewer, real ProstateX T2 (stored 19 × 384×384, served on the common display "
        f"grid {SLICES} × {MATRIX}×{MATRIX}), gunicorn 2×4 + headless chromium "
        f"(no GPU) on loopback, {os.cpu_count()} CPU(s), {opens} cold opens"
    )
    print(
        f"  interactive viewer (Cornerstone) first image, cold browser cache: median {statistics.median(first_image):.0f} ms, "
        f"max {max(first_image):.0f} ms"
    )
    print(
        f"  next case, warm browser cache: median {statistics.median(warm):.0f} ms, "
        f"max {max(warm):.0f} ms"
    )
    previews = [t["preview"] for t in stages if t.get("preview") is not None]
    if previews:
        print(
            f"  first image = server-rendered preview of the first slice, cold cache: median "
            f"{statistics.median(previews):.0f} ms, max {max(previews):.0f} ms "
            f"(shown in {len(previews)}/{len(stages)} opens; the interactive viewer replaces it)"
        )
    for stage in ("moduleLoaded", "manifests", "viewportsReady"):
        print(f"    {stage}: median {statistics.median(t[stage] for t in stages):.0f} ms")
    print(
        f"  all {SLICES} display slices via reader WADO (parallel fetch): median "
        f"{statistics.median(series_fetch):.0f} ms"
    )


def main() -> None:
    args = _args()
    if not PROSTATEX_T2.is_dir():
        sys.exit(f"{PROSTATEX_T2} missing: the bench needs ../shared/data")
    if not Path(CHROMIUM).exists() or not (ROOT / "static/vendor/cornerstone.js").exists():
        sys.exit("needs /usr/bin/chromium (make chromium) and the bundle (make frontend)")
    var = django_fresh("mritrus-viewer-bench-")
    cookie, viewer_path = _prepare(var)
    proc = _gunicorn(args.port, var)
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{args.port}"
    figures: dict[str, list] = {"first_image": [], "series_fetch": [], "stages": [], "warm": []}
    try:
        _wait_up(args.port, proc)
        _browse(sync_playwright, args.opens, base, cookie, viewer_path, figures)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # keep-alive connections hold the graceful stop
            proc.kill()
            proc.wait()
    _report(
        args.opens,
        figures["first_image"],
        figures["warm"],
        figures["stages"],
        figures["series_fetch"],
    )


if __name__ == "__main__":
    main()
