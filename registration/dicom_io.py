"""DICOM series ↔ volume conversion (pydicom + numpy; no Django, no torch).

Volumes are in nibabel voxel order ``(i, j, k)`` with a RAS+ affine (docs/architecture.md). In a DICOM
slice, ``pixel_array[r, c]`` has ``c`` along the ImageOrientationPatient row direction and ``r`` along
its column direction, so voxel ``(i, j, k)`` is ``slice_k.pixel_array[j, i]``.

Every error raised here is a :class:`DicomInputError` whose message names the offending file by
its place in the series ("file 3 of 20", in name order), never by its name or path: file and
folder names of clinical exports often carry patient names, IDs and dates.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
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
        shape=(int(ref.get("Rows", 0) or 0), int(ref.get("Columns", 0) or 0), count),
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
    n = len(headers)
    k_step = (positions[-1] - positions[0]) / (n - 1)
    expected = positions[0] + np.arange(n)[:, None] * k_step
    off = np.linalg.norm(positions - expected, axis=1)
    worst = int(np.argmax(off))
    if off[worst] > tolerance:
        raise DicomInputError(
            f"{names[worst]}: slice position is {off[worst]:.3f} mm off the regular stack of slices"
        )

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


def seg_load_onto(
    seg_path: Path,
    series: LoadedSeries,
    *,
    root: Path | None = None,
    max_voxels: int | None = None,
) -> NDArray[np.uint8]:
    """Read a DICOM SEG onto the grid of the series it references.

    Frames are matched to slices by the referenced source SOP Instance UID, or, when a frame has
    none, by its ImagePositionPatient. Segment numbers become label values (BINARY and FRACTIONAL
    segmentations; fractional frames are thresholded at one half).
    """
    name = "the DICOM SEG file"
    ds = header_read(seg_path, root=root, pixels=True, label=name)
    voxels_check(
        shape=(
            int(ds.get("NumberOfFrames", 1) or 1),
            int(ds.get("Rows", 0) or 0),
            int(ds.get("Columns", 0) or 0),
        ),
        max_voxels=max_voxels,
        what=name,
    )
    if ds.get("SOPClassUID") != SEG_STORAGE:
        raise DicomInputError(f"{name}: not a DICOM SEG (SOP class {ds.get('SOPClassUID')})")
    refs = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]
    if series.series_uid not in refs:
        raise DicomInputError(
            f"{name}: the SEG does not reference the image series it is paired with"
        )
    if (int(ds.Rows), int(ds.Columns)) != (series.volume.shape[1], series.volume.shape[0]):
        raise DicomInputError(f"{name}: SEG frame size differs from the referenced series")
    try:
        frames = np.asarray(ds.pixel_array)
    except Exception as exc:  # damaged bit-packed pixel data
        raise DicomInputError(f"{name}: SEG pixel data unreadable ({error_text(exc)})") from exc
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.shape[0] != n_frames:
        raise DicomInputError(f"{name}: SEG has {frames.shape[0]} frames, header says {n_frames}")
    fractional = str(ds.get("SegmentationType", "BINARY")) == "FRACTIONAL"
    max_fraction = float(ds.get("MaximumFractionalValue", 255) or 255)
    slice_of_sop = {uid: k for k, uid in enumerate(series.sop_uids)}
    lps = np.linalg.inv(LPS_TO_RAS) @ series.affine
    inv = np.linalg.inv(lps)
    label = np.zeros(series.volume.shape, dtype=np.uint8)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    if len(per_frame) != n_frames:
        raise DicomInputError(f"{name}: SEG lacks per-frame functional groups")
    for f, group in enumerate(per_frame):
        k: int | None = None
        for der in group.get("DerivationImageSequence", []):
            for src in der.get("SourceImageSequence", []):
                k = slice_of_sop.get(str(src.ReferencedSOPInstanceUID), k)
        if k is None and "PlanePositionSequence" in group:
            pos = np.asarray(
                [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
            )
            idx = inv @ np.append(pos, 1.0)
            if np.max(np.abs(idx[:2])) < 0.01 and abs(idx[2] - round(idx[2])) < 0.01:
                k = int(round(idx[2]))
        if k is None or not 0 <= k < int(series.volume.shape[2]):
            raise DicomInputError(
                f"{name}: SEG frame {f + 1} matches no slice of the referenced series"
            )
        seg_items = group.get("SegmentIdentificationSequence", [])
        segment = int(seg_items[0].ReferencedSegmentNumber) if seg_items else 1
        if not 1 <= segment <= 255:
            raise DicomInputError(f"{name}: segment number {segment} outside 1..255")
        frame = frames[f].astype(np.float64)
        mask = frame > (max_fraction / 2 if fractional else 0)
        label[:, :, k][mask.T] = segment
    return label


def _uid_ok(uid: str) -> str:
    if not uid or len(uid) > 64:
        raise ValueError(f"invalid UID {uid!r}")
    return uid


@dataclass
class PixelEncoding:
    stored: NDArray[np.integer[Any]]
    slope: float
    intercept: float
    signed: bool


def pixels_encode(volume: NDArray[np.generic]) -> PixelEncoding:
    """16-bit stored values + rescale so that slope * stored + intercept reproduces the volume.

    Integer-valued volumes that fit 16 bits are stored exactly; other volumes are quantised
    linearly over their range (65,536 levels), which is below display and analysis precision.
    """
    vol = np.asarray(volume, dtype=np.float64)
    if not np.all(np.isfinite(vol)):
        raise ValueError("volume contains NaN or infinite values")
    lo, hi = float(vol.min()), float(vol.max())
    if np.all(vol == np.rint(vol)):
        if lo >= 0 and hi <= 65535:
            return PixelEncoding(vol.astype(np.uint16), 1.0, 0.0, False)
        if lo >= -32768 and hi <= 32767:
            return PixelEncoding(vol.astype(np.int16), 1.0, 0.0, True)
    # Quantise with the values exactly as the DS strings will carry them.
    slope = float(_ds_str((hi - lo) / 65535.0)) if hi > lo else 1.0
    intercept = float(_ds_str(lo))
    if slope * 65535 + intercept < hi:
        slope = float(_ds_str(slope * (1 + 1e-7)))
    stored = np.clip(np.rint((vol - intercept) / slope), 0, 65535).astype(np.uint16)
    return PixelEncoding(stored, slope, intercept, False)


def _ds_str(value: float) -> str:
    text = f"{value:.10g}"
    if len(text) > 16:
        text = f"{value:.8g}"
    return text


def geometry_from_affine(affine: NDArray[np.floating], shape: Sequence[int]) -> dict[str, Any]:
    """Shape, spacing, direction (columns i, j, k), origin and affine, as JSON-able lists (RAS)."""
    aff = np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    direction = aff[:3, :3] / spacing
    return {
        "shape": [int(s) for s in shape],
        "spacing": [float(s) for s in spacing],
        "direction": direction.tolist(),
        "origin": aff[:3, 3].tolist(),
        "affine": aff.tolist(),
    }


def corners_world(affine: NDArray[np.floating], shape: Sequence[int]) -> NDArray[np.float64]:
    """RAS world positions (mm) of the 8 corner voxel centres of a grid."""
    ni, nj, nk = (int(s) - 1 for s in shape)
    idx = np.array(
        [[i, j, k, 1] for i in (0, ni) for j in (0, nj) for k in (0, nk)], dtype=np.float64
    )
    return (np.asarray(affine, dtype=np.float64) @ idx.T).T[:, :3]


def series_write(
    directory: Path,
    *,
    volume: NDArray[np.generic],
    affine: NDArray[np.floating],
    modality: str,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    sop_uids: Sequence[str],
    patient_name: str,
    patient_id: str,
    series_description: str = "",
    series_number: int = 1,
    study_date: str = "",
    extra: Iterable[tuple[str, Any]] = (),
) -> list[tuple[str, Path]]:
    """Write a volume as one single-frame DICOM instance per slice ``k`` into ``directory``.

    ``modality`` is ``"MR"`` or ``"US"`` (MR Image / Ultrasound Image Storage). The geometry follows
    docs/architecture.md: ImagePositionPatient of voxel (0, 0, k), ImageOrientationPatient from the
    affine columns i and j, PixelSpacing ``[spacing_j, spacing_i]``. ``extra`` are already
    de-identified (keyword, value) pairs copied from the source header. Returns
    ``[(sop_instance_uid, path), ...]`` in slice order.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {vol.shape}")
    if len(sop_uids) != vol.shape[2]:
        raise ValueError("one SOP Instance UID per slice is required")
    if modality not in ("MR", "US"):
        raise ValueError(f"modality must be MR or US, got {modality!r}")
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=np.float64)
    col_i, col_j, col_k = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    si, sj = float(np.linalg.norm(col_i)), float(np.linalg.norm(col_j))
    if si <= 0 or sj <= 0:
        raise ValueError("affine has a zero-length voxel axis")
    row_dir, col_dir = col_i / si, col_j / sj
    slice_gap = float(np.linalg.norm(col_k))
    enc = pixels_encode(vol)
    finite = vol[np.isfinite(vol)].astype(np.float64) if vol.size else np.zeros(1)
    p1, p99 = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    center, width = (p1 + p99) / 2, max(p99 - p1, 1e-6)
    sop_class = MR_IMAGE_STORAGE if modality == "MR" else US_IMAGE_STORAGE
    directory.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path]] = []
    extra_items = list(extra)
    # One dataset reused for every slice: only the per-slice elements change (4x faster than
    # building each slice from scratch, which dominated import time).
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(_uid_ok(sop_uids[0]))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid_ok(sop_uids[0])
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description[:64]
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "mritrus: PS3.15 basic profile, dates shifted, UIDs remapped"
    ds.BurnedInAnnotation = "NO"
    for keyword, value in extra_items:
        setattr(ds, keyword, value)
    ds.StudyInstanceUID = _uid_ok(study_uid)
    ds.SeriesInstanceUID = _uid_ok(series_uid)
    ds.StudyID = ""
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = _uid_ok(frame_of_reference_uid)
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = ["0", "0", "0"]
    ds.ImageOrientationPatient = [_ds_str(v) for v in (*row_dir, *col_dir)]
    ds.PixelSpacing = [_ds_str(sj), _ds_str(si)]
    ds.SliceThickness = _ds_str(slice_gap)
    ds.SpacingBetweenSlices = _ds_str(slice_gap)
    ds.SliceLocation = "0"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = vol.shape[1]
    ds.Columns = vol.shape[0]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if enc.signed else 0
    ds.RescaleIntercept = _ds_str(enc.intercept)
    ds.RescaleSlope = _ds_str(enc.slope)
    ds.RescaleType = "US"
    ds.WindowCenter = _ds_str(float(center))
    ds.WindowWidth = _ds_str(float(width))
    ds.PixelData = b""
    normal = np.cross(row_dir, col_dir)
    for k in range(vol.shape[2]):
        sop_uid = _uid_ok(sop_uids[k])
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        pos = lps[:3, 3] + k * col_k
        ds.ImagePositionPatient = [_ds_str(v) for v in pos]
        ds.SliceLocation = _ds_str(float(pos @ normal))
        ds.PixelData = np.ascontiguousarray(enc.stored[:, :, k].T).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        path = directory / f"{sop_uid}.dcm"
        path.write_bytes(buffer.getvalue())
        out.append((sop_uid, path))
    return out
