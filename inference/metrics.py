"""Registration and segmentation metrics as plain numpy functions (no torch, no Django).

Conventions: binary masks are arrays of any numeric/bool dtype where non-zero means foreground;
``spacing`` is the physical voxel size in mm along each index axis; displacement fields are
``(3, X, Y, Z)`` in voxels of the grid they live on, channel ``c`` displacing index axis ``c``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "accuracy",
    "dice",
    "folding_fraction",
    "hd95",
    "jacobian_determinant",
    "landmark_centroids",
    "precision",
    "recall",
    "spacing_from_affine",
    "tre",
    "tre_points",
]

ArrayLike = NDArray[np.generic]


def _pair(pred: ArrayLike, target: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} does not match target shape {t.shape}")
    return p != 0, t != 0


def _confusion(pred: ArrayLike, target: ArrayLike) -> tuple[int, int, int, int]:
    p, t = _pair(pred, target)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(p.size - tp - fp - fn)
    return tp, fp, fn, tn


def dice(pred: ArrayLike, target: ArrayLike) -> float:
    """Dice similarity coefficient ``DSC = 2|P ∩ T| / (|P| + |T|)``.

    Two empty masks give 1.0 (perfect agreement on "nothing there").
    """
    tp, fp, fn, _ = _confusion(pred, target)
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2.0 * tp / denom


def accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Voxel accuracy ``(TP + TN) / N``."""
    tp, fp, fn, tn = _confusion(pred, target)
    n = tp + fp + fn + tn
    return 1.0 if n == 0 else (tp + tn) / n


def precision(pred: ArrayLike, target: ArrayLike) -> float:
    """Precision ``TP / (TP + FP)``; 1.0 when nothing is predicted and nothing is there, else 0.0."""
    tp, fp, fn, _ = _confusion(pred, target)
    if tp + fp == 0:
        return 1.0 if fn == 0 else 0.0
    return tp / (tp + fp)


def recall(pred: ArrayLike, target: ArrayLike) -> float:
    """Recall (sensitivity) ``TP / (TP + FN)``; 1.0 when the target is empty."""
    tp, _, fn, _ = _confusion(pred, target)
    return 1.0 if tp + fn == 0 else tp / (tp + fn)


def _check_spacing(spacing: Sequence[float] | None, ndim: int) -> NDArray[np.float64]:
    if spacing is None:
        return np.ones(ndim)
    s = np.asarray(spacing, dtype=np.float64).ravel()
    if s.shape != (ndim,) or np.any(s <= 0):
        raise ValueError(f"spacing must be {ndim} positive numbers, got {tuple(s)}")
    return s


def _surface(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1))
    return mask & ~eroded


