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
