"""TRUS as DICOM (Ultrasound Image Storage), through a manifest and through DICOM-only grouping.

No real TRUS DICOM exists offline: the US series here is a synthetic volume written by our own
writer with the ProstateX patient ID, so the DICOM-only grouping puts it with the real T2.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from pydicom.uid import generate_uid

from registration.dicom.write import series_write
from registration.importing.run import cohort_import
from registration.models import Case, ImageSeries, ImportRun

from .conftest import PROSTATEX_T2, copy_in, manifest_write, zip_folder

pytestmark = pytest.mark.django_db


def _synthetic_us(folder: Path, *, patient_id: str) -> None:
    rng = np.random.default_rng(5)
    volume = rng.gamma(2.0, 40.0, size=(20, 24, 12)).astype(np.float32)
    affine = np.diag([0.8, 0.8, 0.8, 1.0])
    series_write(
        folder,
        volume=volume,
        affine=affine,
        modality="US",
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        sop_uids=[generate_uid() for _ in range(12)],
        patient_name=patient_id,
        patient_id=patient_id,
        series_description="synthetic TRUS",
    )


def test_manifest_with_dicom_trus(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    copy_in(shared_data, PROSTATEX_T2, folder, "t2")
    _synthetic_us(folder / "us", patient_id="ProstateX-0000")
    manifest_write(
        folder,
        [
            {
                "case_code": "PX01",
                "reference_pirads": "4",
                "mr_t2": "t2",
                "trus": "us",
                "synthetic": "true",
            }
        ],
    )
    run = cohort_import(path=folder, cohort_name="withus")
    assert run.accepted == 1, run.report
    us = ImageSeries.objects.get(modality="US")
    assert us.shape == [20, 24, 12] and us.source_format == "dicom"
    import pydicom
    from django.conf import settings

    ds = pydicom.dcmread(Path(settings.MEDIA_ROOT) / us.instances.first().path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1" and ds.PatientID == "PX01"


def test_dicom_only_groups_t2_and_us_of_one_patient(
    shared_data: Path, tmp_path: Path, coordinator, client_for
) -> None:  # noqa: ANN001
    folder = tmp_path / "study"
    copy_in(shared_data, PROSTATEX_T2, folder, "a")
    _synthetic_us(folder / "b", patient_id="ProstateX-0000")
    _synthetic_us(
        folder / "c", patient_id="SomeoneElse"
    )  # a second patient: a case of its own, no T2
    (folder / "README.txt").write_text("export notes")
    with zip_folder(folder, tmp_path / "study.zip").open("rb") as fh:
        response = client_for(coordinator).post(
            "/api/cohorts/upload/", {"archive": fh, "cohort_name": "dicomonly"}
        )
    assert response.status_code == 201
    run = ImportRun.objects.get()
    assert (run.accepted, run.rejected) == (1, 1)
    assert "skipped 1 non-DICOM file(s)" in run.report["notes"]
    assert not any("README" in n for n in run.report["notes"])
    rejected = [c for c in run.report["cases"] if c["status"] == "rejected"][0]
    assert "no T2 series found" in rejected["reasons"][0]
    case = Case.objects.get()
    assert sorted(case.series.values_list("modality", flat=True)) == ["MR_T2", "US"]
    page = (
        client_for(coordinator)
        .get(reverse("registration:import-detail", args=[run.pk]))
        .content.decode()
    )
    assert "no T2 series found" in page and "skipped 1 non-DICOM file(s)" in page
    assert "README.txt" not in page
    out = io.StringIO()
    from django.core.management import call_command

    call_command("cohort_import", str(folder), "--cohort", "dicomonly", stdout=out)
    assert "1 skipped" in out.getvalue() and Case.objects.count() == 1


def test_label_as_dicom_series_folder_on_the_t2_grid(shared_data: Path, tmp_path: Path) -> None:
    from registration.dicom.read import series_load

    folder = tmp_path / "in"
    copy_in(shared_data, PROSTATEX_T2, folder, "t2")
    t2 = series_load(sorted((folder / "t2").glob("*.dcm")))
    zones = np.zeros(t2.volume.shape, dtype=np.float32)
    zones[150:230, 150:230, 6:12] = 1  # synthetic "peripheral zone"
    zones[170:210, 170:210, 7:11] = 2  # synthetic "transition zone"
    series_write(
        folder / "zones",
        volume=zones,
        affine=t2.affine,
        modality="MR",
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        frame_of_reference_uid=generate_uid(),
        sop_uids=[generate_uid() for _ in range(zones.shape[2])],
        patient_name="ProstateX-0000",
        patient_id="ProstateX-0000",
    )
    manifest_write(
        folder, [{"case_code": "PX01", "reference_pirads": "4", "mr_t2": "t2", "mr_label": "zones"}]
    )
    run = cohort_import(path=folder, cohort_name="zones")
    assert run.accepted == 1, run.report
    import nibabel as nib
    from django.conf import settings

    label = ImageSeries.objects.get(kind="label")
    stored = np.asarray(nib.load(str(Path(settings.MEDIA_ROOT) / label.nifti_path)).dataobj)
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 1}
    assert int(stored.sum()) == int((zones > 0).sum())
