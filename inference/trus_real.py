"""A real transverse-stepper TRUS volume on the simulator's grid (numpy + scipy + nibabel; no torch).

The simulator (:mod:`inference.simulate`) and the TRUS networks use a grid of 81x118x88 voxels of
0.8 mm with the probe surface at j = 3 and depth along +j. A stepper volume such as
``../shared/data/trus-real-case001`` (479x394x29 at 0.199x0.199x2 mm, probe at high j) is put onto
that grid by :func:`trus_to_sim_grid` — to measure it like a simulation
(:mod:`inference.us_appearance`) and to run the TRUS segmenter on it. That volume is teaching data
without a licence: look at it and tune appearance with it; never ship it or anything derived.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.us_appearance import SIM_PROBE_J

__all__ = [
    "CASE001_GLAND_ELLIPSOID",
    "CASE001_SPACING",
    "RealTrus",
    "fan_region",
    "probe_locate",
    "real_trus_case001",
    "trus_to_sim_grid",
]

F32 = NDArray[np.float32]
Bool = NDArray[np.bool_]
Spacing = Sequence[float]


def _vox(mm: float, spacing: Spacing) -> NDArray[np.float64]:
    return np.asarray([mm / s for s in spacing], dtype=np.float64)


def fan_region(volume: NDArray[np.generic], *, spacing: Spacing, erode_mm: float = 1.0) -> Bool:
    """The imaged fan of a stepper display volume (the same transverse sector in every frame).

    Dark tissue is displayed as 0 inside the fan, so the raw non-zero mask is full of holes: the
    union over frames, closed by 2 mm and hole-filled, recovers the sector; ``erode_mm`` trims it.
    """
    nz = (np.asarray(volume) > 0).any(axis=2)
    rad = np.maximum(np.rint(_vox(2.0, spacing[:2])), 1).astype(int)
    st = np.ones((2 * rad[0] + 1, 2 * rad[1] + 1), dtype=bool)
    f = ndimage.binary_closing(np.pad(nz, [(r, r) for r in rad]), st)
    f = ndimage.binary_fill_holes(f)[rad[0] : -rad[0], rad[1] : -rad[1]]
    ero = np.maximum(np.rint(_vox(erode_mm, spacing[:2])), 0).astype(int)
    if ero.any():
        f = ndimage.binary_erosion(f, np.ones((2 * ero[0] + 1, 2 * ero[1] + 1), dtype=bool))
    return np.repeat(f[:, :, None], np.asarray(volume).shape[2], axis=2)


def probe_locate(volume: NDArray[np.generic], *, spacing: Spacing) -> tuple[float, float]:
    """``(i, j)`` of the probe surface's top in a stepper volume with the probe at high j.

    The probe shows as a dark disc open to the bottom edge: in the mean frame, each central column's
    first run of ≥ 3 mm of zeros below mid-depth starts at the probe surface. The highest start is
    the top; the centre is the middle of the disc's zero run 3 mm lower (a speck on the surface can
    shift the top sideways, the chord below it is symmetric).
    """
    mean = np.asarray(volume, dtype=np.float32).mean(axis=2)
    nx, ny = mean.shape
    run = max(int(round(3.0 / spacing[1])), 2)
    tops = np.full(nx, np.inf)
    for i in range(nx // 4, 3 * nx // 4):
        dark = mean[i, ny // 2 :] < 1.0
        runs = np.convolve(dark.astype(int), np.ones(run, dtype=int), "valid") == run
        if runs.any():
            tops[i] = ny // 2 + int(np.argmax(runs))
    if not np.isfinite(tops).any():
        raise ValueError("no probe (dark disc at high j) found in the volume")
    top = float(tops.min())
    i0 = int(np.argmin(tops))
    row = mean[:, min(int(top + 3.0 / spacing[1]), ny - 1)] < 1.0
    lo, hi = i0, i0
    while lo > 0 and row[lo - 1]:
        lo -= 1
    while hi < nx - 1 and row[hi + 1]:
        hi += 1
    return (lo + hi) / 2.0, top


def _grid_coords(
    native_shape: Sequence[int],
    spacing: Spacing,
    shape: Sequence[int],
    out_spacing: float,
    probe: tuple[float, float],
    flip_elevation: bool,
) -> F32:
    """Native voxel coordinates ``(3, X, Y, Z)`` of every voxel of the simulator's grid."""
    n = [int(s) for s in shape]
    x = (np.arange(n[0]) - (n[0] - 1) / 2) * out_spacing
    d = (np.arange(n[1]) - SIM_PROBE_J) * out_spacing
    z = (np.arange(n[2]) - (n[2] - 1) / 2) * out_spacing
    axes = (
        probe[0] + x / spacing[0],
        probe[1] - d / spacing[1],
        (native_shape[2] - 1) / 2 + (-z if flip_elevation else z) / spacing[2],
    )
    return np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32)


