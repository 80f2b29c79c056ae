"""Writes for cohorts, cases and image series: import, the shared `series_create_from_array`, deletes.

Storage (docs/architecture.md): ``MEDIA_ROOT/cohorts/<cohort>/<case>/<series_uid>/`` holds
``volume.nii.gz``, ``thumb.png`` and ``dicom/<sop_uid>.dcm``. Files are written under
``MEDIA_ROOT/tmp/`` first, moved in with one ``os.replace`` and the rows are written in the same
transaction; on any failure the moved folder is removed again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from django.conf import settings
from django.db import transaction
from numpy.typing import NDArray
from pydicom.uid import generate_uid

from registration import deid
from registration.dicom_io import (
    LoadedSeries,
    geometry_from_affine,
    series_write,
)
from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun

logger = logging.getLogger(__name__)

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


def _media() -> Path:
    return Path(settings.MEDIA_ROOT)


def _salt() -> str:
    return str(settings.MRITRUS_DEID_SALT)


def case_dir_relative(case: Case) -> str:
    return f"cohorts/{case.cohort_id}/{case.pk}"


@contextmanager
def tmp_folder(prefix: str = "w") -> Iterator[Path]:
    """A fresh folder under ``MEDIA_ROOT/tmp`` (same filesystem, so ``os.replace`` is atomic)."""
    root = _media() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{prefix}-{uuid.uuid4().hex}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- preparing one series folder -------------------------------------------------------------------


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


def _array_check(*, array: Any, affine: Any, kind: str) -> tuple[NDArray[Any], NDArray[np.float64]]:
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
    from registration.serving import thumbnail_png

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
        nifti_sha256=_sha256_file(nifti),
        instances=instances,
        instance_sha=[_sha256_file(path) for _, path in written],
    )


def series_rows_create(
    *,
    case: Case,
    prepared: PreparedSeries,
    case_rel: str,
    label_of: ImageSeries | None = None,
) -> ImageSeries:
    plan = prepared.plan
    rel = f"{case_rel}/{prepared.folder_name}"
    geometry = geometry_from_affine(plan.affine, plan.array.shape)
    series = ImageSeries.objects.create(
        case=case,
        modality=plan.modality,
        kind=plan.kind,
        label_of=label_of,
        model_key=plan.model_key,
        frame_of_reference_uid=plan.frame_of_reference_uid,
        study_instance_uid=plan.study_uid,
        series_instance_uid=plan.series_uid,
        series_description=plan.series_description[:64],
        nifti_path=f"{rel}/volume.nii.gz",
        nifti_sha256=prepared.nifti_sha256,
        source=plan.source,
        source_format=plan.source_format,
        import_notes=plan.import_notes,
        **geometry,
    )
    DicomInstance.objects.bulk_create(
        [
            DicomInstance(
                series=series,
                sop_instance_uid=uid,
                instance_number=k + 1,
                path=f"{rel}/dicom/{name}",
                sha256=sha,
                size_bytes=size,
            )
            for k, ((uid, name, size), sha) in enumerate(
                zip(prepared.instances, prepared.instance_sha)
            )
        ]
    )
    return series


def _remove_later(folders: Sequence[Path]) -> None:
    def remove() -> None:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    transaction.on_commit(remove)


def case_study_uid(*, case: Case, modality: str) -> str:
    """The case's study UID for a modality: the one already stored, else derived from its key."""
    existing = (
        ImageSeries.objects.filter(case=case, modality=modality, kind=ImageSeries.Kind.ORIGINAL)
        .values_list("study_instance_uid", flat=True)
        .first()
    )
    return existing or deid.uid_remap(f"study|{modality}", key=case.deid_key, salt=_salt())


