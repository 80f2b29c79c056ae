"""The real ProstateX, QIN and Yale fixtures through the command and the web form (issue 2, Done when)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import nibabel as nib
import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from django.urls import reverse

from registration.dicom.geometry import corners_world
from registration.dicom.read import series_load
from registration.dicom.seg import seg_load_onto
from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun

from .conftest import (
    PROSTATEX_ADC,
    PROSTATEX_T2,
    QIN_ADC,
    QIN_SEG,
    YALE_MASK,
    YALE_T2,
    copy_in,
    zip_folder,
)

pytestmark = pytest.mark.django_db


def _served_series(client, series: ImageSeries, tmp: Path) -> list[Path]:  # noqa: ANN001
    """Fetch every instance through the series manifest's WADO-URI image IDs."""
    manifest = client.get(reverse("registration:series-manifest", args=[series.pk])).json()
    assert len(manifest["image_ids"]) == series.instances.count()
    paths = []
    for n, image_id in enumerate(manifest["image_ids"]):
        assert image_id.startswith("wadouri:")
        url = urlsplit(image_id[len("wadouri:") :])
        response = client.get(url.path, dict(parse_qsl(url.query)))
        assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
        path = tmp / f"{series.pk}-{n}.dcm"
        path.write_bytes(response.content)
        paths.append(path)
    return paths


def _corner_gap(a_affine, a_shape, b_affine, b_shape) -> float:  # noqa: ANN001
    assert list(a_shape) == list(b_shape)
    return float(np.abs(corners_world(a_affine, a_shape) - corners_world(b_affine, b_shape)).max())


def _check_geometry(client, shared_data: Path, tmp_path: Path, cohort: Cohort) -> None:  # noqa: ANN001
    from django.conf import settings

    inputs = {
        "PX01": series_load(sorted((shared_data / PROSTATEX_T2).glob("*.dcm"))),
        "QIN01": series_load(sorted((shared_data / QIN_ADC).glob("*.dcm"))),
    }
    yale = nib.load(str(shared_data / YALE_T2))
    for code in ("PX01", "QIN01", "YALE01"):
        case = Case.objects.get(cohort=cohort, case_code=code)
        t2 = case.series.get(kind="original", modality="MR_T2")
        stored = nib.load(str(Path(settings.MEDIA_ROOT) / t2.nifti_path))
        served = series_load(_served_series(client, t2, tmp_path))
        if code == "YALE01":
            in_affine, in_shape, in_data = yale.affine, yale.shape, np.asarray(yale.dataobj)
        else:
            src = inputs[code]
            in_affine, in_shape, in_data = src.affine, src.volume.shape, src.volume
        assert _corner_gap(in_affine, in_shape, stored.affine, stored.shape) < 0.01, code
        assert (
            _corner_gap(stored.affine, stored.shape, served.affine, served.volume.shape) < 0.01
        ), code
        assert _corner_gap(in_affine, in_shape, served.affine, served.volume.shape) < 0.01, code
        assert np.array_equal(np.asarray(stored.dataobj), in_data.astype(np.float32)), code
        assert np.array_equal(served.volume, in_data.astype(np.float32)), code
        assert _corner_gap(in_affine, in_shape, np.array(t2.affine), t2.shape) < 0.01
    # QIN SEG stored on the ADC grid, voxel for voxel what the SEG says.
    qin = Case.objects.get(cohort=cohort, case_code="QIN01")
    label = qin.series.get(kind="label")
    expected = seg_load_onto(shared_data / QIN_SEG, inputs["QIN01"])
    stored_label = np.asarray(nib.load(str(Path(settings.MEDIA_ROOT) / label.nifti_path)).dataobj)
    assert label.label_of == qin.series.get(kind="original") and label.source_format == "seg"
    assert np.array_equal(stored_label, expected) and stored_label.any()
    # Yale mask kept on its T2 grid.
    yale_case = Case.objects.get(cohort=cohort, case_code="YALE01")
    mask = yale_case.series.get(kind="label")
    stored_mask = np.asarray(nib.load(str(Path(settings.MEDIA_ROOT) / mask.nifti_path)).dataobj)
    assert np.array_equal(
        stored_mask,
        (np.asarray(nib.load(str(shared_data / YALE_MASK)).dataobj) > 0.5).astype(np.uint8),
    )


