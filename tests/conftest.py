"""Shared pytest fixtures: real-data location and users by role."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data`` (real fixtures). Skips outside CI when absent; fails in CI."""
    if not SHARED_DATA.is_dir():
        if _in_ci():
            pytest.fail(f"{SHARED_DATA} is missing: CI must have the shared real-data fixtures")
        pytest.skip(f"{SHARED_DATA} not present (a user's own clone); real-data test skipped")
    return SHARED_DATA


def require_service(name: str, available: bool) -> None:
    """Skip when a loopback service is absent, except in CI where it must run."""
    if available:
        return
    if _in_ci():
        pytest.fail(f"{name} is not reachable on loopback, and CI must run this test")
    pytest.skip(f"{name} not reachable on loopback")


# --- users by role -------------------------------------------------------------------------------
# `outsider` is a logged-in reader who belongs to no study: every object check must refuse them.


@pytest.fixture
def admin(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    return UserFactory(username="t_admin", role="admin", reader_level="", years_experience=None)


@pytest.fixture
def coordinator(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    return UserFactory(
        username="t_coordinator", role="coordinator", reader_level="", years_experience=None
    )


@pytest.fixture
def junior(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    return UserFactory(
        username="t_junior", role="reader", reader_level="junior", years_experience=3
    )


@pytest.fixture
def senior(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    return UserFactory(
        username="t_senior", role="reader", reader_level="senior", years_experience=15
    )


@pytest.fixture
def outsider(db):  # noqa: ANN001, ANN201
    from accounts.factories import UserFactory

    return UserFactory(
        username="t_outsider", role="reader", reader_level="junior", years_experience=1
    )


@pytest.fixture
def client_for():  # noqa: ANN201
    """``client_for(user)`` returns a Django test client logged in as ``user``."""
    from django.test import Client

    def make(user):  # noqa: ANN001, ANN202
        c = Client()
        c.force_login(user)
        return c

    return make


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):  # noqa: ANN001, ANN202
    """Every test writes images under its own temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