def series_create_from_array(
    *,
    case: Case,
    modality: str,
    kind: str,
    array: Any,
    affine: Any,
    frame_of_reference_uid: str | None = None,
    series_description: str = "",
    source: str = "",
    model_key: str = "",
    label_of: ImageSeries | None = None,
    replace_existing: bool = False,
) -> ImageSeries:
    """Store a volume as a new series of ``case``: NIfTI + one de-identified DICOM per slice + rows.

    ``array`` is ``(i, j, k)`` in nibabel order with a RAS ``affine``. Labels and landmarks (``kind``
    ``label`` / ``landmarks``) are integer volumes on the grid of ``label_of``. The Patient Name/ID of
    the DICOM is the case code; UIDs are new. With ``replace_existing`` an existing series in the
    same slot (original per modality, registered per modality and ``model_key``, label/landmarks
    per ``label_of``) is deleted in the same transaction; otherwise a taken slot is an error.
    """
    if modality not in ImageSeries.Modality.values:
        raise SeriesInputError(f"unknown modality {modality!r}")
    if kind not in ImageSeries.Kind.values:
        raise SeriesInputError(f"unknown kind {kind!r}")
    arr, aff = _array_check(array=array, affine=affine, kind=kind)
    if label_of is not None:
        if label_of.case_id != case.pk:
            raise SeriesInputError("label_of belongs to another case")
        if not grid_matches(
            shape=arr.shape, affine=aff, other_shape=label_of.shape, other_affine=label_of.affine
        ):
            raise SeriesInputError("the label grid differs from the grid of its image series")
    elif kind in (ImageSeries.Kind.LABEL, ImageSeries.Kind.LANDMARKS):
        raise SeriesInputError(
            "labels and landmarks need label_of (the image whose grid they share)"
        )
    slot = _slot_queryset(
        case=case, modality=modality, kind=kind, model_key=model_key, label_of=label_of
    )
    if slot is not None and slot.exists() and not replace_existing:
        raise SeriesInputError(
            f"case {case.case_code} already has a {kind} {modality} series "
            "(pass replace_existing=True to replace it)"
        )
    if frame_of_reference_uid is None:
        frame_of_reference_uid = (
            label_of.frame_of_reference_uid
            if label_of is not None
            else deid.uid_remap(f"for|{modality}", key=case.deid_key, salt=_salt())
        )
    series_uid = generate_uid()
    plan = SeriesPlan(
        modality=modality,
        kind=kind,
        array=arr,
        affine=aff,
        study_uid=(
            label_of.study_instance_uid
            if label_of is not None
            else case_study_uid(case=case, modality=modality)
        ),
        series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        sop_uids=[generate_uid() for _ in range(arr.shape[2])],
        series_description=series_description,
        source=source,
        model_key=model_key,
    )
    case_rel = case_dir_relative(case)
    final = _media() / case_rel / series_uid
    moved = False
    with tmp_folder("series") as tmp:
        prepared = series_prepare(plan, into=tmp, patient=case.case_code)
        try:
            with transaction.atomic():
                old_folders: list[Path] = []
                if slot is not None and replace_existing:
                    old = list(slot)
                    old += list(ImageSeries.objects.filter(label_of__in=old))
                    old_folders = [_media() / Path(s.nifti_path).parent for s in old]
                    ImageSeries.objects.filter(pk__in=[s.pk for s in old]).delete()
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / series_uid, final)
                moved = True
                series = series_rows_create(
                    case=case, prepared=prepared, case_rel=case_rel, label_of=label_of
                )
                _remove_later(old_folders)
        except BaseException:
            if moved:
                shutil.rmtree(final, ignore_errors=True)
            raise
    return series


def _slot_queryset(
    *, case: Case, modality: str, kind: str, model_key: str, label_of: ImageSeries | None
) -> Any:
    qs = ImageSeries.objects.filter(case=case, modality=modality, kind=kind)
    if kind == ImageSeries.Kind.ORIGINAL:
        return qs
    if kind == ImageSeries.Kind.REGISTERED:
        return qs.filter(model_key=model_key)
    if label_of is not None:
        return qs.filter(label_of=label_of, model_key=model_key)
    return None


