"""Builders for reader-study tests: cases with stored series, study setup, complete scores.

Volumes are SYNTHETIC (smooth random patterns; such cases are flagged synthetic), except
``prostatex_t2``, which loads the real ProstateX T2 from ../shared/data.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from registration.models import Case, Cohort
from registration.services import series_create_from_array

TRUS_AFFINE = np.diag([0.8, 0.8, 0.8, 1.0])
MR_AFFINE = np.diag([0.6, 0.6, 3.0, 1.0])


def synthetic_volume(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Smooth SYNTHETIC intensities with a bright blob, so percentiles and slices differ."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    blob = np.exp(-((i - 0.2) ** 2 + (j + 0.1) ** 2 + k**2) / 0.15)
    return (400 + 600 * blob + 80 * i + 40 * k + rng.normal(0, 20, shape)).astype(np.float32)


def case_with_series(
    cohort: Cohort,
    code: str,
    *,
    reference_pirads: int = 3,
    registered: bool = True,
    trus: bool = True,
    t2: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    synthetic: bool | None = None,
) -> Case:
    case = Case.objects.create(
        cohort=cohort,
        case_code=code,
        reference_pirads=reference_pirads,
        cspca=reference_pirads >= 4,
        isup_grade=2 if reference_pirads >= 4 else 0,
        lesion_side="left" if reference_pirads >= 3 else "none",
        synthetic=synthetic if synthetic is not None else t2 is None,
        deid_key=secrets.token_hex(16),
    )
    t2_array, t2_affine = t2 if t2 is not None else (synthetic_volume((24, 24, 5), seed), MR_AFFINE)
    series_create_from_array(
        case=case,
        modality="MR_T2",
        kind="original",
        array=t2_array,
        affine=t2_affine,
        series_description=f"t2 tse tra {code}",
    )
    us = None
    if trus:
        us = series_create_from_array(
            case=case,
            modality="US",
            kind="original",
            array=synthetic_volume((20, 22, 6), seed + 1) / 4,
            affine=TRUS_AFFINE,
            series_description=f"TRUS {code}",
        )
    if registered:
        series_create_from_array(
            case=case,
            modality="MR_T2",
            kind="registered",
            array=synthetic_volume((20, 22, 6), seed + 2),
            affine=TRUS_AFFINE,
            frame_of_reference_uid=us.frame_of_reference_uid if us else None,
            series_description=f"registered T2 {code} rern+io",
            model_key="rern+io",
        )
    return case


def prostatex_t2(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    from registration.dicom.read import series_load

    folder = shared_data / "prostatex-0000-dicom" / "4.000000-t2tsetra-00702"
    loaded = series_load(sorted(p for p in folder.iterdir() if p.is_file()), root=folder)
    return loaded.volume, loaded.affine


def complete(data: dict | None = None) -> dict:
    base = {"pirads": 4, "zone": "pz", "side": "left", "likert": 6, "comment": "focal lesion"}
    base.update(data or {})
    return base
