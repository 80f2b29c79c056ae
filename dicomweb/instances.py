"""Bytes of stored instances for WADO-RS: the Part 10 file, its pixel data, its metadata, a picture.

The stored files are single-frame, uncompressed, Explicit VR Little Endian, with PixelData the
last element (registration.dicom.write.series_write). So a frame is the file's tail and is served
without decoding the dataset; the layout is checked, and any other file is decoded by pydicom.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image

PIXEL_DATA = "7FE00010"
_PIXEL_TAG_OW = b"\xe0\x7f\x10\x00OW\x00\x00"
_PIXEL_TAG_OB = b"\xe0\x7f\x10\x00OB\x00\x00"


class FrameError(ValueError):
    """A frame number the instance does not have."""


@functools.lru_cache(maxsize=16384)
def _header_and_span(path: str, mtime_ns: int) -> tuple[dict[str, Any], int, int]:
    """(metadata without PixelData, pixel offset, pixel length) of one stored file."""
    with open(path, "rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        size = os.fstat(fh.fileno()).st_size
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        length = int(ds.Rows) * int(ds.Columns) * samples * (int(ds.BitsAllocated) // 8)
        offset = size - length
        fh.seek(offset - 12)
        head = fh.read(12)
    if head[:8] not in (_PIXEL_TAG_OW, _PIXEL_TAG_OB) or struct.unpack("<I", head[8:])[0] != length:
        offset = -1  # not the layout we write: decode with pydicom instead
    meta = ds.to_json_dict(bulk_data_threshold=1 << 30)
    return meta, offset, length


def _span(path: Path) -> tuple[dict[str, Any], int, int]:
    return _header_and_span(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=16384)
def _metadata_text(path: str, mtime_ns: int) -> str:
    """The header's DICOM JSON, encoded once, without its closing brace."""
    meta, _offset, _length = _header_and_span(path, mtime_ns)
    return json.dumps(meta, separators=(",", ":"), sort_keys=True)[:-1]


def instance_metadata_json(path: Path, *, bulk_uri: str) -> str:
    """DICOM JSON of the stored header, PixelData as a BulkDataURI (it sorts last: appended)."""
    head = _metadata_text(str(path), path.stat().st_mtime_ns)
    tail = json.dumps({"vr": "OW", "BulkDataURI": bulk_uri}, separators=(",", ":"))
    return f'{head}{"," if len(head) > 1 else ""}"{PIXEL_DATA}":{tail}}}'


def instance_frame(path: Path, *, frame: int) -> bytes:
    """Uncompressed pixel bytes of ``frame`` (1-based) in the stored byte order."""
    if frame != 1:
        raise FrameError(f"frame {frame} does not exist: the instance has 1 frame")
    _meta, offset, length = _span(path)
    if offset >= 0:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(length)
    ds = pydicom.dcmread(path)
    return bytes(ds.PixelData)


def frames_parse(text: str) -> list[int]:
    """``1,2,3`` → [1, 2, 3]; ValueError for anything else."""
    frames = [int(f) for f in text.split(",")]
    if not frames or any(f < 1 for f in frames):
        raise ValueError("frame numbers start at 1")
    return frames


def _rescaled(path: Path) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    meta, _offset, _length = _span(path)

    def first(tag: str, default: float) -> float:
        value = meta.get(tag, {}).get("Value")
        return float(value[0]) if value else default

    rows, cols = int(first("00280010", 0)), int(first("00280011", 0))
    signed = first("00280103", 0) == 1
    raw = np.frombuffer(instance_frame(path, frame=1), dtype="<i2" if signed else "<u2")
    pixels = raw.reshape(rows, cols).astype(np.float32)
    pixels = pixels * first("00281053", 1.0) + first("00281052", 0.0)
    return pixels, meta


def instance_rendered(
    path: Path,
    *,
    media_type: str,
    window: tuple[float, float] | None = None,
    viewport: tuple[int, int] | None = None,
    quality: int = 90,
) -> bytes:
    """PNG or JPEG of the frame, windowed by ``window`` (centre, width) or the stored window."""
    pixels, meta = _rescaled(path)
    if window is None:
        centre = meta.get("00281050", {}).get("Value")
        width = meta.get("00281051", {}).get("Value")
        if centre and width:
            window = (float(centre[0]), float(width[0]))
        else:
            lo, hi = float(pixels.min()), float(pixels.max())
            window = ((lo + hi) / 2, max(hi - lo, 1.0))
    centre, width = window
    scaled = (pixels - (centre - width / 2)) / max(width, 1e-6)
    img = Image.fromarray((np.clip(scaled, 0, 1) * 255).astype(np.uint8), mode="L")
    if viewport is not None:
        img.thumbnail((viewport[1], viewport[0]), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if media_type == "image/jpeg":
        img.save(out, format="JPEG", quality=max(1, min(quality, 100)))
    else:
        img.save(out, format="PNG")
    return out.getvalue()
