"""What a reader's viewer fetches: the series manifest and remapped, neutral DICOM instances.

Everything here works on an ``AssignmentSeries`` already checked by the selectors; it never looks
anything up by a stored UID or a case, so a reader cannot address another series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from readerstudy.models import AssignmentSeries
from registration.models import DicomInstance

# Element keywords set to neutral values in every served instance: identity comes only from the
# reading code, and no description, protocol or comment may tell the arm or the source.
_BLANKED = (
    "StudyDescription",
    "ProtocolName",
    "StudyID",
    "AccessionNumber",
    "ImageComments",
    "DerivationDescription",
    "SeriesDescription",
    "PatientComments",
    "ReferringPhysicianName",
    "InstitutionName",
    "ContentLabel",
    "ContentDescription",
)


def neutral_overrides(*, view: AssignmentSeries) -> dict[str, str]:
    code = view.assignment.reading_code
    overrides = dict.fromkeys(_BLANKED, "")
    overrides.update(
        {
            "PatientName": code,
            "PatientID": code,
            "SeriesDescription": "T2" if view.series.modality == "MR_T2" else "US",
            "ImageType": "ORIGINAL\\PRIMARY",
        }
    )
    return overrides


def view_instance_get(*, view: AssignmentSeries, object_uid: str) -> DicomInstance:
    """The stored instance behind a remapped SOP Instance UID of this view (DoesNotExist if none)."""
    originals = [old for old, new in view.uid_map.items() if new == object_uid]
    return DicomInstance.objects.get(series=view.series, sop_instance_uid__in=originals)


def view_instance_bytes(*, view: AssignmentSeries, instance: DicomInstance) -> bytes:
    from registration.serving import dicom_instance_bytes

    return dicom_instance_bytes(
        instance=instance, uid_map=view.uid_map, overrides=neutral_overrides(view=view)
    )


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