def test_command_imports_real_cohort_with_exact_geometry(
    real_cohort,
    shared_data: Path,
    tmp_path: Path,
    coordinator,
    client_for,  # noqa: ANN001
) -> None:
    folder = real_cohort()
    out = io.StringIO()
    call_command("cohort_import", str(folder), "--cohort", "Real", stdout=out)
    text = out.getvalue()
    assert "3 accepted, 0 rejected" in text and "row 2: PX01: accepted" in text
    cohort = Cohort.objects.get(name="Real")
    assert set(cohort.cases.values_list("case_code", flat=True)) == {"PX01", "QIN01", "YALE01"}
    px = cohort.cases.get(case_code="PX01")
    assert (px.age, px.reference_pirads, px.cspca, px.isup_grade, px.gleason, px.lesion_side) == (
        63,
        4,
        True,
        2,
        "3+4",
        "left",
    )
    assert not cohort.synthetic and not px.synthetic
    _check_geometry(client_for(coordinator), shared_data, tmp_path, cohort)

    # The same input again: nothing new.
    counts = (Case.objects.count(), ImageSeries.objects.count(), DicomInstance.objects.count())
    out = io.StringIO()
    call_command("cohort_import", str(folder), "--cohort", "Real", stdout=out)
    assert "0 accepted, 0 rejected, 3 skipped" in out.getvalue()
    assert (
        Case.objects.count(),
        ImageSeries.objects.count(),
        DicomInstance.objects.count(),
    ) == counts


def test_web_form_imports_real_cohort(
    real_cohort,
    shared_data: Path,
    tmp_path: Path,
    coordinator,
    client_for,  # noqa: ANN001
) -> None:
    archive = zip_folder(real_cohort("webcohort"), tmp_path / "webcohort.zip")
    client = client_for(coordinator)
    with archive.open("rb") as fh:
        response = client.post(reverse("registration:cohort-upload"), {"archive": fh})
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("registration:import-detail", args=[run.pk])
    assert (run.status, run.accepted, run.rejected) == ("done", 3, 0)
    page = client.get(response["Location"]).content.decode()
    assert page.count("accepted") >= 3 and "QIN01" in page
    # No cohort name given: a neutral one, never the upload's file name.
    cohort = Cohort.objects.get(name=f"Cohort of import {run.pk}")
    assert "webcohort" not in run.source_name and "webcohort" not in cohort.description
    assert run.cohort == cohort and run.started_by == coordinator
    _check_geometry(client, shared_data, tmp_path, cohort)

    cohort_page = client.get(
        reverse("registration:cohort-detail", args=[cohort.pk])
    ).content.decode()
    for series in ImageSeries.objects.filter(case__cohort=cohort):
        assert reverse("registration:series-thumbnail", args=[series.pk]) in cohort_page
        png = client.get(reverse("registration:series-thumbnail", args=[series.pk]))
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert "384×384×19" in cohort_page
    case = cohort.cases.get(case_code="PX01")
    case_page = client.get(reverse("registration:case-detail", args=[case.pk])).content.decode()
    assert "0.500 × 0.500 × 3.000 mm" in case_page
    # Re-uploading the same zip is a no-op.
    with archive.open("rb") as fh:
        client.post(
            reverse("registration:cohort-upload"), {"archive": fh, "cohort_name": cohort.name}
        )
    assert ImportRun.objects.latest("pk").skipped == 3 and Case.objects.count() == 3


def _input_identifiers(folder: Path) -> set[bytes]:
    found: set[str] = set()
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for elem in ds.iterall():
            if elem.value in (None, "") or elem.VR == "SQ":
                continue
            value = str(elem.value)
            if (
                elem.VR == "UI"
                and not value.startswith("1.2.840.10008.")
                or elem.VR in ("DA", "DT", "PN")
                or elem.keyword
                in (
                    "PatientID",
                    "AccessionNumber",
                    "StudyDescription",
                    "InstitutionName",
                    "StationName",
                    "DeviceSerialNumber",
                    "RequestedProcedureDescription",
                    "PerformedProcedureStepDescription",
                    "ReasonForStudy",
                    "OtherPatientIDs",
                )
            ):
                found.add(value)
        found.update(
            str(v)
            for v in ds.file_meta.values()
            if getattr(v, "VR", "") == "UI" and not str(v.value).startswith("1.2.840.10008.")
            for v in [v]
        )
    found.discard("")
    return {v.encode() for v in found if len(v) >= 4}


