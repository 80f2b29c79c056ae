"""Preprocessing as in the paper, plus resampling and augmentation (numpy/scipy/scikit-image only).

Paper steps: drop the top and bottom 10% of MRI slices and the first 25% / last 12.5% of TRUS frames
(along the slice or frame axis, where the gland is absent or the probe image is poor), normalise
intensities, resize MRI slices to 160x160 and TRUS frames to 118x88. For external cohorts the paper adds
histogram equalisation, gamma correction and Laplacian filtering; these are named options of
:func:`intensity_enhance`. Augmentation is a random rotation/translation/scaling (:func:`random_affine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import exposure

__all__ = [
    "ENHANCEMENTS",
    "MRI_SLICE_SIZE",
    "TRUS_FRAME_SIZE",
    "AugmentConfig",
    "affine_apply",
    "frames_crop",
    "intensity_enhance",
    "intensity_normalise",
    "random_affine",
    "slices_resize",
    "volume_resample",
    "volume_warp",
]

MRI_SLICE_SIZE = (160, 160)
TRUS_FRAME_SIZE = (118, 88)
ENHANCEMENTS = ("histeq", "gamma", "laplacian")

Float = NDArray[np.floating]


def _check3d(volume: NDArray[np.generic], name: str = "volume") -> NDArray[np.generic]:
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be 3-D (X, Y, Z), got shape {arr.shape}")
    return arr


def frames_crop(
    volume: NDArray[np.generic], *, first: float, last: float, axis: int = 2
) -> tuple[NDArray[np.generic], slice]:
    """Drop a fraction of slices/frames at the start and end of ``axis``.

    MRI: ``first=0.1, last=0.1`` along the slice axis (2); TRUS: ``first=0.25, last=0.125`` along the
    frame axis (0 on the µ-RegPro 81x118x88 grid, whose frames are 118x88) — the paper's fractions.

    Returns:
        ``(cropped volume, slice of kept indices along axis)``.
    """
    arr = _check3d(volume)
    if not (0 <= first < 1 and 0 <= last < 1 and first + last < 1):
        raise ValueError(f"crop fractions must be in [0, 1) and sum below 1, got {first}, {last}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    n = arr.shape[axis]
    start = int(np.floor(n * first))
    stop = n - int(np.floor(n * last))
    if stop - start < 1:
        raise ValueError(f"cropping {first}/{last} of {n} slices leaves nothing")
    keep = slice(start, stop)
    index: list[slice] = [slice(None)] * 3
    index[axis] = keep
    return arr[tuple(index)], keep


def intensity_normalise(
    volume: Float, *, mode: str = "minmax", percentiles: tuple[float, float] = (1.0, 99.0)
) -> NDArray[np.float32]:
    """Normalise intensities robustly.

    ``minmax``: clip to the given percentiles, then ``(x − lo) / (hi − lo)`` into [0, 1].
    ``zscore``: ``(x − mean) / std`` after the same clipping.
    A constant volume maps to zeros.
    """
    arr = np.asarray(volume, dtype=np.float32)
    if arr.size == 0:
        raise ValueError("cannot normalise an empty volume")
    lo, hi = np.percentile(arr, percentiles)
    clipped = np.clip(arr, lo, hi)
    if mode == "minmax":
        return ((clipped - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros_like(arr)
    if mode == "zscore":
        sd = float(clipped.std())
        return (
            ((clipped - clipped.mean()) / sd).astype(np.float32) if sd > 0 else np.zeros_like(arr)
        )
    raise ValueError(f"unknown normalisation mode {mode!r}; use 'minmax' or 'zscore'")


def intensity_enhance(
    volume: Float,
    options: Sequence[str],
    *,
    gamma: float = 0.8,
    laplacian_weight: float = 0.5,
) -> NDArray[np.float32]:
    """Apply the paper's contrast options, in the order given, to a [0, 1]-normalised volume.

    * ``histeq``: histogram equalisation over the volume (``skimage.exposure.equalize_hist``).
    * ``gamma``: ``x ** gamma``.
    * ``laplacian``: sharpening ``x − w · ∇²x`` with a per-slice 2-D Laplacian, clipped to [0, 1].
    """
    unknown = [o for o in options if o not in ENHANCEMENTS]
    if unknown:
        raise ValueError(f"unknown enhancement(s) {unknown}; choose from {ENHANCEMENTS}")
    arr = np.clip(np.asarray(_check3d(volume), dtype=np.float32), 0.0, 1.0)
    for opt in options:
        if opt == "histeq":
            arr = exposure.equalize_hist(arr).astype(np.float32)
        elif opt == "gamma":
            if gamma <= 0:
                raise ValueError(f"gamma must be positive, got {gamma}")
            arr = np.power(arr, gamma).astype(np.float32)
        else:
            lap = np.stack([ndimage.laplace(arr[:, :, k]) for k in range(arr.shape[2])], axis=2)
            arr = np.clip(arr - laplacian_weight * lap, 0.0, 1.0).astype(np.float32)
    return arr


def slices_resize(
    volume: NDArray[np.generic], size: tuple[int, int], *, axis: int = 2, order: int = 1
) -> NDArray[np.generic]:
    """Resize every slice across ``axis`` to ``size`` (the two other axes, in order).

    The slice count is unchanged. Use ``order=0`` for labels.
    """
    arr = _check3d(volume)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be two positive ints, got {size}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    moved = np.moveaxis(arr, axis, 2)
    zoom = (size[0] / moved.shape[0], size[1] / moved.shape[1], 1.0)
    out = ndimage.zoom(moved, zoom, order=order, grid_mode=True, mode="nearest")
    return np.moveaxis(out[: size[0], : size[1]], 2, axis)


def volume_resample(
    moving: NDArray[np.generic],
    moving_affine: Float,
    fixed_shape: Sequence[int],
    fixed_affine: Float,
    *,
    order: int = 1,
) -> NDArray[np.float32]:
    """Resample ``moving`` onto the fixed grid through world (scanner) coordinates.

    For each fixed voxel ``p`` the moving voxel is ``A_m⁻¹ · A_f · p``; outside the moving volume is 0.
    ``order=0`` (nearest) for label volumes.
    """
    mov = _check3d(moving, "moving")
    a_m = np.asarray(moving_affine, dtype=np.float64)
    a_f = np.asarray(fixed_affine, dtype=np.float64)
    if a_m.shape != (4, 4) or a_f.shape != (4, 4):
        raise ValueError(f"affines must be 4x4, got {a_m.shape} and {a_f.shape}")
    if len(fixed_shape) != 3:
        raise ValueError(f"fixed_shape must have 3 entries, got {tuple(fixed_shape)}")
    m = np.linalg.solve(a_m, a_f)
    out = ndimage.affine_transform(
        mov.astype(np.float32),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(int(s) for s in fixed_shape),
        order=order,
        mode="constant",
        cval=0.0,
    )
    return np.asarray(out, dtype=np.float32)


def volume_warp(
    volume: NDArray[np.generic], displacement: Float, *, order: int = 1
) -> NDArray[np.float32]:
    """Warp a volume on the fixed grid: ``out(p) = volume(p + u(p))``, ``u`` of shape ``(3, X, Y, Z)``.

    Outside samples repeat the border (matches MONAI ``Warp(padding_mode="border")``).
    """
    vol = _check3d(volume)
    u = np.asarray(displacement, dtype=np.float32)
    if u.shape != (3, *vol.shape):
        raise ValueError(f"displacement must have shape (3, {vol.shape}), got {u.shape}")
    grid = np.indices(vol.shape, dtype=np.float32) + u
    return np.asarray(
        ndimage.map_coordinates(vol.astype(np.float32), grid, order=order, mode="nearest"),
        dtype=np.float32,
    )


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the paper's augmentation (uniform in ± range)."""

    rotation_deg: float = 10.0
    translation_vox: float = 5.0
    scaling: float = 0.1


