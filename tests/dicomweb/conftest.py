"""DICOMweb fixtures: a SYNTHETIC cohort of stored cases and DICOM files to store (all simulated)."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest

from registration.models import Case, Cohort, ImageSeries


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # noqa: ANN001, ANN202
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def stored_series(case: Case, *, modality: str, shape=(16, 12, 4), seed: int = 0) -> ImageSeries:  # noqa: ANN001
    from registration.services import series_create_from_array

    rng = np.random.default_rng(seed)
    affine = np.diag([0.8, 0.9, 2.0, 1.0])
    affine[:3, 3] = [-5.0, 3.0, 10.0]
    return series_create_from_array(
        case=case,
        modality=modality,
        kind="original",
        array=np.rint(rng.normal(200, 40, size=shape)).astype(np.float32),
        affine=affine,
        series_description=f"synthetic {modality}",
        source="synthetic (tests)",
    )


@pytest.fixture
def cohort(db) -> Cohort:  # noqa: ANN001
    """Two SYNTHETIC cases: SYN01 with MR and US, SYN02 with MR; and another cohort's case."""
    cohort = Cohort.objects.create(name="Synthetic DICOMweb cohort", synthetic=True)
    for code, modalities in (("SYN01", ("MR_T2", "US")), ("SYN02", ("MR_T2",))):
        case = Case.objects.create(
            cohort=cohort,
            case_code=code,
            reference_pirads=3,
            synthetic=True,
            deid_key=secrets.token_hex(32),
        )
        for n, modality in enumerate(modalities):
            stored_series(case, modality=modality, seed=n)
    other = Cohort.objects.create(name="Other synthetic cohort", synthetic=True)
    case = Case.objects.create(
        cohort=other, case_code="OTHER1", reference_pirads=2, synthetic=True, deid_key="ab" * 32
    )
    stored_series(case, modality="MR_T2", seed=9)
    return cohort


def t2_files(folder: Path, *, patient: str = "SIM-PATIENT-1", slices: int = 3) -> list[Path]:
    """A SIMULATED T2 series as Part 10 files, as a scanner would send (identifiers included)."""
    from pydicom.uid import generate_uid

    from registration.dicom.write import series_write

    rng = np.random.default_rng(7)
    affine = np.diag([0.7, 0.7, 3.0, 1.0])
    written = series_write(
        folder,
        volume=np.rint(rng.normal(300, 50, size=(24, 20, slices))).astype(np.float32),
        affine=affine,
        modality="MR",
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        sop_uids=[generate_uid() for _ in range(slices)],
        patient_name="Simulated^Patient",
        patient_id=patient,
        series_description="t2_tse_tra",
        study_date="20240102",
    )
    return [path for _uid, path in written]