def test_dicom_only_prostatex_carries_no_identifier(
    shared_data: Path,
    tmp_path: Path,
    coordinator,
    client_for,  # noqa: ANN001
) -> None:
    from django.conf import settings
    from django.core import serializers

    folder = tmp_path / "px-study"
    copy_in(shared_data, PROSTATEX_T2, folder, "series-a")
    copy_in(shared_data, PROSTATEX_ADC, folder, "series-b")
    identifiers = _input_identifiers(folder)
    assert b"ProstateX-0000" in identifiers and b"20110707" in identifiers and len(identifiers) > 40
    client = client_for(coordinator)
    with zip_folder(folder, tmp_path / "study.zip").open("rb") as fh:
        client.post(
            reverse("registration:cohort-upload"), {"archive": fh, "cohort_name": "DicomOnly"}
        )
    run = ImportRun.objects.get()
    assert run.accepted == 1, run.report
    case_report = run.report["cases"][0]
    # Only the vocabulary words of the description reach the report (clean descriptors).
    assert any("ep2d_diff_tra_ADC" in n and "skipped" in n for n in case_report["notes"])
    case = Case.objects.get()
    assert case.reference_pirads is None and case.case_code.startswith("D")
    t2 = case.series.get()
    assert t2.shape == [384, 384, 19] and t2.series_description == "t2_tse_tra"

    blobs: dict[str, bytes] = {}
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            blobs[str(path)] = gzip.decompress(data) if path.name.endswith(".gz") else data
    for n, path in enumerate(_served_series(client, t2, tmp_path)):
        blobs[f"served-{n}"] = path.read_bytes()
    blobs["manifest"] = client.get(reverse("registration:series-manifest", args=[t2.pk])).content
    blobs["api-series"] = client.get("/api/series/").content
    blobs["api-cases"] = client.get("/api/cases/").content
    for name in ("cohort-detail", "case-detail"):
        pk = case.cohort_id if name == "cohort-detail" else case.pk
        blobs[name] = client.get(reverse(f"registration:{name}", args=[pk])).content
    blobs["import-page"] = client.get(reverse("registration:import-detail", args=[run.pk])).content
    blobs["db"] = serializers.serialize(
        "json",
        [
            *Case.objects.all(),
            *ImageSeries.objects.all(),
            *DicomInstance.objects.all(),
            *ImportRun.objects.all(),
            *Cohort.objects.all(),
        ],
    ).encode()
    assert len(blobs) > 19 + 19
    leaks = {name: [i for i in identifiers if i in data] for name, data in blobs.items()}
    assert {k: v for k, v in leaks.items() if v} == {}
    served = pydicom.dcmread(io.BytesIO(blobs["served-0"]))
    assert served.PatientName == case.case_code and served.PatientIdentityRemoved == "YES"
    assert not any(e.tag.is_private for e in served.iterall())


def test_series_manifest_lists_cornerstone_image_ids(
    shared_data: Path,
    tmp_path: Path,
    coordinator,
    client_for,  # noqa: ANN001
) -> None:
    from registration.importing.run import cohort_import

    from .conftest import manifest_write

    folder = tmp_path / "one"
    copy_in(shared_data, PROSTATEX_T2, folder, "t2")
    manifest_write(folder, [{"case_code": "PX01", "reference_pirads": "3", "mr_t2": "t2"}])
    cohort_import(path=folder, cohort_name="M")
    series = ImageSeries.objects.get(case__case_code="PX01")
    data = (
        client_for(coordinator)
        .get(reverse("registration:series-manifest", args=[series.pk]))
        .json()
    )
    assert data["series_uid"] == series.series_instance_uid and len(data["image_ids"]) == 19
    uids = [i.sop_instance_uid for i in series.instances.order_by("instance_number")]
    for image_id, uid in zip(data["image_ids"], uids):
        assert image_id.startswith("wadouri:http://testserver/wado?requestType=WADO&")
        assert f"objectUID={uid}" in image_id and "contentType=application%2Fdicom" in image_id
    json.dumps(data)


@pytest.mark.slow
def test_demo_cohort_imports_and_is_marked_synthetic(
    tmp_path: Path, coordinator, client_for
) -> None:  # noqa: ANN001
    from inference.simulate import write_demo_cohort
    from registration.importing.run import cohort_import

    manifest = write_demo_cohort(tmp_path / "demo", n_cases=1, seed=3)
    run = cohort_import(path=manifest.parent, cohort_name="Demo")
    assert run.accepted == 1, run.report
    cohort = Cohort.objects.get(name="Demo")
    case = cohort.cases.get()
    assert cohort.synthetic and case.synthetic
    kinds = sorted(case.series.values_list("modality", "kind"))
    assert kinds == sorted(
        [("MR_T2", k) for k in ("original", "label", "landmarks")]
        + [("US", k) for k in ("original", "label", "landmarks")]
    )
    us = case.series.get(modality="US", kind="original")
    assert us.shape == [81, 118, 88]
    assert case.series.get(modality="US", kind="landmarks").label_of == us
    page = (
        client_for(coordinator)
        .get(reverse("registration:cohort-detail", args=[cohort.pk]))
        .content.decode()
    )
    assert "synthetic" in page
