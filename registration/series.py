"""One image series on disk, before any row exists: what an import or a job hands over
(`CaseImage`, `CaseInput`), its plan (UIDs chosen), and its folder written under a temp folder
(NIfTI, thumbnail, one de-identified DICOM per slice). Nothing here touches the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from registration.dicom import deid
from registration.dicom.geometry import corners_world
from registration.dicom.read import LoadedSeries
from registration.dicom.write import series_write
from registration.models import ImageSeries
from registration.serving import thumbnail_png
from registration.storage import sha256_file

# Stable DICOM series numbers so viewers list a case's series in a predictable order.
SERIES_NUMBERS = {
    ("MR_T2", "original"): 1,
    ("US", "original"): 2,
    ("MR_T2", "label"): 3,
    ("US", "label"): 4,
    ("MR_T2", "landmarks"): 5,
    ("US", "landmarks"): 6,
    ("MR_T2", "registered"): 10,
    ("US", "registered"): 11,
}
# Acquisition attributes that survive de-identification and are worth keeping on served DICOM.
KEPT_SOURCE_KEYWORDS = (
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "EchoTime",
    "RepetitionTime",
    "FlipAngle",
    "ScanningSequence",
    "SequenceVariant",
    "MRAcquisitionType",
    "BodyPartExamined",
    "PatientPosition",
)
GRID_TOLERANCE_MM = 1e-3
# Clean Descriptors option, "or a neutral one": what an original series is called when nothing
# of its own description survived the vocabulary.
NEUTRAL_DESCRIPTIONS = {"MR_T2": "T2", "US": "US"}


class SeriesInputError(ValueError):
    """An array, affine or series request that cannot be stored (message for the caller)."""


@dataclass
class SeriesPlan:
    """Everything needed to write one series; UIDs already chosen."""

    modality: str
    kind: str
    array: NDArray[Any]
    affine: NDArray[np.float64]
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_uids: list[str]
    series_description: str = ""
    source: str = ""
    source_format: str = "generated"
    model_key: str = ""
    import_notes: str = ""
    study_date: str = ""
    extra: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class PreparedSeries:
    plan: SeriesPlan
    folder_name: str
    nifti_sha256: str
    instances: list[tuple[str, str, int]]  # (sop_uid, file name, size)
    instance_sha: list[str]


def array_check(*, array: Any, affine: Any, kind: str) -> tuple[NDArray[Any], NDArray[np.float64]]:
    arr = np.asarray(array)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise SeriesInputError(f"a series needs a 3-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise SeriesInputError(f"a series needs a real numeric array, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise SeriesInputError("the volume contains NaN or infinite voxel values")
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        raise SeriesInputError("the affine must be a finite 4×4 matrix")
    if abs(np.linalg.det(aff[:3, :3])) < 1e-9 or not np.allclose(aff[3], [0, 0, 0, 1]):
        raise SeriesInputError("the affine is singular or not an affine transform")
    if kind in (ImageSeries.Kind.LABEL, ImageSeries.Kind.LANDMARKS):
        rounded = np.rint(arr)
        if np.any(rounded != arr) or arr.min() < 0 or arr.max() > 255:
            raise SeriesInputError("a label volume must hold integers 0–255")
        arr = rounded.astype(np.uint8)
    else:
        arr = arr.astype(np.float32)
    return arr, aff


def _nifti_disk_array(array: NDArray[Any]) -> NDArray[Any]:
    """Integer-valued images (all DICOM input) go to disk as 16-bit: half the bytes and the gzip
    time of float32, and exact. Readers cast to float32 on load (docs/architecture.md)."""
    if array.dtype == np.uint8 or not np.issubdtype(array.dtype, np.floating) or array.size == 0:
        return array
    lo, hi = float(array.min()), float(array.max())
    if lo >= -32768 and hi <= 32767 and np.array_equal(array, np.rint(array)):
        return array.astype(np.int16)
    if lo >= 0 and hi <= 65535 and np.array_equal(array, np.rint(array)):
        return array.astype(np.uint16)
    return array


def series_prepare(plan: SeriesPlan, *, into: Path, patient: str) -> PreparedSeries:
    """Write NIfTI, thumbnail and DICOM instances of one series into ``into/<series_uid>/``."""
    folder = into / plan.series_uid
    folder.mkdir(parents=True)
    nifti = folder / "volume.nii.gz"
    img = nib.Nifti1Image(_nifti_disk_array(plan.array), plan.affine)
    img.set_qform(plan.affine, code=1)
    img.set_sform(plan.affine, code=1)
    nib.save(img, str(nifti))
    (folder / "thumb.png").write_bytes(
        thumbnail_png(plan.array, label=plan.kind in ("label", "landmarks"))
    )
    written = series_write(
        folder / "dicom",
        volume=plan.array,
        affine=plan.affine,
        modality="MR" if plan.modality == ImageSeries.Modality.MR_T2 else "US",
        study_uid=plan.study_uid,
        series_uid=plan.series_uid,
        frame_of_reference_uid=plan.frame_of_reference_uid,
        sop_uids=plan.sop_uids,
        patient_name=patient,
        patient_id=patient,
        series_description=plan.series_description,
        series_number=SERIES_NUMBERS.get((plan.modality, plan.kind), 20),
        study_date=plan.study_date,
        extra=plan.extra,
    )
    instances = [(uid, path.name, path.stat().st_size) for uid, path in written]
    return PreparedSeries(
        plan=plan,
        folder_name=plan.series_uid,
        nifti_sha256=sha256_file(nifti),
        instances=instances,
        instance_sha=[sha256_file(path) for _, path in written],
    )


def grid_matches(
    *, shape: Sequence[int], affine: Any, other_shape: Sequence[int], other_affine: Any
) -> bool:
    """Same voxel grid: same shape and voxel corners within GRID_TOLERANCE_MM."""
    if [int(s) for s in shape] != [int(s) for s in other_shape]:
        return False
    a = corners_world(np.asarray(affine, dtype=np.float64), shape)
    b = corners_world(np.asarray(other_affine, dtype=np.float64), shape)
    return bool(np.max(np.abs(a - b)) <= GRID_TOLERANCE_MM)


@dataclass
class CaseImage:
    """One volume of a case about to be imported (from importers)."""

    column: str
    modality: str
    kind: str
    array: NDArray[Any]
    affine: NDArray[np.float64]
    source: str
    source_format: str
    dicom: LoadedSeries | None = None
    seg_series_uid: str = ""
    label_of_column: str = ""
    series_description: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class CaseInput:
    case_code: str
    fields: dict[str, Any]
    images: list[CaseImage]
    fingerprint: str
    notes: list[str] = field(default_factory=list)


def series_plan_for_image(
    *, image: CaseImage, key: str, by_column: dict[str, SeriesPlan]
) -> SeriesPlan:
    salt = str(settings.MRITRUS_DEID_SALT)

    def remap(uid: str) -> str:
        return deid.uid_remap(uid, key=key, salt=salt)

    parent = by_column.get(image.label_of_column) if image.label_of_column else None
    extra: list[tuple[str, Any]] = []
    study_date = ""
    description = image.series_description
    if image.dicom is not None:
        header = deid.dataset_deidentify(
            image.dicom.first.copy(), pseudonym="x", key=key, salt=salt
        )
        extra = [
            (kw, header.get(kw)) for kw in KEPT_SOURCE_KEYWORDS if header.get(kw) not in (None, "")
        ]
        study_date = str(header.get("StudyDate", "") or "")
        # dataset_deidentify kept only the vocabulary words of the description (clean descriptors).
        description = description or str(header.get("SeriesDescription", "") or "")
        study_uid = remap(image.dicom.study_uid)
        series_uid = remap(image.dicom.series_uid)
        for_uid = (
            remap(image.dicom.frame_of_reference_uid)
            if image.dicom.frame_of_reference_uid
            else remap(f"for|{image.dicom.series_uid}")
        )
        sop_uids = [remap(uid) for uid in image.dicom.sop_uids]
    else:
        base = image.seg_series_uid or f"{image.column}|{uuid.uuid4().hex}"
        series_uid = remap(base)
        if parent is not None:
            study_uid, for_uid = parent.study_uid, parent.frame_of_reference_uid
            study_date = parent.study_date
        else:
            study_uid = remap(f"study|{image.modality}")
            for_uid = remap(f"for|{image.modality}")
        sop_uids = [remap(f"{series_uid}|{k}") for k in range(image.array.shape[2])]
    if parent is not None:
        for_uid = parent.frame_of_reference_uid
        study_uid = parent.study_uid
    if not description and image.kind == ImageSeries.Kind.ORIGINAL:
        description = NEUTRAL_DESCRIPTIONS.get(image.modality, "")
    return SeriesPlan(
        modality=image.modality,
        kind=image.kind,
        array=image.array,
        affine=image.affine,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=for_uid,
        sop_uids=sop_uids,
        series_description=description[:64],
        source=image.source,
        source_format=image.source_format,
        import_notes="; ".join(image.notes),
        study_date=study_date,
        extra=extra,
    )
