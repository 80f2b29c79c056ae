"""Bytes for the browser: stored DICOM instances (optionally with other UIDs) and thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from inference.imaging import to_uint8
from registration.models import DicomInstance, ImageSeries
from registration.storage import media_path

THUMB_SIZE = 192
# UID attributes of the file meta and of the dataset that a uid_map may rewrite.
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def instance_path(instance: DicomInstance) -> Path:
    return media_path(instance.path)


def dicom_instance_bytes(
    *,
    instance: DicomInstance,
    uid_map: dict[str, str] | None = None,
    overrides: dict[str, str] | None = None,
) -> bytes:
    """The stored Part 10 file of ``instance``, with UIDs rewritten through ``uid_map``.

    ``uid_map`` maps stored UIDs (study, series, SOP instance, frame of reference) to the ones the
    caller wants served; UIDs absent from the map are kept. ``overrides`` sets attributes by DICOM
    keyword (e.g. ``{"PatientName": "R01-C07"}``); a backslash separates multiple values. An unknown
    keyword is a ValueError. Without either, the stored bytes are returned unchanged.
    """
    raw = instance_path(instance).read_bytes()
    if not uid_map and not overrides:
        return raw
    import pydicom
    from pydicom.datadict import tag_for_keyword
    from pydicom.uid import UID

    ds = pydicom.dcmread(io.BytesIO(raw))
    for keyword in UID_KEYWORDS:
        value = str(ds.get(keyword, ""))
        if uid_map and value in uid_map:
            setattr(ds, keyword, uid_map[value])
    if uid_map and str(ds.file_meta.get("MediaStorageSOPInstanceUID", "")) in uid_map:
        old = str(ds.file_meta.MediaStorageSOPInstanceUID)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(uid_map[old])
    for keyword, value in (overrides or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"unknown DICOM keyword {keyword!r}")
        text = str(value)
        setattr(ds, keyword, text.split("\\") if "\\" in text else text)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def thumbnail_png(array: NDArray[Any], *, label: bool = False, size: int = THUMB_SIZE) -> bytes:
    """PNG of the middle slice along k, displayed like the DICOM (rows j, columns i).

    Images are windowed to their 1–99th percentile; labels are scaled to their largest value.
    """
    vol = np.asarray(array)
    plane = vol[:, :, vol.shape[2] // 2].T.astype(np.float64)
    window = (0.0, float(vol.max()) or 1.0) if label else None
    img = Image.fromarray(to_uint8(plane, window=window), mode="L")
    img.thumbnail((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def series_thumbnail_bytes(series: ImageSeries) -> bytes:
    """The thumbnail stored at import; rebuilt from the NIfTI if it is missing."""
    folder = media_path(series.nifti_path)
    thumb = folder.parent / "thumb.png"
    if thumb.is_file():
        return thumb.read_bytes()
    import nibabel as nib

    data = np.asarray(nib.load(str(folder)).dataobj)  # type: ignore[attr-defined]
    return thumbnail_png(data, label=series.kind in ("label", "landmarks"))
