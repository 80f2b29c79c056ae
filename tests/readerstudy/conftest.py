"""Reader-study fixtures: a small SYNTHETIC cohort with stored series, and an open study."""

from __future__ import annotations

import pytest

from readerstudy import services
from registration.models import Cohort
from tests.readerstudy.builders import case_with_series


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # noqa: ANN001, ANN202
    # PBKDF2 costs ~0.3 s per user on 2 cores; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cohort(db):  # noqa: ANN001, ANN201
    return Cohort.objects.create(name="Synthetic reader cohort", synthetic=True)


@pytest.fixture
def three_cases(cohort):  # noqa: ANN001, ANN201
    """Two complete SYNTHETIC cases and one without a registered T2 (left out of the study)."""
    return [
        case_with_series(cohort, "SYN-A", reference_pirads=5, seed=1),
        case_with_series(cohort, "SYN-B", reference_pirads=2, seed=2),
        case_with_series(cohort, "SYN-C", reference_pirads=4, registered=False, seed=3),
    ]


@pytest.fixture
def open_study(cohort, three_cases, coordinator, junior, senior):  # noqa: ANN001, ANN201
    study = services.study_create(
        name="Blinded study",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original", "registered", "fused"],
        readers=[junior, senior],
        washout_days=0,
        seed=1234,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    return services.study_open(study=study, user=coordinator)
