"""Playwright with the Debian chromium (never a downloaded browser) against pytest-django's live_server."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BUNDLE = ROOT / "static" / "vendor" / "cornerstone.js"
WORKER = ROOT / "static" / "vendor" / "decodeImageFrameWorker.js"

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are ordinary blocking calls, which Django would otherwise refuse there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _require(what: str, ok: bool) -> None:
    from tests.conftest import require_service

    require_service(what, ok)


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201
    _require(f"Debian chromium at {CHROMIUM} (make chromium)", CHROMIUM.exists())
    _require(
        "the Cornerstone bundle in static/vendor (make frontend)",
        BUNDLE.exists() and WORKER.exists(),
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def page(browser, live_server):  # noqa: ANN001, ANN201
    # Depends on live_server so it is torn down first: requests still in flight when the test DB
    # is flushed lock SQLite's shared in-memory tables.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.console_errors = errors  # type: ignore[attr-defined]

    def on_console(msg) -> None:  # noqa: ANN001
        # HTTP failures are recorded with their URL by on_response instead.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def on_response(response) -> None:  # noqa: ANN001
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"HTTP {response.status} {response.url}")

    # Every Content-Security-Policy violation is an error of the test (Chromium also logs most).
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', function (e) {"
        " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });"
    )
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.goto("about:blank")  # fires pagehide (the viewer's last draft save) while the DB is up
    page.wait_for_timeout(500)
    context.close()


@pytest.fixture
def screenshot():  # noqa: ANN201
    """``screenshot(page, name)`` keeps a full-page PNG under test-artifacts/ for review."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:  # noqa: ANN001
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def login(page, live_server, username: str, password: str = "pw-for-tests-only") -> None:  # noqa: ANN001
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def wait_js(page: Any, expression: str, *, arg: Any = None, timeout: float = 30000) -> None:
    """``page.wait_for_function`` that works under the site's Content-Security-Policy.

    Playwright polls a string predicate with ``eval`` inside the page, which ``script-src 'self'``
    forbids; ``page.evaluate`` runs over the DevTools protocol, outside the page's policy.
    """
    deadline = time.monotonic() + timeout / 1000
    while not (page.evaluate(expression, arg) if arg is not None else page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} ms for {expression}")
        page.wait_for_timeout(50)
