"""STOW-RS: the web upload's import, de-identification and per-case atomicity; the standard response."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.test import Client

from registration.models import Case, DicomInstance, ImportRun
from tests.dicomweb.conftest import t2_files

pytestmark = pytest.mark.django_db

BOUNDARY = "test-boundary-1234"
CT = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def body_of(blobs: list[bytes], part_type: str = "application/dicom") -> bytes:
    out = b""
    for blob in blobs:
        out += f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode() + blob + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def store(client: Client, url: str, blobs: list[bytes], **extra) -> dict:  # noqa: ANN003
    response = client.post(url, data=body_of(blobs), content_type=CT, **extra)
    return {
        "status": response.status_code,
        "json": response.json() if "json" in response["Content-Type"] else {},
        "r": response,
    }


def test_store_imports_one_deidentified_case(
    cohort, coordinator, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    files = t2_files(tmp_path / "in")
    sent = [pydicom.dcmread(f) for f in files]
    c = client_for(coordinator)
    result = store(c, f"/dicomweb/cohorts/{cohort.pk}/studies", [f.read_bytes() for f in files])
    assert result["status"] == 200, result["r"].content
    refs = result["json"]["00081199"]["Value"]
    assert len(refs) == 3 and "00081198" not in result["json"]
    stored_uids = {r["00081155"]["Value"][0] for r in refs}
    assert stored_uids.isdisjoint({str(d.SOPInstanceUID) for d in sent})  # remapped
    assert all(r["00081196"]["Value"] == [0xB000] for r in refs)  # coerced by de-identification
    case = Case.objects.get(cohort=cohort, case_code__startswith="D")
    assert (
        set(
            DicomInstance.objects.filter(series__case=case).values_list(
                "sop_instance_uid", flat=True
            )
        )
        == stored_uids
    )
    # what is served back carries the pseudonym, never the sent identity
    url = refs[0]["00081190"]["Value"][0].replace("http://testserver", "")
    served = pydicom.dcmread(io.BytesIO(c.get(url, HTTP_ACCEPT="application/dicom").content))
    assert served.PatientID == case.case_code and "Simulated" not in str(served.PatientName)
    assert str(served.StudyInstanceUID) != str(sent[0].StudyInstanceUID)
    assert "/imports/" in result["r"]["Warning"]
    # the same instances again: nothing new, the same answer (idempotent like a re-upload)
    again = store(c, f"/dicomweb/cohorts/{cohort.pk}/studies", [f.read_bytes() for f in files])
    assert again["status"] == 200
    assert {r["00081155"]["Value"][0] for r in again["json"]["00081199"]["Value"]} == stored_uids
    assert Case.objects.filter(cohort=cohort).count() == 3


def test_failures_are_reported_per_instance(
    cohort, coordinator, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    url = f"/dicomweb/cohorts/{cohort.pk}/studies"
    good = [f.read_bytes() for f in t2_files(tmp_path / "a", patient="SIM-A")]
    # a compressed transfer syntax is refused per instance (nothing is transcoded)
    ds = pydicom.dcmread(io.BytesIO(good[0]))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not really a JPEG 2000 frame"])
    ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    result = store(c, url, [*good, buf.getvalue(), b"not dicom at all"])
    assert result["status"] == 202
    failed = result["json"]["00081198"]["Value"]
    assert sorted(f["00081197"]["Value"][0] for f in failed) == [0xC000, 0xC122]
    assert len(result["json"]["00081199"]["Value"]) == 3
    assert "not stored: send it uncompressed" in result["r"]["Warning"]


def test_a_rejected_case_stores_nothing(cohort, coordinator, client_for, tmp_path: Path) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    files = t2_files(tmp_path / "b", patient="SIM-B")
    blobs = []
    for f in files:  # not a T2 by its description and timing: the import rejects the case
        ds = pydicom.dcmread(f)
        ds.SeriesDescription = "localizer"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        blobs.append(buf.getvalue())
    before = DicomInstance.objects.count()
    result = store(c, f"/dicomweb/cohorts/{cohort.pk}/studies", blobs)
    assert result["status"] == 409
    assert all(f["00081197"]["Value"] == [0x0110] for f in result["json"]["00081198"]["Value"])
    assert "no T2 series" in result["r"]["Warning"]
    assert DicomInstance.objects.count() == before
    assert ImportRun.objects.get().rejected == 1


def test_study_url_and_request_errors(
    cohort, coordinator, junior, client_for, tmp_path: Path
) -> None:  # noqa: ANN001
    c = client_for(coordinator)
    blobs = [f.read_bytes() for f in t2_files(tmp_path / "c", patient="SIM-C")]
    wrong_study = store(c, f"/dicomweb/cohorts/{cohort.pk}/studies/1.2.3", blobs)
    assert wrong_study["status"] == 409
    assert {f["00081197"]["Value"][0] for f in wrong_study["json"]["00081198"]["Value"]} == {0xA900}
    assert store(c, "/dicomweb/studies", blobs)["status"] == 400  # which cohort?
    assert (
        c.post(
            f"/dicomweb/cohorts/{cohort.pk}/studies", data=b"x", content_type="application/zip"
        ).status_code
        == 415
    )
    assert (
        store(client_for(junior), f"/dicomweb/cohorts/{cohort.pk}/studies", blobs)["status"] == 403
    )
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(coordinator)
    assert store(csrf, f"/dicomweb/cohorts/{cohort.pk}/studies", blobs)["status"] == 403
    assert not Case.objects.filter(case_code__startswith="D").exists()


def test_real_prostatex_t2_and_adc(cohort, coordinator, client_for, shared_data: Path) -> None:  # noqa: ANN001
    """Real ProstateX T2 + ADC of one patient: the T2 is stored, the ADC refused with its reason."""
    t2 = sorted((shared_data / "prostatex-0000-dicom/4.000000-t2tsetra-00702").glob("*.dcm"))
    adc = sorted(
        (shared_data / "prostatex-0000-dicom/7.000000-ep2ddifftraDYNDISTADC-48780").glob("*.dcm")
    )
    result = store(
        client_for(coordinator),
        f"/dicomweb/cohorts/{cohort.pk}/studies",
        [p.read_bytes() for p in t2 + adc],
    )
    assert result["status"] == 202, result["r"].content
    assert len(result["json"]["00081199"]["Value"]) == len(t2)
    assert len(result["json"]["00081198"]["Value"]) == len(adc)
    assert "was not stored" in result["r"]["Warning"]
