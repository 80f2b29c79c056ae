"""/api/docs/ renders its operations with no network: Swagger UI is served from our static files."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_show_operations_offline(page, live_server, screenshot) -> None:  # noqa: ANN001
    from accounts.factories import UserFactory

    UserFactory(username="docs_coord", role="coordinator", reader_level="", years_experience=None)
    outside: list[str] = []

    def only_the_live_server(route) -> None:  # noqa: ANN001
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:  # a CDN or any other host: as on a machine with no network
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_live_server)
    login(page, live_server, "docs_coord")
    html = page.goto(f"{live_server.url}/api/docs/")
    assert html is not None and html.status == 200
    assert "cdn" not in html.text().lower()
    page.wait_for_selector(".opblock", timeout=30000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/cohorts/" in s for s in summaries), summaries[:5]
    assert outside == []
    # The site's Content-Security-Policy holds here too: nothing inline, nothing from elsewhere.
    policy = html.headers["content-security-policy"]
    assert "unsafe-inline" not in policy.split("style-src-attr")[0] and "http" not in policy
    assert not page.console_errors, page.console_errors
    screenshot(page, "api-docs-offline")
