"""Small stored cases for view and service tests (synthetic volumes, labelled so)."""

from __future__ import annotations

import secrets

import numpy as np

from registration.models import Case, Cohort, ImageSeries


def synthetic_case(*, cohort_name: str = "Synthetic test cohort", code: str = "SYN01") -> Case:
    cohort, _ = Cohort.objects.get_or_create(name=cohort_name, defaults={"synthetic": True})
    return Case.objects.create(
        cohort=cohort,
        case_code=code,
        reference_pirads=3,
        synthetic=True,
        deid_key=secrets.token_hex(32),
    )


def synthetic_series(case: Case, *, modality: str = "MR_T2", shape=(12, 10, 6)) -> ImageSeries:  # noqa: ANN001
    from registration.services import series_create_from_array

    rng = np.random.default_rng(0)
    affine = np.diag([0.8, 0.9, 2.0, 1.0])
    affine[:3, 3] = [-5.0, 3.0, 10.0]
    return series_create_from_array(
        case=case,
        modality=modality,
        kind="original",
        array=rng.normal(200, 40, size=shape).astype(np.float32),
        affine=affine,
        series_description="synthetic test volume",
        source="synthetic (tests)",
    )