def trus_to_sim_grid(
    volume: NDArray[np.generic],
    *,
    spacing: Spacing,
    shape: Sequence[int] = (81, 118, 88),
    out_spacing: float = 0.8,
    probe: tuple[float, float] | None = None,
    flip_elevation: bool = False,
) -> tuple[F32, Bool]:
    """A stepper volume (probe at high j) on the simulator's grid: probe surface at j = 3, depth
    along +j, centred laterally on the probe and in elevation; returns ``(volume, fan mask)``.

    ``flip_elevation``: the first frame is the base (superior); the simulator's k runs inferior →
    superior. In-plane downsampling is anti-aliased (Gaussian, σ = (factor − 1)/2 voxels) so speckle is
    averaged as a coarser scanner grid would; elevation is linearly interpolated between frames.
    """
    vol = np.asarray(volume, dtype=np.float32)
    pi, pj = probe if probe is not None else probe_locate(vol, spacing=spacing)
    fan = fan_region(vol, spacing=spacing, erode_mm=0.0).astype(np.float32)
    sig = [max((out_spacing / s - 1.0) / 2.0, 0.0) for s in spacing]
    smooth = ndimage.gaussian_filter(vol, sig) if any(sig) else vol
    coords = _grid_coords(vol.shape, spacing, shape, out_spacing, (pi, pj), flip_elevation)
    out = ndimage.map_coordinates(smooth, coords, order=1, mode="constant", cval=0.0)
    inside = ndimage.map_coordinates(fan, coords, order=1, mode="constant", cval=0.0) > 0.5
    return np.asarray(out * inside, dtype=np.float32), inside


# A rough gland ROI for trus-real-case001, which ships without a mask: an ellipsoid placed by eye
# on its frames (native voxels i, j, k: centre, semi-axes). For contrast figures only (~3 mm off).
CASE001_GLAND_ELLIPSOID = ((245.0, 203.0, 14.0), (142.0, 95.0, 11.5))
CASE001_SPACING = (0.199, 0.199, 2.0)


@dataclass(frozen=True)
class RealTrus:
    """A real stepper volume on the simulator's grid (``volume``, ``fov``, rough ``gland`` ROI)."""

    volume: F32
    fov: Bool
    gland: Bool
    native: NDArray[np.uint8]
    spacing: tuple[float, float, float]


def real_trus_case001(directory: str | os.PathLike[str] | None = None) -> RealTrus:
    """``trus-real-case001`` from ``../shared/data`` on the simulator's grid, with its rough gland
    ROI (:data:`CASE001_GLAND_ELLIPSOID`). Teaching data without a licence: look, never ship."""
    import nibabel as nib

    from inference.datasets import shared_data_dir

    root = Path(directory) if directory else shared_data_dir()
    path = root / "trus-real-case001" / "case001_trus.nii.gz"
    if not path.is_file():
        raise FileNotFoundError(f"real TRUS volume not found at {path}")
    native = np.asarray(nib.load(str(path)).dataobj, dtype=np.uint8)  # type: ignore[attr-defined]
    probe = probe_locate(native, spacing=CASE001_SPACING)
    # Its first frames show the bladder (with a catheter balloon): they are the superior end.
    vol, fov = trus_to_sim_grid(native, spacing=CASE001_SPACING, probe=probe, flip_elevation=True)
    coords = _grid_coords(native.shape, CASE001_SPACING, vol.shape, 0.8, probe, True)
    c, r = CASE001_GLAND_ELLIPSOID
    roi = sum(((coords[a] - c[a]) / r[a]) ** 2 for a in range(3)) <= 1.0
    return RealTrus(vol, fov, np.asarray(roi & fov), native, CASE001_SPACING)
