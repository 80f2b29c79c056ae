"""What a reader's viewer fetches: the series manifest and remapped, neutral DICOM instances.

Everything here works on an ``AssignmentSeries`` already checked by the selectors; it never looks
anything up by a stored UID or a case, so a reader cannot address another series.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from readerstudy.models import AssignmentSeries
from registration.models import DicomInstance

# A served instance is rebuilt from this whitelist (image pixel module, geometry, rescale and
# window) plus the neutral identity below. Nothing else of the stored header reaches a reader:
# no date, scanner, protocol, description or acquisition parameter could tell the arm or let a
# reader pair the two arms of one patient.
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


def view_instance_get(*, view: AssignmentSeries, object_uid: str) -> DicomInstance:
    """The stored instance behind a remapped SOP Instance UID of this view (DoesNotExist if none)."""
    originals = [old for old, new in view.uid_map.items() if new == object_uid]
    return DicomInstance.objects.get(series=view.series, sop_instance_uid__in=originals)


def _view_cache_path(*, view: AssignmentSeries, instance: DicomInstance) -> Path:
    # Per view (its uid_map and identity never change) and per stored content (immutable).
    return (
        Path(settings.MEDIA_ROOT)
        / "cache"
        / "reader"
        / str(view.pk)
        / f"{instance.sha256[:32]}-{view.uid_map.get(instance.sop_instance_uid, 'x')}.dcm"
    )


def view_instance_bytes(*, view: AssignmentSeries, instance: DicomInstance) -> bytes:
    """Part 10 bytes of ``instance`` as this view serves it: whitelisted, remapped, neutral.

    Rebuilding an instance costs a DICOM parse and write; the result is kept on disk per view
    (under MEDIA_ROOT/cache/reader/, written by rename so a reader never sees half a file) and
    later requests read it back.
    """
    cached = _view_cache_path(view=view, instance=instance)
    try:
        return cached.read_bytes()
    except OSError:
        pass
    payload = _view_instance_build(view=view, instance=instance)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(payload)
        os.replace(partial, cached)
    except OSError:
        pass  # a read-only or full disk only costs speed
    return payload


def _view_instance_build(*, view: AssignmentSeries, instance: DicomInstance) -> bytes:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    from registration.serving import dicom_instance_bytes

    stored = pydicom.dcmread(io.BytesIO(dicom_instance_bytes(instance=instance)))
    ds = Dataset()
    for keyword in KEPT_KEYWORDS:
        element = stored.data_element(keyword)
        if element is not None:
            ds[element.tag] = element
    for keyword in REMAPPED_KEYWORDS:
        value = str(stored.get(keyword, ""))
        if value:
            # A UID missing from the map would be served as stored: refuse instead.
            setattr(ds, keyword, view.uid_map[value])
    for keyword, value in neutral_identity(view=view).items():
        setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = stored.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _window_presets(view: AssignmentSeries) -> list[dict[str, Any]]:
    """MR has no fixed units, so presets come from the volume's own intensity percentiles."""
    # Keyed by the stored volume's checksum: the same series opened by many readers is read once.
    key = f"readerstudy:presets:{view.series_id}:{view.series.nifti_sha256}"
    cached = cache.get(key)
    if cached is None:
        cached = _percentile_presets(view)
        cache.set(key, cached, timeout=24 * 3600)
    return list(cached)


def _percentile_presets(view: AssignmentSeries) -> list[dict[str, Any]]:
    import nibabel as nib

    path = Path(settings.MEDIA_ROOT) / view.series.nifti_path
    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    # Background air dominates MR volumes; percentiles over the non-zero voxels track the anatomy.
    values = data[np.isfinite(data)]
    foreground = values[values > values.min()] if values.size else values
    if foreground.size == 0:
        foreground = np.array([0.0, 1.0], dtype=np.float32)
    presets = []
    for name, low, high in (
        ("Auto (1–99 %)", 1.0, 99.0),
        ("Wide (0.1–99.9 %)", 0.1, 99.9),
        ("Contrast (10–95 %)", 10.0, 95.0),
    ):
        lo, hi = (float(v) for v in np.percentile(foreground, [low, high]))
        if hi <= lo:
            hi = lo + 1.0
        presets.append(
            {"name": name, "lower": round(lo, 3), "upper": round(hi, 3)},
        )
    return presets


def view_manifest(*, view: AssignmentSeries) -> dict[str, Any]:
    wado = reverse("readerstudy:wado")
    image_ids = []
    for instance in view.series.instances.order_by("instance_number"):
        query = urlencode(
            {
                "requestType": "WADO",
                "studyUID": view.study_uid,
                "seriesUID": view.series_uid,
                "objectUID": view.uid_map[instance.sop_instance_uid],
                "contentType": "application/dicom",
            }
        )
        image_ids.append(f"wadouri:{wado}?{query}")
    return {
        "seriesUID": view.series_uid,
        "role": view.role,
        "modality": "MR" if view.series.modality == "MR_T2" else "US",
        "imageIds": image_ids,
        "presets": _window_presets(view),
    }