def grid_matches(
    *, shape: Sequence[int], affine: Any, other_shape: Sequence[int], other_affine: Any
) -> bool:
    """Same voxel grid: same shape and voxel corners within GRID_TOLERANCE_MM."""
    if [int(s) for s in shape] != [int(s) for s in other_shape]:
        return False
    from registration.dicom_io import corners_world

    a = corners_world(np.asarray(affine, dtype=np.float64), shape)
    b = corners_world(np.asarray(other_affine, dtype=np.float64), shape)
    return bool(np.max(np.abs(a - b)) <= GRID_TOLERANCE_MM)


# --- whole cases ---------------------------------------------------------------------------------


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


def _plan_for_image(*, image: CaseImage, key: str, by_column: dict[str, SeriesPlan]) -> SeriesPlan:
    salt = _salt()

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


def case_create_from_input(*, cohort: Cohort, case_input: CaseInput) -> Case:
    """Create a case and all its series atomically: one folder move and one transaction."""
    key = secrets.token_hex(32)
    plans: dict[str, SeriesPlan] = {}
    for image in case_input.images:
        arr, aff = _array_check(array=image.array, affine=image.affine, kind=image.kind)
        image.array, image.affine = arr, aff
        plans[image.column] = _plan_for_image(image=image, key=key, by_column=plans)
    final: Path | None = None
    with tmp_folder("case") as tmp:
        prepared = {
            column: series_prepare(plan, into=tmp, patient=case_input.case_code)
            for column, plan in plans.items()
        }
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    cohort=cohort,
                    case_code=case_input.case_code,
                    deid_key=key,
                    source_fingerprint=case_input.fingerprint,
                    **case_input.fields,
                )
                case_rel = case_dir_relative(case)
                target = _media() / case_rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():  # left by a crash between move and commit; never committed
                    shutil.rmtree(target)
                os.replace(tmp, target)
                final = target
                created: dict[str, ImageSeries] = {}
                for image in case_input.images:
                    created[image.column] = series_rows_create(
                        case=case,
                        prepared=prepared[image.column],
                        case_rel=case_rel,
                        label_of=created.get(image.label_of_column),
                    )
                if case.synthetic and not cohort.synthetic:
                    Cohort.objects.filter(pk=cohort.pk).update(synthetic=True)
        except BaseException:
            if final is not None:
                shutil.rmtree(final, ignore_errors=True)
            raise
    return case


def case_delete(*, case: Case) -> None:
    """Delete a case, its series rows and its folder (after the commit)."""
    folder = _media() / case_dir_relative(case)
    with transaction.atomic():
        case.delete()
        _remove_later([folder])


def cohort_delete(*, cohort: Cohort) -> None:
    folder = _media() / "cohorts" / str(cohort.pk)
    with transaction.atomic():
        cohort.delete()
        _remove_later([folder])


# --- cohort import (registration/import_runs.py) ----------------------------------------------


# progress(done, total, entry): called after each case (the command's progress bar).
ImportProgress = Callable[[int, int, dict[str, Any]], None]


def cohort_import(
    *,
    path: Path,
    cohort_name: str | None = None,
    user: Any = None,
    source_name: str | None = None,
    upload_key: str = "",
    progress: ImportProgress | None = None,
) -> ImportRun:
    """Import a manifest or DICOM-only input (folder or zip); see `import_runs.cohort_import`."""
    from registration import import_runs

    return import_runs.cohort_import(
        path=path,
        cohort_name=cohort_name,
        user=user,
        source_name=source_name,
        upload_key=upload_key,
        progress=progress,
    )


def cohort_import_upload(
    *, uploaded: Any, cohort_name: str | None, user: Any, upload_key: str = ""
) -> ImportRun:
    """Import an uploaded zip (web form or API); see `import_runs.cohort_import_upload`."""
    from registration import import_runs

    return import_runs.cohort_import_upload(
        uploaded=uploaded, cohort_name=cohort_name, user=user, upload_key=upload_key
    )
