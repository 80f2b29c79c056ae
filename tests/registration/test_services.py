"""series_create_from_array, dicom_instance_bytes and deletes (the contracts other parts call)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from django.conf import settings

from registration.dicom.geometry import corners_world
from registration.dicom.read import series_load
from registration.models import DicomInstance, ImageSeries
from registration.services import SeriesInputError, case_delete, series_create_from_array
from registration.serving import dicom_instance_bytes

from .conftest import media_files
from .factories import synthetic_case, synthetic_series

pytestmark = pytest.mark.django_db


def _media() -> Path:
    return Path(settings.MEDIA_ROOT)


def test_series_create_writes_nifti_dicom_and_rows() -> None:
    case = synthetic_case()
    series = synthetic_series(case)
    assert series.shape == [12, 10, 6] and np.allclose(series.spacing, [0.8, 0.9, 2.0])
    assert series.origin == [-5.0, 3.0, 10.0]
    folder = _media() / f"cohorts/{case.cohort_id}/{case.pk}/{series.series_instance_uid}"
    assert (_media() / series.nifti_path).parent == folder
    nifti = _media() / series.nifti_path
    assert hashlib.sha256(nifti.read_bytes()).hexdigest() == series.nifti_sha256
    assert np.allclose(nib.load(str(nifti)).affine, series.affine)
    instances = list(series.instances.order_by("instance_number"))
    assert [i.instance_number for i in instances] == list(range(1, 7))
    for inst in instances:
        data = (_media() / inst.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == inst.sha256 and len(data) == inst.size_bytes
    loaded = series_load([_media() / i.path for i in instances])
    assert (
        np.abs(
            corners_world(loaded.affine, loaded.volume.shape)
            - corners_world(np.array(series.affine), series.shape)
        ).max()
        < 0.01
    )
    first = pydicom.dcmread(_media() / instances[0].path)
    assert first.PatientName == case.case_code and first.PatientID == case.case_code
    assert first.StudyInstanceUID == series.study_instance_uid
    assert first.FrameOfReferenceUID == series.frame_of_reference_uid
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert not list((_media() / "tmp").iterdir())


def test_us_series_uses_ultrasound_sop_class_and_labels_share_grid() -> None:
    case = synthetic_case()
    us = synthetic_series(case, modality="US", shape=(8, 9, 5))
    first = pydicom.dcmread(_media() / us.instances.first().path)
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1" and first.Modality == "US"
    label = np.zeros((8, 9, 5), dtype=np.uint8)
    label[2:5, 3:6, 1:4] = 1
    lab = series_create_from_array(
        case=case, modality="US", kind="label", array=label, affine=np.array(us.affine), label_of=us
    )
    assert lab.frame_of_reference_uid == us.frame_of_reference_uid
    assert lab.study_instance_uid == us.study_instance_uid
    stored = np.asarray(nib.load(str(_media() / lab.nifti_path)).dataobj)
    assert stored.dtype == np.uint8 and np.array_equal(stored, label)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"array": np.full((4, 4, 2), np.nan)}, "NaN or infinite"),
        ({"array": np.zeros((4, 4))}, "3-D array"),
        ({"affine": np.zeros((4, 4))}, "singular"),
        ({"modality": "CT"}, "unknown modality"),
        ({"kind": "label"}, "need label_of"),
    ],
)
def test_series_create_refuses_bad_input_and_writes_nothing(kwargs: dict, message: str) -> None:
    case = synthetic_case()
    args = {
        "case": case,
        "modality": "MR_T2",
        "kind": "original",
        "array": np.ones((4, 4, 2)),
        "affine": np.eye(4),
    }
    args.update(kwargs)
    with pytest.raises(SeriesInputError, match=message):
        series_create_from_array(**args)
    assert ImageSeries.objects.count() == 0 and media_files(_media()) == []


def test_label_on_other_grid_refused() -> None:
    case = synthetic_case()
    image = synthetic_series(case)
    before = media_files(_media())
    with pytest.raises(SeriesInputError, match="label grid differs"):
        series_create_from_array(
            case=case,
            modality="MR_T2",
            kind="label",
            array=np.zeros((12, 10, 5), np.uint8),
            affine=np.array(image.affine),
            label_of=image,
        )
    assert media_files(_media()) == before and ImageSeries.objects.count() == 1


def test_taken_slot_and_replace_existing(django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    case = synthetic_case()
    affine = np.eye(4)
    kwargs = {
        "case": case,
        "modality": "MR_T2",
        "kind": "registered",
        "affine": affine,
        "model_key": "initial",
    }
    first = series_create_from_array(array=np.ones((4, 4, 2)), **kwargs)
    label = series_create_from_array(
        case=case,
        modality="MR_T2",
        kind="label",
        array=np.ones((4, 4, 2), np.uint8),
        affine=affine,
        label_of=first,
        model_key="initial",
    )
    old_folder = (_media() / first.nifti_path).parent
    with pytest.raises(SeriesInputError, match="already has a registered MR_T2 series"):
        series_create_from_array(array=np.ones((4, 4, 2)), **kwargs)
    other_model = series_create_from_array(
        array=np.ones((4, 4, 2)), **{**kwargs, "model_key": "rern"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        second = series_create_from_array(
            array=np.full((4, 4, 2), 2.0), replace_existing=True, **kwargs
        )
    assert not ImageSeries.objects.filter(pk__in=[first.pk, label.pk]).exists()
    assert set(ImageSeries.objects.values_list("pk", flat=True)) == {other_model.pk, second.pk}
    assert not old_folder.exists() and (_media() / second.nifti_path).exists()
    assert DicomInstance.objects.filter(series=second).count() == 2


def test_dicom_instance_bytes_unchanged_and_remapped() -> None:
    series = synthetic_series(synthetic_case())
    inst = series.instances.order_by("instance_number")[2]
    raw = (_media() / inst.path).read_bytes()
    assert dicom_instance_bytes(instance=inst) == raw
    uid_map = {
        series.study_instance_uid: "2.25.1",
        series.series_instance_uid: "2.25.2",
        inst.sop_instance_uid: "2.25.3",
        series.frame_of_reference_uid: "2.25.4",
    }
    data = dicom_instance_bytes(
        instance=inst,
        uid_map=uid_map,
        overrides={
            "PatientName": "R01-C07",
            "PatientID": "R01-C07",
            "ImageType": "ORIGINAL\\PRIMARY",
        },
    )
    ds = pydicom.dcmread(io.BytesIO(data))
    assert (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        ds.FrameOfReferenceUID,
    ) == (
        "2.25.1",
        "2.25.2",
        "2.25.3",
        "2.25.4",
    )
    assert ds.file_meta.MediaStorageSOPInstanceUID == "2.25.3"
    assert ds.PatientName == "R01-C07" and list(ds.ImageType) == ["ORIGINAL", "PRIMARY"]
    for old in uid_map:
        assert old.encode() not in data
    original = pydicom.dcmread(io.BytesIO(raw))
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    with pytest.raises(ValueError, match="unknown DICOM keyword"):
        dicom_instance_bytes(instance=inst, overrides={"NotAKeyword": "x"})


def test_case_delete_removes_rows_and_files(django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    case = synthetic_case()
    synthetic_series(case)
    synthetic_series(case, modality="US")
    assert media_files(_media())
    with django_capture_on_commit_callbacks(execute=True):
        case_delete(case=case)
    assert ImageSeries.objects.count() == 0 and DicomInstance.objects.count() == 0
    assert media_files(_media()) == []


def test_outer_rollback_leaves_an_orphan_that_storage_cleanup_finds() -> None:
    from django.core.management import call_command
    from django.db import transaction

    case = synthetic_case()
    kept = synthetic_series(case)
    with pytest.raises(RuntimeError), transaction.atomic():
        inner = series_create_from_array(
            case=case, modality="US", kind="original", array=np.ones((4, 4, 2)), affine=np.eye(4)
        )
        raise RuntimeError("caller fails after the series was written")
    orphan = (_media() / inner.nifti_path).parent
    assert orphan.is_dir() and not ImageSeries.objects.filter(pk=inner.pk).exists()
    out = io.StringIO()
    call_command("storage_cleanup", stdout=out)
    assert str(orphan) not in out.getvalue()  # too young: a write may be about to commit
    call_command("storage_cleanup", "--older-than", "0", stdout=out)
    assert str(orphan) in out.getvalue() and orphan.is_dir()
    call_command("storage_cleanup", "--delete", "--older-than", "0", stdout=io.StringIO())
    assert not orphan.exists() and (_media() / kept.nifti_path).exists()
