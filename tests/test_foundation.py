"""Project-level checks: settings from the environment, login required, role redirects."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_passes_with_production_variables(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": "x" * 60 + "-prod-secret-for-check-deploy-only",
        "DJANGO_ALLOWED_HOSTS": "mritrus.example.org",
        "MRITRUS_HTTPS": "1",
        "MRITRUS_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_DEBUG", None)
    # Set for the Playwright tests in this process; a deployment never has it.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_debug_off_by_default():
    from django.conf import settings

    assert os.environ.get("DJANGO_DEBUG") or settings.DEBUG is False


def test_database_url_switches_to_postgresql():
    import dj_database_url

    cfg = dj_database_url.parse("postgres://u@127.0.0.1:5432/mritrus")
    assert cfg["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.django_db
def test_home_requires_login(client):
    r = client.get("/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


@pytest.mark.django_db
def test_api_schema_requires_login(client, coordinator, client_for):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client_for(coordinator).get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_reader_level_constraint_in_database(db):
    from django.db import IntegrityError, transaction

    from accounts.models import User

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="bad", role="reader", reader_level="")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="bad2", role="coordinator", reader_level="senior")
