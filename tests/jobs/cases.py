"""SYNTHETIC job-test cases: a small MR/TRUS pair of ellipsoid "glands" with labels and landmarks.

Written through the real `series_create_from_array`, so a case here is stored exactly as an imported
one. Used in-process by the tests and from worker subprocesses by `tests/jobs/harness.py`.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from numpy.typing import NDArray

MR_SHAPE = (32, 32, 10)
US_SHAPE = (28, 28, 12)


def _ellipsoid(
    shape: tuple[int, int, int], centre: tuple[float, ...], radii: tuple[float, ...]
) -> NDArray[np.uint8]:
    g = np.indices(shape, dtype=np.float32)
    d = sum(((g[i] - centre[i]) / radii[i]) ** 2 for i in range(3))
    return (d <= 1.0).astype(np.uint8)


def _ball(shape: tuple[int, int, int], centre: tuple[float, ...], r: float) -> NDArray[np.bool_]:
    g = np.indices(shape, dtype=np.float32)
    return sum((g[i] - centre[i]) ** 2 for i in range(3)) <= r * r


def synthetic_pair(seed: int = 0) -> dict[str, Any]:
    """MR (1x1x3 mm) and TRUS (1x1x2 mm) volumes of a gland, each in its own frame (~25 mm apart).

    Few slices on purpose: every slice becomes a DICOM file when the case is stored.
    """
    rng = np.random.default_rng(seed)
    mr_aff = np.diag([1.0, 1.0, 3.0, 1.0])
    mr_aff[:3, 3] = [-16.0, -16.0, -15.0]
    # The TRUS in its own (probe) frame, origin 0: its world coordinates say nothing of the MR's.
    us_aff = np.diag([1.0, 1.0, 2.0, 1.0])
    mr_centre = (16.0, 16.0, 5.0)
    us_centre = (15.0, 13.0, 5.5)
    mr_label = _ellipsoid(MR_SHAPE, mr_centre, (8.0, 6.0, 2.7))
    us_label = _ellipsoid(US_SHAPE, us_centre, (8.5, 6.5, 3.6))
    mr = (200.0 * mr_label + 60.0 * _ellipsoid(MR_SHAPE, mr_centre, (13.0, 12.0, 4.0))).astype(
        np.float32
    )
    mr += rng.normal(0, 5, MR_SHAPE).astype(np.float32)
    us = (40.0 + 80.0 * (1 - us_label) * _ellipsoid(US_SHAPE, us_centre, (13.0, 12.0, 5.0))).astype(
        np.float32
    )
    us *= rng.rayleigh(1.0, US_SHAPE).astype(np.float32)
    mr_lm = np.zeros(MR_SHAPE, np.uint8)
    us_lm = np.zeros(US_SHAPE, np.uint8)
    for k, (dm, du) in enumerate((((3, 0, 1), (3, 0, 1.5)), ((-3, 2, -1), (-3, 2, -1.5))), start=1):
        mr_lm[_ball(MR_SHAPE, tuple(c + d for c, d in zip(mr_centre, dm)), 1.5)] = k
        us_lm[_ball(US_SHAPE, tuple(c + d for c, d in zip(us_centre, du)), 1.5)] = k
    return {
        "mr": mr,
        "mr_affine": mr_aff,
        "mr_label": mr_label,
        "mr_landmarks": mr_lm,
        "us": us,
        "us_affine": us_aff,
        "us_label": us_label,
        "us_landmarks": us_lm,
    }


def cohort_make(name: str = "Synthetic job cohort") -> Any:
    from registration.models import Cohort

    cohort, _ = Cohort.objects.get_or_create(
        name=name, defaults={"synthetic": True, "description": "SYNTHETIC test data"}
    )
    return cohort


def case_make(
    cohort: Any,
    code: str,
    *,
    seed: int = 0,
    labels: bool = True,
    landmarks: bool = True,
    trus: bool = True,
    mr_label_override: NDArray[np.uint8] | None = None,
) -> Any:
    """One synthetic case with MR T2, TRUS, gland labels and landmarks (each optional)."""
    from registration.models import Case, ImageSeries
    from registration.services import series_create_from_array

    pair = synthetic_pair(seed)
    case = Case.objects.create(
        cohort=cohort,
        case_code=code,
        age=65,
        reference_pirads=3,
        synthetic=True,
        deid_key=secrets.token_hex(16),
    )
    mr = series_create_from_array(
        case=case,
        modality=ImageSeries.Modality.MR_T2,
        kind=ImageSeries.Kind.ORIGINAL,
        array=pair["mr"],
        affine=pair["mr_affine"],
        series_description="T2 axial",
        source="synthetic",
    )
    us = None
    if trus:
        us = series_create_from_array(
            case=case,
            modality=ImageSeries.Modality.US,
            kind=ImageSeries.Kind.ORIGINAL,
            array=pair["us"],
            affine=pair["us_affine"],
            series_description="TRUS",
            source="synthetic",
        )
    if labels:
        mr_label = pair["mr_label"] if mr_label_override is None else mr_label_override
        series_create_from_array(
            case=case,
            modality=ImageSeries.Modality.MR_T2,
            kind=ImageSeries.Kind.LABEL,
            array=mr_label,
            affine=pair["mr_affine"],
            frame_of_reference_uid=mr.frame_of_reference_uid,
            label_of=mr,
            source="synthetic",
        )
        if us is not None:
            series_create_from_array(
                case=case,
                modality=ImageSeries.Modality.US,
                kind=ImageSeries.Kind.LABEL,
                array=pair["us_label"],
                affine=pair["us_affine"],
                frame_of_reference_uid=us.frame_of_reference_uid,
                label_of=us,
                source="synthetic",
            )
    if landmarks and us is not None:
        for series, key, modality in (
            (mr, "mr", ImageSeries.Modality.MR_T2),
            (us, "us", ImageSeries.Modality.US),
        ):
            series_create_from_array(
                case=case,
                modality=modality,
                kind=ImageSeries.Kind.LANDMARKS,
                array=pair[f"{key}_landmarks"],
                affine=pair[f"{key}_affine"],
                frame_of_reference_uid=series.frame_of_reference_uid,
                label_of=series,
                source="synthetic",
            )
    return case


def cohort_with_cases(n: int, *, name: str = "Synthetic job cohort", labels: bool = True) -> Any:
    cohort = cohort_make(name)
    for i in range(n):
        case_make(cohort, f"SYN{i:03d}", seed=i, labels=labels, landmarks=labels)
    return cohort