def random_affine(
    rng: np.random.Generator, shape: Sequence[int], config: AugmentConfig = AugmentConfig()
) -> NDArray[np.float64]:
    """Random voxel-space affine (4x4) about the volume centre: rotation, scaling, translation.

    The matrix maps output voxels to input voxels (the pull-back convention of ``affine_apply``).
    """
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 entries, got {tuple(shape)}")
    angles = np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg, size=3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    scale = np.diag(1.0 + rng.uniform(-config.scaling, config.scaling, size=3))
    lin = rz @ ry @ rx @ scale
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    shift = rng.uniform(-config.translation_vox, config.translation_vox, size=3)
    mat = np.eye(4)
    mat[:3, :3] = lin
    mat[:3, 3] = centre - lin @ centre + shift
    return mat


def affine_apply(
    volume: NDArray[np.generic], matrix: Float, *, order: int = 1
) -> NDArray[np.float32]:
    """Apply a 4x4 voxel affine (output voxel -> input voxel) with the same output shape."""
    vol = _check3d(volume)
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.shape != (4, 4):
        raise ValueError(f"matrix must be 4x4, got shape {mat.shape}")
    out = ndimage.affine_transform(
        vol.astype(np.float32), mat[:3, :3], offset=mat[:3, 3], order=order, mode="nearest"
    )
    return np.asarray(out, dtype=np.float32)
