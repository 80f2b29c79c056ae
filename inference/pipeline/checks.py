"""The checks of :func:`inference.pipeline.register_case`: inputs (shapes, affines, finite values)
before anything is computed, the two gland labels before the alignment, the result after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.case_metrics import basis_describe
from inference.pipeline.config import Float32, RegistrationConfig, RegistrationFailed


def volume_check(name: str, arr: Any, affine: Any | None = None) -> NDArray[np.generic]:
    a = np.asarray(arr)
    if a.ndim != 3 or min(a.shape) < 2:
        raise ValueError(
            f"{name} must be a 3-D volume (X, Y, Z) with >= 2 voxels per axis, got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if affine is not None:
        af = np.asarray(affine, dtype=np.float64)
        if af.shape != (4, 4) or abs(np.linalg.det(af[:3, :3])) < 1e-9:
            raise ValueError(
                f"{name} affine must be an invertible 4x4 matrix, got shape {af.shape}"
            )
    return a


def grid_check(name: str, arr: Any | None, shape: tuple[int, ...]) -> None:
    if arr is not None and np.asarray(arr).shape != shape:
        raise ValueError(
            f"{name} has shape {np.asarray(arr).shape}, expected {shape} (its image's grid)"
        )


def volume_ml(label: NDArray[np.generic], affine: NDArray[np.float64]) -> float:
    return float(np.count_nonzero(label)) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0


def labels_check(mr_ml: float, us_ml: float, source: dict[str, str]) -> None:
    how = {s: ("segmented" if source.get(s) == "segmented" else "given") for s in ("mr", "us")}
    if mr_ml <= 0:
        raise RegistrationFailed(f"No prostate gland in the MRI ({how['mr']} label is empty).")
    if us_ml <= 0:
        raise RegistrationFailed(f"No prostate gland in the TRUS ({how['us']} label is empty).")
    ratio = us_ml / mr_ml
    if not 0.5 <= ratio <= 2.0:
        raise RegistrationFailed(
            f"The gland volumes disagree: {mr_ml:.1f} mL in the MRI ({how['mr']} label) and "
            f"{us_ml:.1f} mL in the TRUS ({how['us']} label) cannot be the same gland; check the "
            "segmentations before registering."
        )


def result_check(met: dict[str, float], cfg: RegistrationConfig, source: dict[str, str]) -> None:
    dsc = met.get("dsc_after", float("nan"))
    if not dsc >= cfg.min_dsc:
        raise RegistrationFailed(
            f"The registration failed: the gland Dice after registration is {dsc:.2f} "
            f"(below {cfg.min_dsc:.2f}) {basis_describe(source)}."
        )
    fold = met.get("folding_fraction", 0.0)
    if fold > cfg.max_folding:
        raise RegistrationFailed(
            f"The registration failed: {100 * fold:.2f}% of voxels fold (the deformation is not "
            f"invertible there; at most {100 * cfg.max_folding:.2f}% is accepted)."
        )


@dataclass
class CaseInputs:
    """The checked inputs: the MR ``(X, Y, Z)`` and the TRUS ``(X', Y', Z')`` (``float32``) with
    their 4x4 affines, and the optional landmark volumes on their image's grid."""

    mr: NDArray[np.generic]
    a_mr: NDArray[np.float64]
    us: Float32
    a_us: NDArray[np.float64]
    mr_landmarks: NDArray[np.generic] | None
    us_landmarks: NDArray[np.generic] | None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.us.shape)


def inputs_check(
    *,
    mr: NDArray[np.generic],
    mr_affine: NDArray[np.floating],
    us: NDArray[np.generic],
    us_affine: NDArray[np.floating],
    labels: dict[str, NDArray[np.generic] | None],
    landmarks: dict[str, NDArray[np.generic] | None],
) -> CaseInputs:
    """``ValueError`` naming the bad input (shape, affine, NaN) before anything is computed."""
    mr_arr = volume_check("mr", mr, mr_affine)
    us_arr = volume_check("us", us, us_affine)
    given = {**labels, **landmarks}
    for name in ("mr_label", "mr_landmarks", "us_label", "us_landmarks"):
        grid_check(name, given[name], mr_arr.shape if name.startswith("mr") else us_arr.shape)
    mr_lm, us_lm = landmarks["mr_landmarks"], landmarks["us_landmarks"]
    return CaseInputs(
        mr=mr_arr,
        a_mr=np.asarray(mr_affine, dtype=np.float64),
        us=np.asarray(us_arr, dtype=np.float32),
        a_us=np.asarray(us_affine, dtype=np.float64),
        mr_landmarks=None if mr_lm is None else np.asarray(mr_lm),
        us_landmarks=None if us_lm is None else np.asarray(us_lm),
    )
