"""Brute force and API tokens: lockout on the login form and the token endpoint (django-axes),
the token endpoint's throttle, token expiry and revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.throttling import ScopedRateThrottle

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_throttles(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # DRF throttle counters live in the cache
    yield
    cache.clear()


@pytest.fixture
def victim(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    user = UserFactory(username="t_victim", role="coordinator", reader_level="")
    user.set_password(PASSWORD)
    user.save()
    return user


def _form_login(client: Client, password: str) -> int:
    response = client.post("/accounts/login/", {"username": "t_victim", "password": password})
    return response.status_code


def _token(client: Client, password: str, username: str = "t_victim") -> int:
    return client.post("/api/auth/token/", {"username": username, "password": password}).status_code


def test_login_form_locks_out_after_repeated_failures(victim, settings) -> None:  # noqa: ANN001
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [_form_login(client, f"wrong-{i}") for i in range(limit + 5)]
    assert statuses[: limit - 1] == [200] * (limit - 1)  # the form again, with an error
    assert set(statuses[limit:]) == {429}
    # The right password no longer logs in, and the page says why.
    response = client.post("/accounts/login/", {"username": "t_victim", "password": PASSWORD})
    assert response.status_code == 429 and b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session
    # Another address is not locked out (the lock is per username and address).
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert (
        other.post("/accounts/login/", {"username": "t_victim", "password": PASSWORD}).status_code
        == 302
    )
    # An administrator unlocks the account.
    call_command("axes_reset_username", "t_victim")
    assert _form_login(client, PASSWORD) == 302


def test_token_endpoint_locks_out_after_repeated_failures(victim, settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "1000/min"})
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [_token(client, f"wrong-{i}") for i in range(limit + 5)]
    assert statuses[: limit - 1] == [400] * (limit - 1)
    assert set(statuses[limit:]) == {429}
    assert _token(client, PASSWORD) == 429 and not Token.objects.exists()


def test_token_endpoint_is_throttled(victim, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    client = Client()
    assert [_token(client, PASSWORD) for _ in range(3)] == [200] * 3
    assert _token(client, PASSWORD) == 429
    assert _token(client, "wrong", username="nobody") == 429


def test_token_expires_and_is_replaced(victim, settings) -> None:  # noqa: ANN001
    client = Client()
    answer = client.post("/api/auth/token/", {"username": "t_victim", "password": PASSWORD})
    key = answer.json()["token"]
    assert answer.json()["expires_at"]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/cohorts/", **auth).status_code == 200
    hours = settings.MRITRUS_TOKEN_TTL_HOURS
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(hours=hours, minutes=1))
    expired = client.get("/api/cohorts/", **auth)
    assert expired.status_code in (401, 403) and "expired" in expired.json()["detail"]
    assert not Token.objects.filter(key=key).exists()
    fresh = client.post("/api/auth/token/", {"username": "t_victim", "password": PASSWORD})
    assert fresh.json()["token"] != key
    # Just inside its lifetime a token still works.
    Token.objects.filter(key=fresh.json()["token"]).update(
        created=timezone.now() - timedelta(hours=hours, minutes=-1)
    )
    auth = {"HTTP_AUTHORIZATION": f"Token {fresh.json()['token']}"}
    assert client.get("/api/cohorts/", **auth).status_code == 200


def test_token_revoke(victim) -> None:  # noqa: ANN001
    client = Client()
    key = client.post("/api/auth/token/", {"username": "t_victim", "password": PASSWORD}).json()[
        "token"
    ]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.post("/api/auth/token/revoke/", **auth).status_code == 204
    assert client.get("/api/cohorts/", **auth).status_code in (401, 403)
    assert client.post("/api/auth/token/revoke/", **auth).status_code in (401, 403)
