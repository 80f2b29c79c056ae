"""What a reader's viewer fetches: the series manifest and remapped, neutral DICOM instances.

Everything here works on an ``AssignmentSeries`` already checked by the selectors; it never looks
anything up by a stored UID or a case, so a reader cannot address another series.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.urls import reverse

from readerstudy.display import (
    PLANES,
    DisplayGrid,
    display_grid_get,
    plane_positions,
    plane_slice,
    series_centre_lps,
)
from readerstudy.models import AssignmentSeries
from registration.dicom.write import MR_IMAGE_STORAGE, US_IMAGE_STORAGE

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


def _slice_uid(view: AssignmentSeries, slice_index: int, plane: str = "axial") -> str:
    return _uid_of(view.series_uid, slice_index, plane, settings.SECRET_KEY)


def _uid_of(series_uid: str, slice_index: int, plane: str, secret: str) -> str:
    # Keyed by the view's random series UID: unrelated between arms, stable between requests.
    key = (
        f"{series_uid}:{slice_index}" if plane == "axial" else f"{series_uid}:{plane}:{slice_index}"
    )
    digest = hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


@functools.lru_cache(maxsize=1024)
def _plane_uids(series_uid: str, plane: str, secret: str) -> tuple[str, ...]:
    # A view's slice UIDs never change (HMACs of its random series UID): computed once per process
    # and plane rather than for every image request. Only derived names are cached, never a
    # permission: the view's checks still run on every request.
    return tuple(_uid_of(series_uid, k, plane, secret) for k in range(PLANES[plane]))


@functools.lru_cache(maxsize=512)
def _slice_lookup(
    series_uid: str, planes: tuple[str, ...], secret: str
) -> dict[str, tuple[str, int]]:
    return {
        uid: (plane, k)
        for plane in planes
        for k, uid in enumerate(_plane_uids(series_uid, plane, secret))
    }


def view_slice_uids(*, view: AssignmentSeries, plane: str = "axial") -> list[str]:
    """The SOP Instance UIDs of this view's slices of ``plane``, in slice order."""
    return list(_plane_uids(view.series_uid, plane, settings.SECRET_KEY))


def view_planes(*, view: AssignmentSeries) -> tuple[str, ...]:
    """The planes a view serves: reformats of the T2 only (the TRUS underlay is axial)."""
    return tuple(PLANES) if view.role == AssignmentSeries.Role.PRIMARY else ("axial",)


def view_slice_index(*, view: AssignmentSeries, object_uid: str) -> tuple[str, int]:
    """(plane, slice) behind a SOP Instance UID of this view (LookupError if none)."""
    found = _slice_lookup(view.series_uid, view_planes(view=view), settings.SECRET_KEY).get(
        object_uid
    )
    if found is not None:
        return found
    raise LookupError("no such instance in this view")


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


def view_instance_bytes(*, view: AssignmentSeries, slice_index: int, plane: str = "axial") -> bytes:
    """Part 10 bytes of one display slice of this view: the common geometry, remapped, neutral.

    Built from nothing but the display grid: no stored header value can reach a reader.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    grid = view_grid(view=view)
    cut = plane_slice(pixels=grid.pixels, plane=plane, index=slice_index)
    mr = view.series.modality == "MR_T2"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MR_IMAGE_STORAGE if mr else US_IMAGE_STORAGE
    ds.SOPInstanceUID = _slice_uid(view, slice_index, plane)
    ds.StudyInstanceUID = view.study_uid
    ds.SeriesInstanceUID = view.series_uid
    ds.FrameOfReferenceUID = view.uid_map[view.series.frame_of_reference_uid]
    ds.Modality = "MR" if mr else "US"
    ds.PatientIdentityRemoved = "YES"
    ds.BurnedInAnnotation = "NO"
    ds.SliceThickness = _ds(cut.thickness)
    ds.SpacingBetweenSlices = _ds(cut.thickness)
    ds.InstanceNumber = slice_index + 1
    ds.ImagePositionPatient = [_ds(v) for v in cut.position]
    ds.ImageOrientationPatient = [_ds(v) for v in cut.orientation]
    normal = np.cross(cut.orientation[:3], cut.orientation[3:])
    ds.SliceLocation = _ds(float(np.dot(cut.position, normal)))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = cut.pixels.shape
    ds.PixelSpacing = [_ds(cut.spacing[0]), _ds(cut.spacing[1])]
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
    ds.PixelData = cut.pixels.astype("<u2").tobytes()
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


def _image_ids(view: AssignmentSeries, plane: str) -> list[str]:
    wado = reverse("readerstudy:wado")
    image_ids = []
    for uid in view_slice_uids(view=view, plane=plane):
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
    return image_ids


def view_manifest(*, view: AssignmentSeries) -> dict[str, Any]:
    """The view's axial image ids (``imageIds``), its reformats (``planes``) and W/L presets."""
    return {
        "seriesUID": view.series_uid,
        "role": view.role,
        "modality": "MR" if view.series.modality == "MR_T2" else "US",
        "imageIds": _image_ids(view, "axial"),
        "planes": {
            plane: _image_ids(view, plane) for plane in view_planes(view=view) if plane != "axial"
        },
        "positions": plane_positions(),
        "presets": view_grid(view=view).presets,
    }
