"""Project-level checks: settings from the environment, login required, role redirects."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


PRODUCTION = {
    "DJANGO_SECRET_KEY": "x" * 60 + "-prod-secret-for-check-deploy-only",
    "MRITRUS_DEID_SALT": "s" * 48 + "-prod-salt-for-check-deploy-only",
    "DJANGO_ALLOWED_HOSTS": "mritrus.example.org",
    "MRITRUS_HTTPS": "1",
}


def _clean_env(tmp_path, **extra):  # noqa: ANN001, ANN003, ANN202
    """The process environment minus every project variable, with a var/ folder of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "MRITRUS_", "DATABASE_URL"))
    }
    # DJANGO_ALLOW_ASYNC_UNSAFE is set for the Playwright tests in this process; no deployment has it.
    return {**env, "MRITRUS_VAR_DIR": str(tmp_path), **extra}


def _run(env, *args):  # noqa: ANN001, ANN002, ANN202
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def _settings_value(env, expression):  # noqa: ANN001, ANN202
    """Evaluate ``expression`` on the settings module itself, imported fresh in a subprocess
    (pytest-django forces DEBUG=False in this process, so it cannot test the default)."""
    code = f"import mritrus_site.settings as s; print(repr({expression}))"
    out = _run(env, "-c", code)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_check_deploy_passes_with_production_variables(tmp_path):
    out = _run(
        _clean_env(tmp_path, **PRODUCTION),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_check_deploy_reports_a_salt_that_is_not_set(tmp_path):
    env = _clean_env(tmp_path, **PRODUCTION)
    del env["MRITRUS_DEID_SALT"]
    out = _run(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert out.returncode != 0 and "mritrus.W001" in out.stdout + out.stderr
    env["MRITRUS_DEID_SALT"] = "short"
    out = _run(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert out.returncode != 0 and "mritrus.W002" in out.stdout + out.stderr


def test_settings_refuse_to_start_without_a_secret_unless_debug(tmp_path):
    out = _run(_clean_env(tmp_path), "-c", "import mritrus_site.settings")
    assert out.returncode != 0 and "no secret key" in out.stderr
    assert _settings_value(_clean_env(tmp_path, DJANGO_DEBUG="1"), "s.DEBUG") == "True"
    (tmp_path / "secret_key").write_text("k" * 50)
    assert _settings_value(_clean_env(tmp_path), "s.SECRET_KEY") == repr("k" * 50)
    # Without its own variable the salt is the (per-install) secret key, never a constant.
    assert _settings_value(_clean_env(tmp_path), "s.MRITRUS_DEID_SALT") == repr("k" * 50)


def test_debug_off_by_default(tmp_path):
    env = _clean_env(tmp_path, DJANGO_SECRET_KEY="k" * 50)
    assert _settings_value(env, "s.DEBUG") == "False"
    assert _settings_value({**env, "DJANGO_DEBUG": "0"}, "s.DEBUG") == "False"
    assert _settings_value({**env, "DJANGO_DEBUG": "1"}, "s.DEBUG") == "True"


def test_database_url_switches_the_project_to_postgresql(tmp_path):
    env = _clean_env(tmp_path, DJANGO_SECRET_KEY="k" * 50)
    assert "sqlite3" in _settings_value(env, "s.DATABASES['default']['ENGINE']")
    env["DATABASE_URL"] = "postgres://u@127.0.0.1:5432/mritrus"
    engine = _settings_value(env, "s.DATABASES['default']['ENGINE']")
    assert engine == repr("django.db.backends.postgresql")
    assert _settings_value(env, "s.DATABASES['default']['NAME']") == repr("mritrus")


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
