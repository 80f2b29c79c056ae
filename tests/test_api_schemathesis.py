"""The API answers what its OpenAPI schema says: schemathesis against a live server on a fresh
test database, bounded (few examples per operation, a time budget), as a coordinator.

Checks: no server error, every status code and content type documented, every body valid
against its schema. The run's summary is printed (pytest -s shows it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from readerstudy import services
from registration.models import Cohort
from tests.readerstudy.builders import case_with_series

ST = Path(sys.executable).with_name("st")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# Bounds: a few examples per operation and a time budget for the whole run (shared CI cores).
MAX_EXAMPLES = 3
MAX_TIME_S = 150


@pytest.fixture
def api_data(transactional_db, coordinator, junior, settings):  # noqa: ANN001, ANN201
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cohort = Cohort.objects.create(name="Synthetic schemathesis cohort", synthetic=True)
    case_with_series(cohort, "SYN-S1", seed=1)
    case_with_series(cohort, "SYN-S2", seed=2)
    study = services.study_create(
        name="Schema study",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "registered"],
        readers=[junior],
        washout_days=0,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    services.study_open(study=study, user=coordinator)
    return Token.objects.create(user=coordinator)


@pytest.mark.slow
def test_api_conforms_to_its_schema(live_server, api_data, tmp_path) -> None:  # noqa: ANN001
    assert ST.exists() or shutil.which("st"), "schemathesis is a dev dependency"
    command = [
        str(ST if ST.exists() else shutil.which("st")),
        "run",
        f"{live_server.url}/api/schema/",
        "--header",
        f"Authorization: Token {api_data.key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME_S),
        "--seed",
        "14",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        # Revoking the run's own token would turn the rest of the run into 401s.
        "--exclude-path",
        "/api/auth/token/revoke/",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    out = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its working folder
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=MAX_TIME_S + 120,
        check=False,
    )
    summary = out.stdout[-6000:]
    print(summary)
    (tmp_path / "schemathesis.txt").write_text(out.stdout)
    assert out.returncode == 0, summary + out.stderr[-2000:]
