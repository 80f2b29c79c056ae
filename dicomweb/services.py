"""STOW-RS (PS3.18 §10.5): store instances into a cohort through the cohort import.

The received instances become a DICOM-only import input (one folder), so they get exactly what
a web upload gets: series grouped by UID and by PatientID into cases, the T2 (and US) chosen by
their attributes, PS3.15 de-identification with remapped UIDs, and each case stored whole or not
at all. The response maps every received instance to what happened to it: stored (with the
de-identified UID it is now served under) or failed, with a reason code and a Warning header.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pydicom
from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence

from registration.dicom import deid
from registration.importing.dicom_only import dicom_patient_code
from registration.importing.run import cohort_import
from registration.models import Case, Cohort, DicomInstance, ImportRun
from registration.storage import tmp_folder

from .media import DICOM, MultipartError, multipart_split

# Failure reasons (PS3.4 Annex GG / PS3.18 Table 10.5.3-2).
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
STUDY_MISMATCH = 0xA900
# Warning reason of every stored instance: de-identification coerces UIDs and identifying elements.
COERCED = 0xB000
UNCOMPRESSED = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
}
CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class StowRequestError(ValueError):
    """The request as a whole cannot be processed (400 / 413 / 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Received:
    sop_class: str = ""
    sop_uid: str = ""
    patient: str = ""
    series_uid: str = ""
    failure: int = 0
    reason: str = ""
    stored_uid: str = ""
    stored_study: str = ""
    stored_series: str = ""


@dataclass
class StowResult:
    status: int
    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    import_run: ImportRun | None = None


def body_spool(*, stream: Readable, into: Path, limit: int) -> Path:
    """Copy the request body to a file, refusing more than ``limit`` bytes (413)."""
    target = into / "body.bin"
    total = 0
    with target.open("wb") as out:
        while chunk := stream.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise StowRequestError(f"the request is larger than {limit} bytes", status=413)
            out.write(chunk)
    return target


def _part_read(path: Path, item: Received, study_uid: str | None) -> None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        item.failure, item.reason = CANNOT_UNDERSTAND, f"not a DICOM Part 10 file ({exc})"
        return
    item.sop_class = str(ds.get("SOPClassUID", ""))
    item.sop_uid = str(ds.get("SOPInstanceUID", ""))
    item.patient = str(ds.get("PatientID", "") or "")
    item.series_uid = str(ds.get("SeriesInstanceUID", ""))
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", ""))
    if syntax not in UNCOMPRESSED:
        item.failure = TRANSFER_SYNTAX_NOT_SUPPORTED
        item.reason = f"transfer syntax {syntax or '(none)'} is not stored: send it uncompressed"
    elif not item.sop_uid or not item.series_uid:
        item.failure, item.reason = CANNOT_UNDERSTAND, "missing SOPInstanceUID or SeriesInstanceUID"
    elif study_uid is not None and str(ds.get("StudyInstanceUID", "")) != study_uid:
        item.failure = STUDY_MISMATCH
        item.reason = f"StudyInstanceUID is not {study_uid}, the study of the request URL"


def _outcomes(items: list[Received], *, cohort: Cohort, run: ImportRun) -> None:
    """Fill in what the import did with each received instance."""
    salt = str(settings.MRITRUS_DEID_SALT)
    by_code = {c["case_code"]: c for c in run.report.get("cases", [])}
    for item in items:
        if item.failure:
            continue
        code = dicom_patient_code(patient=item.patient, salt=salt)
        entry = by_code.get(code)
        case = Case.objects.filter(cohort=cohort, case_code=code).first()
        if entry is None or case is None or entry["status"] == "rejected":
            reasons = (entry or {}).get("reasons") or [run.error or "the import refused the case"]
            item.failure, item.reason = PROCESSING_FAILURE, "; ".join(reasons)
            continue
        stored = (
            DicomInstance.objects.filter(
                series__case=case,
                sop_instance_uid=deid.uid_remap(item.sop_uid, key=case.deid_key, salt=salt),
            )
            .select_related("series")
            .first()
        )
        if stored is None:
            item.failure = PROCESSING_FAILURE
            item.reason = (
                f"case {code}: series {item.series_uid} was not stored (the import keeps one T2 "
                "and one US series per patient; see the import report)"
            )
            continue
        item.stored_uid = stored.sop_instance_uid
        item.stored_study = stored.series.study_instance_uid
        item.stored_series = stored.series.series_instance_uid


def _response(items: list[Received], *, base_url: str) -> dict[str, Any]:
    ds = Dataset()
    referenced, failed = [], []
    for item in items:
        ref = Dataset()
        ref.ReferencedSOPClassUID = item.sop_class
        if item.failure:
            # The client's own UID: nothing was stored under another one.
            ref.ReferencedSOPInstanceUID = item.sop_uid
            ref.FailureReason = item.failure
            failed.append(ref)
        else:
            ref.ReferencedSOPInstanceUID = item.stored_uid
            ref.RetrieveURL = (
                f"{base_url}/studies/{item.stored_study}/series/{item.stored_series}"
                f"/instances/{item.stored_uid}"
            )
            ref.WarningReason = COERCED
            referenced.append(ref)
    studies = {i.stored_study for i in items if not i.failure}
    if len(studies) == 1:
        ds.RetrieveURL = f"{base_url}/studies/{studies.pop()}"
    if failed:
        ds.FailedSOPSequence = DicomSequence(failed)
    if referenced:
        ds.ReferencedSOPSequence = DicomSequence(referenced)
    return ds.to_json_dict()


def stow_store(
    *,
    stream: Readable,
    content_type: str,
    boundary: str,
    part_type: str,
    cohort: Cohort,
    user: Any,
    base_url: str,
    study_uid: str | None = None,
) -> StowResult:
    """Store a multipart/related application/dicom request body into ``cohort``."""
    if content_type != "multipart/related" or part_type not in ("", DICOM):
        raise StowRequestError(
            'STOW-RS here takes multipart/related; type="application/dicom" (Part 10 files); '
            f"got {content_type} {part_type}".strip(),
            status=415,
        )
    limit = int(settings.MRITRUS_IMPORT_MAX_BYTES)
    with tmp_folder("stow") as tmp:
        body = body_spool(stream=stream, into=tmp, limit=limit)
        folder = tmp / "instances"
        folder.mkdir()
        items: list[Received] = []
        try:
            for n, (headers, data) in enumerate(multipart_split(body, boundary=boundary)):
                item = Received()
                items.append(item)
                kind = headers.get("content-type", DICOM).split(";")[0].strip().lower()
                if kind != DICOM:
                    item.failure, item.reason = CANNOT_UNDERSTAND, f"part of type {kind}"
                    continue
                path = folder / f"{n:06d}.dcm"
                path.write_bytes(data)
                _part_read(path, item, study_uid)
                if item.failure:
                    path.unlink()
        except MultipartError as exc:
            raise StowRequestError(str(exc)) from exc
        body.unlink()
        if not items:
            raise StowRequestError("the request holds no instance")
        run = None
        if any(not i.failure for i in items):
            run = cohort_import(
                path=folder,
                cohort_name=cohort.name,
                user=user,
                source_name=f"STOW-RS: {sum(not i.failure for i in items)} instance(s)",
            )
            _outcomes(items, cohort=cohort, run=run)
        shutil.rmtree(folder, ignore_errors=True)
    stored = sum(not i.failure for i in items)
    status = 200 if stored == len(items) else (202 if stored else 409)
    warnings = list(dict.fromkeys(i.reason for i in items if i.failure))
    if run is not None:
        warnings.append(f"import report: /imports/{run.pk}/")
    return StowResult(
        status=status, body=_response(items, base_url=base_url), warnings=warnings, import_run=run
    )
