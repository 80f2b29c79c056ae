"""The volumes a registration job reads: the case's MR T2 and TRUS, and their labels and landmarks.

Every problem is a `JobInputError` whose message names the case and the image, for the job page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from registration.jobs.selectors import case_missing_inputs
from registration.jobs.state import JobInputError
from registration.models import Case, ImageSeries
from registration.storage import media_path

_MODALITY_NAME: dict[str, str] = {"MR_T2": "MR T2", "US": "TRUS"}


@dataclass
class JobInputs:
    mr: NDArray[np.float32]
    mr_affine: NDArray[np.float64]
    us: NDArray[np.float32]
    us_affine: NDArray[np.float64]
    us_series: ImageSeries
    mr_label: NDArray[np.uint8] | None = None
    us_label: NDArray[np.uint8] | None = None
    mr_landmarks: NDArray[np.uint8] | None = None
    us_landmarks: NDArray[np.uint8] | None = None


def _image_load(
    *, case: Case, series: ImageSeries
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    from inference.io import volume_load

    name = _MODALITY_NAME.get(series.modality, series.modality)
    try:
        array, affine = volume_load(media_path(series.nifti_path))
    except (OSError, ValueError, EOFError) as exc:
        raise JobInputError(
            f"The {name} image of case {case.case_code} could not be read ({exc}). "
            "Re-import the case."
        ) from exc
    if not np.all(np.isfinite(array)):
        raise JobInputError(
            f"The {name} image of case {case.case_code} contains NaN or infinite voxels."
        )
    if float(array.max()) == float(array.min()):
        raise JobInputError(
            f"The {name} image of case {case.case_code} is blank (one constant value)."
        )
    return array, affine


def _label_load(
    *, case: Case, series: ImageSeries, image: NDArray[np.float32], what: str
) -> NDArray[np.uint8]:
    from inference.io import label_load, landmarks_load

    name = f"{_MODALITY_NAME.get(series.modality, series.modality)} {what}"
    loader = landmarks_load if series.kind == ImageSeries.Kind.LANDMARKS else label_load
    try:
        label, _ = loader(media_path(series.nifti_path))
    except (OSError, ValueError, EOFError) as exc:
        raise JobInputError(
            f"The {name} of case {case.case_code} could not be read ({exc}). Re-import the case."
        ) from exc
    if label.shape != image.shape:
        raise JobInputError(
            f"The {name} of case {case.case_code} has grid {label.shape}, but its image has "
            f"{image.shape}."
        )
    if not np.any(label):
        raise JobInputError(
            f"The {name} of case {case.case_code} is empty: it does not overlap the image."
        )
    return label


def job_inputs_load(*, case: Case) -> JobInputs:
    """Read and check everything the registration of ``case`` uses."""
    originals = {s.modality: s for s in case.series.filter(kind=ImageSeries.Kind.ORIGINAL)}
    mr_s = originals.get(ImageSeries.Modality.MR_T2)
    us_s = originals.get(ImageSeries.Modality.US)
    if mr_s is None or us_s is None:
        raise JobInputError(
            f"Case {case.case_code} has no {case_missing_inputs(case=case)} image; registration "
            "needs both the MR T2 and the TRUS."
        )
    mr, mr_aff = _image_load(case=case, series=mr_s)
    us, us_aff = _image_load(case=case, series=us_s)
    inputs = JobInputs(mr=mr, mr_affine=mr_aff, us=us, us_affine=us_aff, us_series=us_s)
    for attached in ImageSeries.objects.filter(
        label_of__in=[mr_s, us_s], kind__in=[ImageSeries.Kind.LABEL, ImageSeries.Kind.LANDMARKS]
    ).order_by("pk"):
        on_mr = attached.label_of_id == mr_s.pk
        image = mr if on_mr else us
        if attached.kind == ImageSeries.Kind.LABEL:
            label = _label_load(case=case, series=attached, image=image, what="gland label")
            if on_mr:
                inputs.mr_label = label
            else:
                inputs.us_label = label
        else:
            lm = _label_load(case=case, series=attached, image=image, what="landmark label")
            if on_mr:
                inputs.mr_landmarks = lm
            else:
                inputs.us_landmarks = lm
    # No check of the MR label against the TRUS field of view: the two share no frame of reference
    # (the registration aligns them from the glands, and says so when it cannot).
    return inputs
