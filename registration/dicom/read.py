"""Reading DICOM: one image series into a volume with its RAS affine (pydicom + numpy; no Django,
no torch).

Volumes are in nibabel voxel order ``(i, j, k)`` with a RAS+ affine (docs/architecture.md). In a DICOM
slice, ``pixel_array[r, c]`` has ``c`` along the ImageOrientationPatient row direction and ``r`` along
its column direction, so voxel ``(i, j, k)`` is ``slice_k.pixel_array[j, i]``.

Every error raised here is a :class:`DicomInputError` whose message names the offending file by
its place in the series ("file 3 of 20", in name order), never by its name or path: file and
folder names of clinical exports often carry patient names, IDs and dates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from registration.dicom.geometry import LPS_TO_RAS

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
# Slices may deviate this much from a regular stack before we refuse the series: DS rounding in real
# files is ~1e-4 mm, while a genuinely irregular stack would shift the stored geometry visibly.
POSITION_TOLERANCE_MM = 0.01
RELATIVE_SPACING_TOLERANCE = 0.005
ORIENTATION_TOLERANCE = 1e-4


class DicomInputError(ValueError):
    """A DICOM input problem, worded for the coordinator and naming the file."""


@dataclass
class LoadedSeries:
    """One DICOM series read into a volume, slices sorted along the slice normal."""

    volume: NDArray[np.float32]
    affine: NDArray[np.float64]
    files: list[Path]
    headers: list[Dataset]
    modality: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_uids: list[str]
    integer_valued: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> Dataset:
        return self.headers[0]


_PATH_RE = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[/\\][^\s'\"/\\]+)+[/\\]?")


def error_text(exc: BaseException) -> str:
    """An exception's message without file-system paths (libraries quote the full path)."""
    return _PATH_RE.sub("<file>", str(exc))[:200]


def header_read(
    path: Path, *, root: Path | None = None, pixels: bool = False, label: str = "a file"
) -> Dataset:
    """Read one DICOM file; the error names it by ``label`` (never by its path)."""
    try:
        # Large elements (the pixel data) are read when first used, so a header can be checked
        # before a slice's pixels take memory.
        return pydicom.dcmread(str(path), stop_before_pixels=not pixels, defer_size="256 KB")
    except InvalidDicomError as exc:
        raise DicomInputError(f"{label}: not a DICOM file ({error_text(exc)})") from exc
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DicomInputError(f"{label}: corrupt or truncated DICOM ({error_text(exc)})") from exc


def is_dicom(path: Path) -> bool:
    """Cheap check: the DICM preamble marker (what every Part 10 file has)."""
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _floats(ds: Dataset, keyword: str, count: int, name: str) -> NDArray[np.float64]:
    value = ds.get(keyword)
    if value is None:
        raise DicomInputError(f"{name}: missing {keyword}; cannot place the slice in space")
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DicomInputError(f"{name}: unreadable {keyword} {value!r}") from exc
    if arr.shape != (count,) or not np.all(np.isfinite(arr)):
        raise DicomInputError(f"{name}: {keyword} must have {count} finite numbers, got {value!r}")
    return arr


def _slice_pixels(ds: Dataset, name: str) -> NDArray[np.float64]:
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for damaged pixel data
        raise DicomInputError(
            f"{name}: pixel data unreadable or truncated ({error_text(exc)})"
        ) from exc
    rows, cols = int(ds.Rows), int(ds.Columns)
    if pixels.shape != (rows, cols):
        raise DicomInputError(
            f"{name}: pixel data has shape {pixels.shape}, expected one frame of {rows}x{cols}"
        )
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float64) * slope + intercept


def voxels_check(*, shape: Sequence[int], max_voxels: int | None, what: str) -> None:
    """Refuse a volume larger than ``max_voxels`` from its header, before anything is decoded:
    a small compressed file can inflate to gigabytes (20-odd bytes of memory per voxel here)."""
    count = int(np.prod([int(s) for s in shape], dtype=np.int64))
    if max_voxels is not None and count > max_voxels:
        dims = "×".join(str(int(s)) for s in shape)
        raise DicomInputError(
            f"{what} has {count} voxels ({dims}), more than the limit of {max_voxels}"
        )