def hd95(
    pred: ArrayLike,
    target: ArrayLike,
    spacing: Sequence[float] | None = None,
) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in mm.

    ``HD95 = max(P95_{a ∈ ∂P} d(a, ∂T), P95_{b ∈ ∂T} d(b, ∂P))`` where ``∂`` is the set of foreground
    voxels with a 6-connected background neighbour and ``d`` the Euclidean distance in physical units
    (``spacing`` mm per voxel along each axis). Matches MONAI's ``HausdorffDistanceMetric(percentile=95)``.

    Returns ``nan`` when either mask is empty (the distance is undefined).
    """
    p, t = _pair(pred, target)
    s = _check_spacing(spacing, p.ndim)
    if not p.any() or not t.any():
        return float("nan")
    # Distances only matter near the two surfaces: crop to their joint bounding box (plus a margin
    # that keeps the background border) so the distance transforms stay cheap on big grids.
    idx = np.argwhere(p | t)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = idx.max(axis=0) + 3
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    p, t = np.pad(p[box], 1), np.pad(t[box], 1)
    sp, st = _surface(p), _surface(t)
    dist_to_t = ndimage.distance_transform_edt(~st, sampling=s)
    dist_to_p = ndimage.distance_transform_edt(~sp, sampling=s)
    d_pt = np.asarray(dist_to_t)[sp]
    d_tp = np.asarray(dist_to_p)[st]
    return float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))


def landmark_centroids(landmarks: ArrayLike) -> dict[int, NDArray[np.float64]]:
    """Centroid (in voxel coordinates) of each landmark value ``k > 0`` in a landmark label volume."""
    lab = np.asarray(landmarks)
    if lab.ndim != 3:
        raise ValueError(f"landmark volume must be 3-D (X, Y, Z), got shape {lab.shape}")
    ids = [int(v) for v in np.unique(lab) if v > 0]
    if not ids:
        return {}
    cents = ndimage.center_of_mass(np.ones(lab.shape), labels=lab, index=ids)
    return {k: np.asarray(c, dtype=np.float64) for k, c in zip(ids, cents)}


def _sample_field(
    displacement: NDArray[np.floating], point: NDArray[np.float64]
) -> NDArray[np.float64]:
    coords = point.reshape(3, 1)
    return np.array(
        [
            ndimage.map_coordinates(displacement[c], coords, order=1, mode="nearest")[0]
            for c in range(3)
        ],
        dtype=np.float64,
    )


def tre_points(
    fixed_points: dict[int, NDArray[np.float64]],
    moving_points: dict[int, NDArray[np.float64]],
    displacement: NDArray[np.floating] | None = None,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """Target registration error between corresponding points, in mm.

    Points are in (continuous) voxel coordinates of the fixed grid, keyed by landmark id. Each fixed
    point is carried into the moving image by the transform ``x -> x + u(x)``:

    ``TRE_k = || S · (f_k + u(f_k) − m_k) ||₂``, ``S = diag(spacing)``,

    with ``u`` sampled trilinearly (``u = 0`` when ``displacement`` is None, i.e. "before").

    Returns:
        ``{"tre_<k>": mm, ..., "tre_mean": mm}``; ``tre_mean`` is ``nan`` when no id is shared.
    """
    s = _check_spacing(spacing, 3)
    disp = None if displacement is None else np.asarray(displacement)
    if disp is not None and (disp.ndim != 4 or disp.shape[0] != 3):
        raise ValueError(f"displacement must have shape (3, X, Y, Z), got {disp.shape}")
    out: dict[str, float] = {}
    errors = []
    for k in sorted(set(fixed_points) & set(moving_points)):
        f = np.asarray(fixed_points[k], dtype=np.float64)
        if f.shape != (3,):
            raise ValueError(f"landmark {k}: point must have 3 coordinates, got shape {f.shape}")
        mapped = f + (_sample_field(disp, f) if disp is not None else 0.0)
        err = float(np.linalg.norm((mapped - np.asarray(moving_points[k])) * s))
        out[f"tre_{k}"] = err
        errors.append(err)
    out["tre_mean"] = float(np.mean(errors)) if errors else float("nan")
    return out


def tre(
    fixed_landmarks: ArrayLike,
    moving_landmarks: ArrayLike,
    displacement: NDArray[np.floating] | None = None,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """Target registration error between landmark label centroids, in mm.

    Both landmark volumes live on the fixed grid (the moving one after affine resampling). With
    fixed centroid ``f_k`` and moving centroid ``m_k`` (voxels) of each landmark ``k`` present in both:

    ``TRE_k = || S · (f_k + u(f_k) − m_k) ||₂``, ``S = diag(spacing)`` (see :func:`tre_points`).

    Returns:
        ``{"tre_<k>": mm, ..., "tre_mean": mm}``; ``tre_mean`` is ``nan`` when no landmark is shared.
    """
    fixed_shape = np.asarray(fixed_landmarks).shape
    if fixed_shape != np.asarray(moving_landmarks).shape:
        raise ValueError(
            f"fixed landmarks {fixed_shape} and moving landmarks "
            f"{np.asarray(moving_landmarks).shape} must be on the same grid"
        )
    if displacement is not None and np.asarray(displacement).shape != (3, *fixed_shape):
        raise ValueError(
            f"displacement must have shape (3, {', '.join(map(str, fixed_shape))}), "
            f"got {np.asarray(displacement).shape}"
        )
    return tre_points(
        landmark_centroids(fixed_landmarks),
        landmark_centroids(moving_landmarks),
        displacement,
        spacing,
    )


def jacobian_determinant(displacement: NDArray[np.floating]) -> NDArray[np.float64]:
    """Determinant of the Jacobian of ``φ(x) = x + u(x)`` at every voxel.

    ``det J = det(I + ∇u)`` with ``∇u`` by central differences (one-sided at the borders) in voxel
    units. Spacing does not change the sign, so folding needs no spacing.

    Args:
        displacement: ``(3, X, Y, Z)``.

    Returns:
        ``(X, Y, Z)`` float64.
    """
    u = np.asarray(displacement, dtype=np.float64)
    if u.ndim != 4 or u.shape[0] != 3:
        raise ValueError(f"displacement must have shape (3, X, Y, Z), got {u.shape}")
    if min(u.shape[1:]) < 2:
        raise ValueError(f"displacement needs at least 2 voxels per axis, got {u.shape}")
    jac = np.empty((3, 3, *u.shape[1:]))
    for c in range(3):
        grads = np.gradient(u[c], axis=(0, 1, 2))
        for a in range(3):
            jac[c, a] = grads[a] + (1.0 if a == c else 0.0)
    jac_last = np.moveaxis(jac, (0, 1), (-2, -1))
    return np.asarray(np.linalg.det(jac_last))


def folding_fraction(displacement: NDArray[np.floating]) -> float:
    """Fraction of voxels where the transform folds: ``mean(det J(x + u(x)) ≤ 0)``."""
    det = jacobian_determinant(displacement)
    return float(np.mean(det <= 0))


def spacing_from_affine(affine: NDArray[np.floating]) -> tuple[float, float, float]:
    """Voxel size in mm along each index axis: the norms of the affine's first three columns."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {a.shape}")
    n = np.linalg.norm(a[:3, :3], axis=0)
    return float(n[0]), float(n[1]), float(n[2])
