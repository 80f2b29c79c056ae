"""PS3.15 basic-profile de-identification on the real ProstateX header."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pydicom
import pytest

from registration.dicom.deid import dataset_deidentify, date_offset_days, date_shift, uid_remap

from .conftest import PROSTATEX_T2


def _identifiers(ds: pydicom.Dataset) -> set[str]:
    """Every UID, date, name and ID-like value in the input (recursively)."""
    found: set[str] = set()
    for elem in ds.iterall():
        if elem.VR in ("UI", "DA", "DT", "PN", "LO", "SH") and elem.value not in (None, ""):
            value = str(elem.value)
            if elem.VR == "UI" and value.startswith("1.2.840.10008."):
                continue
            if elem.VR in ("LO", "SH") and elem.keyword not in (
                "PatientID",
                "AccessionNumber",
                "StudyDescription",
                "InstitutionName",
                "RequestedProcedureDescription",
                "PerformedProcedureStepDescription",
                "ReasonForStudy",
            ):
                continue
            found.add(value)
    return found


def test_prostatex_header_loses_every_identifier(shared_data: Path) -> None:
    path = sorted((shared_data / PROSTATEX_T2).glob("*.dcm"))[0]
    original = pydicom.dcmread(path)
    identifiers = _identifiers(original)
    assert "ProstateX-0000" in identifiers and "20110707" in identifiers
    ds = dataset_deidentify(pydicom.dcmread(path), pseudonym="CASE-7", key="k1", salt="s")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    leaked = [v for v in identifiers if v.encode() in data]
    assert leaked == []
    assert ds.PatientName == "CASE-7" and ds.PatientID == "CASE-7"
    assert ds.PatientIdentityRemoved == "YES"
    assert not any(elem.tag.is_private for elem in ds.iterall())
    assert "StudyDescription" not in ds and "InstitutionName" not in ds
    assert ds.SeriesDescription == "t2_tse_tra"  # clean-descriptors option keeps what the image is
    assert ds.StudyDate != original.StudyDate and len(ds.StudyDate) == 8


def test_uids_remapped_consistently(shared_data: Path) -> None:
    paths = sorted((shared_data / PROSTATEX_T2).glob("*.dcm"))[:2]
    a, b = (dataset_deidentify(pydicom.dcmread(p), pseudonym="X", key="k", salt="s") for p in paths)
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    other_case = dataset_deidentify(pydicom.dcmread(paths[0]), pseudonym="Y", key="k2", salt="s")
    assert other_case.StudyInstanceUID != a.StudyInstanceUID


def test_uid_remap_properties() -> None:
    uid = uid_remap("1.2.3.4", key="case", salt="secret")
    assert uid == uid_remap("1.2.3.4", key="case", salt="secret")
    assert uid != uid_remap("1.2.3.4", key="case", salt="other-secret")
    assert uid.startswith("2.25.") and len(uid) <= 64 and all(p.isdigit() for p in uid.split("."))


@pytest.mark.parametrize("key", ["a", "b", "c"])
def test_date_shift_is_per_case_and_keeps_intervals(key: str) -> None:
    days = date_offset_days(key=key, salt="s")
    assert 365 <= days < 365 + 3286
    first, second = date_shift("20110707", days=days), date_shift("20110710", days=days)
    assert first != "20110707"
    parse = lambda text: dt.datetime.strptime(text, "%Y%m%d").date()  # noqa: E731
    assert (parse(second) - parse(first)).days == 3
    assert (parse("20110707") - parse(first)).days == days
    assert date_shift("garbage", days=days) == ""