def _series_headers_check(
    headers: list[Dataset], names: list[str], *, max_voxels: int | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One series, one patient, one orientation, size and spacing, single frames, small enough.
    Returns the orientation cosines and pixel spacing they share."""
    ref, ref_name = headers[0], names[0]
    for key in ("SeriesInstanceUID", "StudyInstanceUID"):
        if not ref.get(key):
            raise DicomInputError(f"{ref_name}: missing {key}")
    if ref.get("SOPClassUID") == SEG_STORAGE:
        raise DicomInputError(f"{ref_name}: is a DICOM SEG, not an image series")
    if int(ref.get("NumberOfFrames", 1) or 1) > 1:
        raise DicomInputError(
            f"{ref_name}: multi-frame DICOM is not supported; export single frames"
        )
    voxels_check(
        shape=(int(ref.get("Rows", 0) or 0), int(ref.get("Columns", 0) or 0), len(headers)),
        max_voxels=max_voxels,
        what="the series",
    )
    ref_iop = _floats(ref, "ImageOrientationPatient", 6, ref_name)
    ref_spacing = _floats(ref, "PixelSpacing", 2, ref_name)
    for ds, name in zip(headers[1:], names[1:]):
        if ds.get("SeriesInstanceUID") != ref.SeriesInstanceUID:
            raise DicomInputError(
                f"{name}: belongs to another series than {ref_name} (mixed series)"
            )
        if ds.get("PatientID", "") != ref.get("PatientID", ""):
            raise DicomInputError(
                f"{name}: belongs to another patient than {ref_name} (mixed patients)"
            )
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise DicomInputError(f"{name}: multi-frame DICOM is not supported")
        if (
            np.max(np.abs(_floats(ds, "ImageOrientationPatient", 6, name) - ref_iop))
            > ORIENTATION_TOLERANCE
        ):
            raise DicomInputError(
                f"{name}: orientation differs from {ref_name} (mixed orientations)"
            )
        if (int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) != (int(ref.Rows), int(ref.Columns)):
            raise DicomInputError(f"{name}: image size differs from {ref_name}")
        if np.max(np.abs(_floats(ds, "PixelSpacing", 2, name) - ref_spacing)) > 1e-4:
            raise DicomInputError(f"{name}: pixel spacing differs from {ref_name}")
    if len(headers) < 2:
        raise DicomInputError(f"{ref_name}: a series needs at least 2 slices to define a volume")
    return ref_iop, ref_spacing


def _stack_check(
    positions: NDArray[np.float64], along: NDArray[np.float64], names: list[str]
) -> NDArray[np.float64]:
    """Sorted slice positions form one regular stack (no duplicate, missing or uneven slice, none
    off the line); returns the step from one slice to the next."""
    steps = np.diff(along)
    for idx, step in enumerate(steps):
        if step < POSITION_TOLERANCE_MM:
            raise DicomInputError(
                f"{names[idx + 1]}: same slice position as {names[idx]} (duplicate slice)"
            )
    spacing = float(np.median(steps))
    tolerance = max(POSITION_TOLERANCE_MM, RELATIVE_SPACING_TOLERANCE * spacing)
    for idx, step in enumerate(steps):
        if step > 1.5 * spacing:
            raise DicomInputError(
                f"{names[idx + 1]}: missing slice(s) before this file ({step:.3f} mm from "
                f"{names[idx]}, usual spacing {spacing:.3f} mm)"
            )
        if abs(step - spacing) > tolerance:
            raise DicomInputError(
                f"{names[idx + 1]}: uneven slice spacing ({step:.3f} mm from {names[idx]}, "
                f"usual spacing {spacing:.3f} mm)"
            )
    n = len(positions)
    k_step: NDArray[np.float64] = (positions[-1] - positions[0]) / (n - 1)
    expected = positions[0] + np.arange(n)[:, None] * k_step
    off = np.linalg.norm(positions - expected, axis=1)
    worst = int(np.argmax(off))
    if off[worst] > tolerance:
        raise DicomInputError(
            f"{names[worst]}: slice position is {off[worst]:.3f} mm off the regular stack of slices"
        )
    return k_step


def series_load(
    paths: Sequence[Path], *, root: Path | None = None, max_voxels: int | None = None
) -> LoadedSeries:
    """Read single-frame DICOM files of ONE series into a volume with its RAS affine.

    Slices are sorted by position along the slice normal (cross product of the orientation
    cosines); oblique orientations are kept; the slice step comes from the positions, not from
    SliceThickness. Mixed series, patients or orientations, duplicate or missing slices, uneven
    spacing and non-finite voxels are refused with a message naming the file. Pixel data is read
    only once the headers say the volume has at most ``max_voxels`` voxels.
    """
    if not paths:
        raise DicomInputError("no DICOM files given")
    count = len(paths)
    # Files are named by their place among the given files in name order (see module docstring).
    rank = {p: k for k, p in enumerate(sorted(paths, key=str))}
    names = [f"file {rank[p] + 1} of {count}" for p in paths]
    headers = [header_read(p, root=root, pixels=True, label=n) for p, n in zip(paths, names)]
    ref_iop, ref_spacing = _series_headers_check(headers, names, max_voxels=max_voxels)
    ref, ref_name = headers[0], names[0]
    row_dir, col_dir = ref_iop[:3], ref_iop[3:]
    normal = np.cross(row_dir, col_dir)
    if abs(np.linalg.norm(normal) - 1.0) > 1e-3 or abs(float(row_dir @ col_dir)) > 1e-3:
        raise DicomInputError(f"{ref_name}: ImageOrientationPatient is not two orthonormal vectors")
    positions = np.stack(
        [_floats(ds, "ImagePositionPatient", 3, n) for ds, n in zip(headers, names)]
    )
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    headers = [headers[i] for i in order]
    names = [names[i] for i in order]
    files = [paths[i] for i in order]
    positions, along = positions[order], along[order]
    k_step = _stack_check(positions, along, names)

    n = len(headers)
    slices = [_slice_pixels(ds, name) for ds, name in zip(headers, names)]
    stack = np.stack(slices, axis=-1)  # (rows=j, cols=i, k)
    volume64 = np.ascontiguousarray(stack.transpose(1, 0, 2))
    if not np.all(np.isfinite(volume64)):
        bad = int(np.argmax(~np.isfinite(volume64).reshape(-1, n).all(axis=0)))
        raise DicomInputError(f"{names[bad]}: contains NaN or infinite voxel values")

    lps = np.eye(4)
    lps[:3, 0] = row_dir * ref_spacing[1]
    lps[:3, 1] = col_dir * ref_spacing[0]
    lps[:3, 2] = k_step
    lps[:3, 3] = positions[0]
    return LoadedSeries(
        volume=volume64.astype(np.float32),
        affine=LPS_TO_RAS @ lps,
        files=list(files),
        headers=headers,
        modality=str(ref.get("Modality", "")),
        study_uid=str(ref.StudyInstanceUID),
        series_uid=str(ref.SeriesInstanceUID),
        frame_of_reference_uid=str(ref.get("FrameOfReferenceUID", "")),
        sop_uids=[str(ds.SOPInstanceUID) for ds in headers],
        integer_valued=bool(np.all(volume64 == np.rint(volume64))),
    )
