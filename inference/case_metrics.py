"""Metrics of one registration, and what they are measured against (numpy only).

Keys (``case_metrics``): ``dsc``, ``hd95`` (mm), ``accuracy``, ``precision``, ``recall``, each as
``*_initial`` (the frame alignment ``W`` alone: the start of deformable registration) and ``*_after``
(the whole transform); ``tre_initial_<k>`` / ``tre_after_<k>`` and their ``*_mean`` (mm, on the TRUS
grid) when both landmark volumes are given; ``folding_fraction`` of the deformable part.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from inference import metrics as M
from inference.geometry import points_mr_to_us

__all__ = ["LABELS_GIVEN", "LABELS_SEGMENTED", "basis_describe", "case_metrics"]

LABELS_GIVEN = "against the gland labels given with the images (reference labels)"
LABELS_SEGMENTED = "against segmented labels (no ground truth)"


def basis_describe(source: dict[str, str], *, landmarks: bool = False) -> str:
    """What gland metrics were measured against, in words; ``source`` maps ``mr``/``us`` to
    ``given`` or ``segmented``. Any segmented side makes the figures "against segmented labels"."""
    if any(v == "segmented" for v in source.values()):
        sides = [s for s in ("mr", "us") if source.get(s) == "segmented"]
        which = " and ".join({"mr": "MRI", "us": "TRUS"}[s] for s in sides)
        text = f"{LABELS_SEGMENTED}: {which} gland segmented by the model"
    else:
        text = LABELS_GIVEN
    if landmarks:
        text += "; TRE from the given landmarks"
    return text


def _label_metrics(
    prefix: str, pred: NDArray[np.generic], target: NDArray[np.generic], spacing: tuple[float, ...]
) -> dict[str, float]:
    empty = not np.any(pred) or not np.any(target)
    return {
        f"dsc_{prefix}": M.dice(pred, target),
        # HD95 is undefined for an empty mask: NaN, never a number that looks like a distance.
        f"hd95_{prefix}": float("nan") if empty else M.hd95(pred, target, spacing),
        f"accuracy_{prefix}": M.accuracy(pred, target),
        f"precision_{prefix}": M.precision(pred, target),
        f"recall_{prefix}": M.recall(pred, target),
    }


def _tre(
    *,
    mr_landmarks: NDArray[np.generic],
    us_landmarks: NDArray[np.generic],
    mr_affine: NDArray[np.float64],
    us_affine: NDArray[np.float64],
    world: NDArray[np.float64],
    displacement: NDArray[np.floating] | None,
) -> dict[str, float]:
    fixed = M.landmark_centroids(us_landmarks)
    moving = M.landmark_centroids(mr_landmarks)
    ids = sorted(set(fixed) & set(moving))
    out: dict[str, float] = {}
    if not ids:
        return {"tre_mean": float("nan")}
    pts_mr = np.array([mr_affine[:3, :3] @ moving[k] + mr_affine[:3, 3] for k in ids])
    mapped = points_mr_to_us(pts_mr, world=world, us_affine=us_affine, displacement=displacement)
    lin = us_affine[:3, :3]
    errs = [float(np.linalg.norm(lin @ (mapped[i] - fixed[k]))) for i, k in enumerate(ids)]
    out.update({f"tre_{k}": e for k, e in zip(ids, errs)})
    out["tre_mean"] = float(np.mean(errs))
    return out


def case_metrics(
    *,
    world: NDArray[np.floating],
    displacement: NDArray[np.floating],
    mr_label_initial: NDArray[np.generic] | None,
    warped_mr_label: NDArray[np.generic] | None,
    us_label: NDArray[np.generic] | None,
    mr_landmarks: NDArray[np.generic] | None,
    us_landmarks: NDArray[np.generic] | None,
    mr_affine: NDArray[np.floating],
    us_affine: NDArray[np.floating],
) -> dict[str, float]:
    """Metrics of one registration on the TRUS grid (keys in the module docstring).

    Args:
        world: 4×4 frame alignment (TRUS world → MR world).
        displacement: ``(3, X, Y, Z)`` deformable part in TRUS voxels.
        mr_label_initial, warped_mr_label: the MR gland through ``world`` alone and through the
            whole transform, on the TRUS grid; ``us_label`` the TRUS gland.
        mr_landmarks, us_landmarks: landmark volumes on their own grids (value k = landmark k);
            MR centroids are mapped as points, never resampled.
    """
    a_mr = np.asarray(mr_affine, dtype=np.float64)
    a_us = np.asarray(us_affine, dtype=np.float64)
    w = np.asarray(world, dtype=np.float64)
    spacing = M.spacing_from_affine(a_us)
    met: dict[str, float] = {}
    if us_label is not None and mr_label_initial is not None:
        met.update(_label_metrics("initial", mr_label_initial, us_label, spacing))
    if us_label is not None and warped_mr_label is not None:
        met.update(_label_metrics("after", warped_mr_label, us_label, spacing))
    if mr_landmarks is not None and us_landmarks is not None:
        for stage, disp in (("initial", None), ("after", displacement)):
            tre = _tre(
                mr_landmarks=mr_landmarks,
                us_landmarks=us_landmarks,
                mr_affine=a_mr,
                us_affine=a_us,
                world=w,
                displacement=disp,
            )
            met.update({k.replace("tre_", f"tre_{stage}_"): v for k, v in tre.items()})
    met["folding_fraction"] = M.folding_fraction(np.asarray(displacement))
    return met
