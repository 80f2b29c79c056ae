"""What a reader's viewer fetches: the series manifest and remapped, neutral DICOM instances.

Everything here works on an ``AssignmentSeries`` already checked by the selectors; it never looks
anything up by a stored UID or a case, so a reader cannot address another series.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.urls import reverse

from readerstudy.display import (
    MATRIX,
    PIXEL_MM,
    SLICE_MM,
    SLICES,
    DisplayGrid,
    display_grid_get,
    display_offset,
    series_centre_lps,
)
from readerstudy.models import AssignmentSeries
from registration.dicom_io import MR_IMAGE_STORAGE, US_IMAGE_STORAGE

# A served instance carries exactly these attributes (image pixel module, the display geometry,
# rescale and window), all written from the common display grid (readerstudy/display.py), plus
# the neutral identity below. Nothing of the stored header reaches a reader: no date, scanner,
# protocol, description, acquisition parameter or geometry could tell the arm or let a reader
# pair the two arms of one patient.
KEPT_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "Modality",
    "PatientIdentityRemoved",
    "SliceThickness",
    "SpacingBetweenSlices",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceLocation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "PixelSpacing",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "BurnedInAnnotation",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PixelData",
)
REMAPPED_KEYWORDS = (
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
)


def neutral_identity(*, view: AssignmentSeries) -> dict[str, Any]:
    """The attributes every served instance of this view gets, the same in every arm."""
    code = view.assignment.reading_code
    return {
        "PatientName": code,
        "PatientID": code,
        "SeriesDescription": "T2" if view.series.modality == "MR_T2" else "US",
        "SeriesNumber": 1 if view.role == AssignmentSeries.Role.PRIMARY else 2,
        # Every served series is written by the platform, whatever the arm.
        "ImageType": ["DERIVED", "SECONDARY"],
    }


def _slice_uid(view: AssignmentSeries, slice_index: int) -> str:
    # Keyed by the view's random series UID: unrelated between arms, stable between requests.
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{view.series_uid}:{slice_index}".encode(), hashlib.sha256
    ).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def view_slice_uids(*, view: AssignmentSeries) -> list[str]:
    """The SOP Instance UIDs of this view's display slices, in slice order."""
    return [_slice_uid(view, k) for k in range(SLICES)]


def view_slice_index(*, view: AssignmentSeries, object_uid: str) -> int:
    """The display slice behind a SOP Instance UID of this view (LookupError if none)."""
    try:
        return view_slice_uids(view=view).index(object_uid)
    except ValueError:
        raise LookupError("no such instance in this view") from None


def view_grid(*, view: AssignmentSeries) -> DisplayGrid:
    """The view's series on the display grid, centred on the PRIMARY series' gland.

    The fused arm's TRUS and registered T2 share a frame, so one centre keeps them aligned.
    """
    primary = view
    if view.role != AssignmentSeries.Role.PRIMARY:
        primary = view.assignment.views.select_related("series").get(
            role=AssignmentSeries.Role.PRIMARY
        )
    centre = series_centre_lps(series=primary.series)
    return display_grid_get(series=view.series, centre_lps=centre)


def view_instance_bytes(*, view: AssignmentSeries, slice_index: int) -> bytes:
    """Part 10 bytes of one display slice of this view: the common geometry, remapped, neutral.

    Built from nothing but the display grid: no stored header value can reach a reader.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    grid = view_grid(view=view)
    pixels = np.ascontiguousarray(grid.pixels[slice_index])
    mr = view.series.modality == "MR_T2"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MR_IMAGE_STORAGE if mr else US_IMAGE_STORAGE
    ds.SOPInstanceUID = _slice_uid(view, slice_index)
    ds.StudyInstanceUID = view.study_uid
    ds.SeriesInstanceUID = view.series_uid
    ds.FrameOfReferenceUID = view.uid_map[view.series.frame_of_reference_uid]
    ds.Modality = "MR" if mr else "US"
    ds.PatientIdentityRemoved = "YES"
    ds.BurnedInAnnotation = "NO"
    ds.SliceThickness = _ds(SLICE_MM)
    ds.SpacingBetweenSlices = _ds(SLICE_MM)
    ds.InstanceNumber = slice_index + 1
    position = display_offset(slice_index=slice_index)
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = _ds(position[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = MATRIX
    ds.Columns = MATRIX
    ds.PixelSpacing = [_ds(PIXEL_MM), _ds(PIXEL_MM)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    auto = grid.presets[0]
    ds.WindowCenter = _ds((auto["lower"] + auto["upper"]) / 2)
    ds.WindowWidth = _ds(max(auto["upper"] - auto["lower"], 1.0))
    ds.PixelData = pixels.astype("<u2").tobytes()
    for keyword, value in neutral_identity(view=view).items():
        setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _ds(value: float) -> str:
    return f"{float(value):.6g}"


def view_manifest(*, view: AssignmentSeries) -> dict[str, Any]:
    wado = reverse("readerstudy:wado")
    image_ids = []
    for uid in view_slice_uids(view=view):
        query = urlencode(
            {
                "requestType": "WADO",
                "studyUID": view.study_uid,
                "seriesUID": view.series_uid,
                "objectUID": uid,
                "contentType": "application/dicom",
            }
        )
        image_ids.append(f"wadouri:{wado}?{query}")
    return {
        "seriesUID": view.series_uid,
        "role": view.role,
        "modality": "MR" if view.series.modality == "MR_T2" else "US",
        "imageIds": image_ids,
        "presets": view_grid(view=view).presets,
    }
