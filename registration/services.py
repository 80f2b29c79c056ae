"""Writes for cohorts, cases and image series: `series_create_from_array` (jobs and tests),
`case_create_from_input` (imports), and the deletes.

Storage (docs/architecture.md): ``MEDIA_ROOT/cohorts/<cohort>/<case>/<series_uid>/`` holds
``volume.nii.gz``, ``thumb.png`` and ``dicom/<sop_uid>.dcm``. Files are written under
``MEDIA_ROOT/tmp/`` first (`registration.series`), moved in with one rename and the rows are
written in the same transaction; on any failure the moved folder is removed again
(`registration.storage`).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from numpy.typing import NDArray
from pydicom.uid import generate_uid

from registration import storage
from registration.dicom import deid
from registration.dicom.geometry import geometry_from_affine
from registration.models import Case, Cohort, DicomInstance, ImageSeries
from registration.series import (
    CaseInput,
    PreparedSeries,
    SeriesInputError,
    SeriesPlan,
    array_check,
    grid_matches,
    series_plan_for_image,
    series_prepare,
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


def case_study_uid(*, case: Case, modality: str) -> str:
    """The case's study UID for a modality: the one already stored, else derived from its key."""
    existing = (
        ImageSeries.objects.filter(case=case, modality=modality, kind=ImageSeries.Kind.ORIGINAL)
        .values_list("study_instance_uid", flat=True)
        .first()
    )
    return existing or deid.uid_remap(
        f"study|{modality}", key=case.deid_key, salt=str(settings.MRITRUS_DEID_SALT)
    )


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
    arr, aff = _series_request_check(
        case=case, modality=modality, kind=kind, array=array, affine=affine, label_of=label_of
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
            else deid.uid_remap(
                f"for|{modality}", key=case.deid_key, salt=str(settings.MRITRUS_DEID_SALT)
            )
        )
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
        series_uid=generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid,
        sop_uids=[generate_uid() for _ in range(arr.shape[2])],
        series_description=series_description,
        source=source,
        model_key=model_key,
    )
    return _series_store(
        case=case,
        plan=plan,
        label_of=label_of,
        replaced=slot if slot is not None and replace_existing else None,
    )


def _series_request_check(
    *,
    case: Case,
    modality: str,
    kind: str,
    array: Any,
    affine: Any,
    label_of: ImageSeries | None,
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    if modality not in ImageSeries.Modality.values:
        raise SeriesInputError(f"unknown modality {modality!r}")
    if kind not in ImageSeries.Kind.values:
        raise SeriesInputError(f"unknown kind {kind!r}")
    arr, aff = array_check(array=array, affine=affine, kind=kind)
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
    return arr, aff


def _series_store(
    *,
    case: Case,
    plan: SeriesPlan,
    label_of: ImageSeries | None,
    replaced: QuerySet[ImageSeries] | None,
) -> ImageSeries:
    """Write the series folder, move it in, and write its rows (deleting ``replaced`` and their
    labels) in one transaction; their folders go once it commits."""
    case_rel = storage.case_dir_relative(case)
    final = storage.media_path(f"{case_rel}/{plan.series_uid}")
    moved = False
    with storage.tmp_folder("series") as tmp:
        prepared = series_prepare(plan, into=tmp, patient=case.case_code)
        try:
            with transaction.atomic():
                old_folders: list[Path] = []
                if replaced is not None:
                    old = list(replaced)
                    old += list(ImageSeries.objects.filter(label_of__in=old))
                    old_folders = storage.series_folders(old)
                    ImageSeries.objects.filter(pk__in=[s.pk for s in old]).delete()
                storage.folder_move(tmp / plan.series_uid, final)
                moved = True
                series = series_rows_create(
                    case=case, prepared=prepared, case_rel=case_rel, label_of=label_of
                )
                storage.remove_on_commit(old_folders)
        except BaseException:
            if moved:
                storage.tree_remove(final)
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


def case_create_from_input(*, cohort: Cohort, case_input: CaseInput) -> Case:
    """Create a case and all its series atomically: one folder move and one transaction."""
    key = secrets.token_hex(32)
    plans: dict[str, SeriesPlan] = {}
    for image in case_input.images:
        arr, aff = array_check(array=image.array, affine=image.affine, kind=image.kind)
        image.array, image.affine = arr, aff
        plans[image.column] = series_plan_for_image(image=image, key=key, by_column=plans)
    final: Path | None = None
    with storage.tmp_folder("case") as tmp:
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
                case_rel = storage.case_dir_relative(case)
                target = storage.media_path(case_rel)
                if target.exists():  # left by a crash between move and commit; never committed
                    shutil.rmtree(target)
                storage.folder_move(tmp, target)
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
                storage.tree_remove(final)
            raise
    return case


def case_delete(*, case: Case) -> None:
    """Delete a case, its series rows and its folder (after the commit)."""
    folder = storage.media_path(storage.case_dir_relative(case))
    with transaction.atomic():
        case.delete()
        storage.remove_on_commit([folder])


def cohort_delete(*, cohort: Cohort) -> None:
    folder = storage.media_path(storage.cohort_dir_relative(cohort.pk))
    with transaction.atomic():
        cohort.delete()
        storage.remove_on_commit([folder])
