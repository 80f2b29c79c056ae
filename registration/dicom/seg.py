"""Reading a DICOM SEG onto the grid of the image series it references (pydicom + numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from registration.dicom.geometry import LPS_TO_RAS
from registration.dicom.read import (
    SEG_STORAGE,
    DicomInputError,
    LoadedSeries,
    error_text,
    header_read,
    voxels_check,
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
