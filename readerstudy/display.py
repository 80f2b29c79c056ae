"""The common display geometry every reader-study series is served on.

Blinding: the original T2 lives on the MR grid (e.g. 0.6 mm × 3 mm, 20–40 slices, oblique), the
registered T2 on the TRUS grid (e.g. 0.8 mm isotropic, 80+ slices, axial in the probe's frame).
Served as stored, the slice counter, pixel spacing, matrix, field of view, orientation, slice
positions and even the load time would tell a careful reader the arm. So every series a reader
sees is resampled, once, onto the SAME grid:

* true axial in the series' own patient frame (rows run towards the patient's left, columns
  towards posterior: radiological display), which also makes the R/L/A/P markers trivially
  right whatever the acquisition plane;
* ``MATRIX`` × ``MATRIX`` pixels of ``PIXEL_MM``, ``SLICES`` slices ``SLICE_MM`` apart;
* centred on the gland (the centroid of the series' gland label, or the grid centre without one),
  and served in coordinates RELATIVE to that centre, so slice positions carry no scanner or probe
  frame;
* intensities scaled by one rule (the foreground's 99.5th percentile to ``INTENSITY_TOP``) into
  unsigned 16 bits with slope 1, so no rescale value differs between arms.

The fused arm's TRUS is resampled on the grid of its registered T2 (same centre), so the two stay
aligned. The grids are cached on disk under ``MEDIA_ROOT/display/`` keyed by content.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from numpy.typing import NDArray

from inference.imaging import percentile_window
from registration.models import ImageSeries

# Bump when the grid or the intensity rule changes: cached grids are keyed by it.
DISPLAY_VERSION = 1
PIXEL_MM = 0.5
MATRIX = 256  # 128 mm field of view: the gland and its surroundings
SLICE_MM = 2.0
SLICES = 40  # 80 mm cranio-caudal
INTENSITY_TOP = 3000.0
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class DisplayGrid:
    """A series resampled on the display grid: ``pixels`` is (slice, row, column) uint16."""

    pixels: NDArray[np.uint16]
    centre_lps: tuple[float, float, float]
    presets: list[dict[str, Any]]


def display_offset(
    *, slice_index: int, row: float = 0.0, column: float = 0.0
) -> NDArray[np.float64]:
    """Served patient position (LPS mm, relative to the gland centre) of a display pixel."""
    half = (MATRIX - 1) / 2.0
    return np.array(
        [
            (column - half) * PIXEL_MM,
            (row - half) * PIXEL_MM,
            (slice_index - (SLICES - 1) / 2.0) * SLICE_MM,
        ]
    )


def _load(series: ImageSeries) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    import nibabel as nib

    img = nib.load(str(Path(settings.MEDIA_ROOT) / series.nifti_path))
    data = np.asarray(img.dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    return data, np.asarray(series.affine, dtype=np.float64)


def series_centre_lps(*, series: ImageSeries) -> tuple[float, float, float]:
    """The gland centroid (LPS mm in the series' frame), or the grid centre without a label."""
    label = (
        ImageSeries.objects.filter(label_of=series, kind=ImageSeries.Kind.LABEL)
        .order_by("-pk")
        .first()
    )
    key = f"readerstudy:display-centre:{series.pk}:{series.nifti_sha256}:{label.pk if label else 0}"
    cached = cache.get(key)
    if cached is not None:
        return tuple(cached)  # type: ignore[return-value]
    affine = np.asarray(series.affine, dtype=np.float64)
    centre_index = (np.asarray(series.shape, dtype=np.float64) - 1) / 2.0
    if label is not None:
        mask, label_affine = _load(label)
        found = np.argwhere(mask > 0)
        if found.size:
            centre_index = found.mean(axis=0)
            affine = label_affine
    ras = affine[:3, :3] @ centre_index + affine[:3, 3]
    centre = tuple(float(v) for v in _RAS_TO_LPS @ ras)
    cache.set(key, list(centre), timeout=24 * 3600)
    return centre  # type: ignore[return-value]


def resample_to_display(
    *, volume: NDArray[np.floating], affine: NDArray[np.floating], centre_lps: Any
) -> NDArray[np.float32]:
    """Linear resampling of a RAS-affine volume onto the display grid, zero outside it."""
    from scipy.ndimage import map_coordinates

    k, r, c = np.meshgrid(
        np.arange(SLICES, dtype=np.float64),
        np.arange(MATRIX, dtype=np.float64),
        np.arange(MATRIX, dtype=np.float64),
        indexing="ij",
    )
    half = (MATRIX - 1) / 2.0
    lps = np.stack(
        [
            (c - half) * PIXEL_MM + centre_lps[0],
            (r - half) * PIXEL_MM + centre_lps[1],
            (k - (SLICES - 1) / 2.0) * SLICE_MM + centre_lps[2],
        ]
    ).reshape(3, -1)
    ras = _RAS_TO_LPS @ lps
    inv = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    index = inv[:3, :3] @ ras + inv[:3, 3:4]
    out = map_coordinates(
        np.asarray(volume, dtype=np.float32), index, order=1, mode="constant", cval=0.0
    )
    return out.reshape(SLICES, MATRIX, MATRIX).astype(np.float32)


def _background(source: NDArray[np.float32]) -> tuple[float, float]:
    """(background, foreground 99.5th percentile) of a source volume: the intensity rule's ends."""
    finite = source[np.isfinite(source)]
    low = float(finite.min()) if finite.size else 0.0
    foreground = finite[finite > low]
    top = float(np.percentile(foreground, 99.5)) if foreground.size else low + 1.0
    return low, max(top, low + 1e-6)


def _presets(pixels: NDArray[np.uint16]) -> list[dict[str, Any]]:
    # Percentiles over the non-zero pixels: zero is air or outside the source's field of view.
    values = pixels[pixels > 0].astype(np.float64)
    if values.size == 0:
        values = np.array([0.0, 1.0])
    presets = []
    for name, low, high in (
        ("Auto (1–99 %)", 1.0, 99.0),
        ("Wide (0.1–99.9 %)", 0.1, 99.9),
        ("Contrast (10–95 %)", 10.0, 95.0),
    ):
        lo, hi = percentile_window(values, low=low, high=high)
        presets.append({"name": name, "lower": round(lo, 1), "upper": round(hi, 1)})
    return presets


def _cache_path(series: ImageSeries, centre: tuple[float, float, float]) -> Path:
    digest = hashlib.sha256(
        json.dumps([DISPLAY_VERSION, series.nifti_sha256, [round(v, 3) for v in centre]]).encode()
    ).hexdigest()[:24]
    return Path(settings.MEDIA_ROOT) / "display" / str(series.pk) / digest


def _replace(path: Path, write: Any) -> None:
    # Written beside and renamed in: a concurrent request sees the whole file or none.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    write(tmp)
    os.replace(tmp, path)


@functools.lru_cache(maxsize=128)
def _grid_open(npy: str, meta: str) -> tuple[NDArray[np.uint16], list[dict[str, Any]]]:
    # A grid file never changes once renamed in (its name hashes the series and the centre), so
    # each process maps it once instead of once per image request. Memory-mapped: pages are the
    # OS's page cache, not this process's heap.
    return np.load(npy, mmap_mode="r"), json.loads(Path(meta).read_text())


def display_grid_get(*, series: ImageSeries, centre_lps: tuple[float, float, float]) -> DisplayGrid:
    """``series`` on the display grid centred on ``centre_lps`` (built once, then read back).

    The pixels come back memory-mapped: serving one slice reads one slice from disk.
    """
    base = _cache_path(series, centre_lps)
    npy, meta = base.with_suffix(".npy"), base.with_suffix(".json")
    if meta.exists():
        pixels, presets = _grid_open(str(npy), str(meta))
        return DisplayGrid(pixels=pixels, centre_lps=centre_lps, presets=presets)
    volume, affine = _load(series)
    low, top = _background(volume)
    # Shifted so the background is 0, like everything outside the source's field of view.
    resampled = resample_to_display(volume=volume - low, affine=affine, centre_lps=centre_lps)
    scaled = np.clip(resampled * (INTENSITY_TOP / (top - low)), 0, 65535)
    pixels = np.rint(scaled).astype(np.uint16)
    presets = _presets(pixels)
    base.parent.mkdir(parents=True, exist_ok=True)
    _replace(npy, lambda tmp: np.save(tmp, pixels))
    _replace(meta, lambda tmp: Path(tmp).write_text(json.dumps(presets)))
    return DisplayGrid(pixels=pixels, centre_lps=centre_lps, presets=presets)


# --- reformats (MPR) -----------------------------------------------------------------------------
# Sagittal and coronal planes are cut from the same display grid, every MPR_STEP-th pixel (1 mm),
# so they too are identical in geometry in every arm. Displayed the radiological way: superior at
# the top; sagittal with anterior on the left, coronal with the patient's right on the left.
MPR_STEP = 2
PLANES: dict[str, int] = {
    "axial": SLICES,
    "sagittal": MATRIX // MPR_STEP,
    "coronal": MATRIX // MPR_STEP,
}


@dataclass(frozen=True)
class PlaneSlice:
    pixels: NDArray[np.uint16]  # (rows, columns)
    position: tuple[float, float, float]  # LPS of the first pixel, served (relative) mm
    orientation: tuple[float, ...]  # row direction, then column direction (DICOM IOP)
    spacing: tuple[float, float]  # between rows, between columns (DICOM PixelSpacing)
    thickness: float


def plane_slice(*, pixels: NDArray[np.uint16], plane: str, index: int) -> PlaneSlice:
    """Slice ``index`` of ``plane`` from a display grid (slice, row, column)."""
    if not 0 <= index < PLANES[plane]:
        raise IndexError(f"{plane} slice {index} is outside 0–{PLANES[plane] - 1}")
    top = SLICES - 1
    if plane == "axial":
        x, y, z = display_offset(slice_index=index)
        return PlaneSlice(
            np.ascontiguousarray(pixels[index]),
            (float(x), float(y), float(z)),
            (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
            (PIXEL_MM, PIXEL_MM),
            SLICE_MM,
        )
    cut = index * MPR_STEP + MPR_STEP // 2
    if plane == "sagittal":
        image = pixels[::-1, :, cut]  # rows: superior → inferior; columns: anterior → posterior
        x, y, z = display_offset(slice_index=top, row=0, column=cut)
        orientation = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    else:
        image = pixels[::-1, cut, :]  # rows: superior → inferior; columns: right → left
        x, y, z = display_offset(slice_index=top, row=cut, column=0)
        orientation = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    return PlaneSlice(
        np.ascontiguousarray(image),
        (float(x), float(y), float(z)),
        orientation,
        (SLICE_MM, PIXEL_MM),
        PIXEL_MM * MPR_STEP,
    )


def plane_positions() -> dict[str, list[float]]:
    """Where each slice of each plane sits along its normal (served mm): axial z, sagittal x,
    coronal y. The viewer uses them to move every plane through a clicked point."""
    cuts = [i * MPR_STEP + MPR_STEP // 2 for i in range(MATRIX // MPR_STEP)]
    return {
        "axial": [round(float(display_offset(slice_index=k)[2]), 3) for k in range(SLICES)],
        "sagittal": [round(float(display_offset(slice_index=0, column=c)[0]), 3) for c in cuts],
        "coronal": [round(float(display_offset(slice_index=0, row=r)[1]), 3) for r in cuts],
    }
