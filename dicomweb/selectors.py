"""Reads for DICOMweb: the studies, series and instances a caller may see, as QIDO records.

A study is a StudyInstanceUID of the stored series (a case's MR and TRUS are two studies); the
patient is the case, whose pseudonymous code is PatientID and PatientName. Everything served is
what import stored, already de-identified. Attributes that are not columns (dates, SOP class,
matrix size) come from the first stored instance of each series, read once per process: stored
files never change (a replaced series gets a new folder and new UIDs).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.db import connection

from registration.models import Case, Cohort, DicomInstance, ImageSeries

# What QIDO can match on at each level (the attributes the records hold).
STUDY_KEYS = {
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "PatientID",
    "PatientName",
    "ModalitiesInStudy",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
}
SERIES_KEYS = STUDY_KEYS | {"SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription"}
INSTANCE_KEYS = SERIES_KEYS | {"SOPInstanceUID", "SOPClassUID", "InstanceNumber"}


@dataclass(frozen=True)
class Scope:
    """All cohorts (``/dicomweb/``) or one (``/dicomweb/cohorts/<pk>/``)."""

    cohort_id: int | None = None


@dataclass(frozen=True)
class SeriesHeader:
    study_date: str
    study_time: str
    series_number: int
    sop_class_uid: str
    modality: str
    rows: int
    columns: int
    bits_allocated: int


def cohort_exists(*, pk: int) -> bool:
    return Cohort.objects.filter(pk=pk).exists()


def media_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


@functools.lru_cache(maxsize=8192)
def _header(path: str) -> SeriesHeader:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return SeriesHeader(
        study_date=str(ds.get("StudyDate", "") or ""),
        study_time=str(ds.get("StudyTime", "") or ""),
        series_number=int(ds.get("SeriesNumber", 0) or 0),
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        modality=str(ds.get("Modality", "")),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        bits_allocated=int(ds.get("BitsAllocated", 0) or 0),
    )


def series_header(*, first_path: str) -> SeriesHeader:
    return _header(str(media_path(first_path)))


def _series_rows(
    *, scope: Scope, study_uid: str | None, series_uid: str | None
) -> list[dict[str, Any]]:
    """Series with instances, their case code, instance count and one instance's file.

    One hand-written query: QIDO answers it on every search, and composing it through the ORM
    cost more than running it.
    """
    series_t = ImageSeries._meta.db_table
    case_t = Case._meta.db_table
    inst_t = DicomInstance._meta.db_table
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if scope.cohort_id is not None:
        where.append("c.cohort_id = %s")
        params.append(scope.cohort_id)
    if study_uid is not None:
        where.append("s.study_instance_uid = %s")
        params.append(study_uid)
    if series_uid is not None:
        where.append("s.series_instance_uid = %s")
        params.append(series_uid)
    # Only table names from the models and fixed clauses are formatted in; values are parameters.
    sql = (
        "SELECT s.id, s.study_instance_uid, s.series_instance_uid, s.series_description,"  # noqa: S608
        " c.case_code, COUNT(i.id), MIN(i.path)"
        f" FROM {series_t} s JOIN {case_t} c ON c.id = s.case_id"
        f" JOIN {inst_t} i ON i.series_id = s.id"
        f" WHERE {' AND '.join(where)}"
        " GROUP BY s.id, s.study_instance_uid, s.series_instance_uid, s.series_description,"
        " c.case_code ORDER BY c.case_code, s.study_instance_uid, s.id"
    )
    keys = ["pk", "study_instance_uid", "series_instance_uid", "series_description"]
    keys += ["case__case_code", "n", "first_path"]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(keys, row)) for row in cursor.fetchall()]


def series_records(
    *, scope: Scope, study_uid: str | None = None, series_uid: str | None = None
) -> list[dict[str, Any]]:
    """One record per series with instances, with its study's attributes, in a stable order."""
    rows = _series_rows(scope=scope, study_uid=study_uid, series_uid=series_uid)
    out = []
    for row in rows:
        header = series_header(first_path=row["first_path"])
        code = row["case__case_code"]
        out.append(
            {
                "SpecificCharacterSet": "ISO_IR 192",
                "StudyInstanceUID": row["study_instance_uid"],
                "StudyDate": header.study_date,
                "StudyTime": header.study_time,
                "AccessionNumber": "",
                "ReferringPhysicianName": "",
                "PatientID": code,
                "PatientName": code,
                "PatientBirthDate": "",
                "PatientSex": "",
                "StudyID": "",
                "StudyDescription": "",
                "SeriesInstanceUID": row["series_instance_uid"],
                "SeriesDescription": row["series_description"],
                "SeriesNumber": header.series_number,
                "SeriesDate": header.study_date,
                "Modality": header.modality,
                "NumberOfSeriesRelatedInstances": row["n"],
                "InstanceAvailability": "ONLINE",
                "_pk": row["pk"],
                "_header": header,
            }
        )
    return out


def study_records(*, scope: Scope, study_uid: str | None = None) -> list[dict[str, Any]]:
    """One record per study: the series records grouped by StudyInstanceUID."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in series_records(scope=scope, study_uid=study_uid):
        groups[record["StudyInstanceUID"]].append(record)
    out = []
    for uid, members in groups.items():
        first = members[0]
        study = {
            k: first[k]
            for k in (
                "SpecificCharacterSet",
                "StudyInstanceUID",
                "StudyDate",
                "StudyTime",
                "AccessionNumber",
                "ReferringPhysicianName",
                "PatientID",
                "PatientName",
                "PatientBirthDate",
                "PatientSex",
                "StudyID",
                "StudyDescription",
                "InstanceAvailability",
            )
        }
        study["StudyInstanceUID"] = uid
        study["ModalitiesInStudy"] = sorted({m["Modality"] for m in members if m["Modality"]})
        study["NumberOfStudyRelatedSeries"] = len(members)
        study["NumberOfStudyRelatedInstances"] = sum(
            m["NumberOfSeriesRelatedInstances"] for m in members
        )
        out.append(study)
    return out


def instance_records(
    *, scope: Scope, study_uid: str | None = None, series_uid: str | None = None
) -> list[dict[str, Any]]:
    """One record per instance, with its series' and study's attributes."""
    series_list = series_records(scope=scope, study_uid=study_uid, series_uid=series_uid)
    by_pk = {record["_pk"]: record for record in series_list}
    order = {pk: n for n, pk in enumerate(by_pk)}
    rows = sorted(
        DicomInstance.objects.filter(series_id__in=list(by_pk)).values_list(
            "series_id", "sop_instance_uid", "instance_number"
        ),
        key=lambda row: (order[row[0]], row[2]),
    )
    out = []
    for series_pk, sop_uid, number in rows:
        series = by_pk[series_pk]
        header: SeriesHeader = series["_header"]
        out.append(
            {
                **series,
                "SOPClassUID": header.sop_class_uid,
                "SOPInstanceUID": sop_uid,
                "InstanceNumber": number,
                "Rows": header.rows,
                "Columns": header.columns,
                "BitsAllocated": header.bits_allocated,
                "NumberOfFrames": 1,
            }
        )
    return out


def instances_of(
    *,
    scope: Scope,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> list[DicomInstance]:
    """Stored instances under a study (and series, and instance), in series and slice order."""
    qs = DicomInstance.objects.filter(series__study_instance_uid=study_uid)
    if scope.cohort_id is not None:
        qs = qs.filter(series__case__cohort_id=scope.cohort_id)
    if series_uid is not None:
        qs = qs.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        qs = qs.filter(sop_instance_uid=sop_uid)
    # only(): the series' JSON geometry columns would be decoded for every instance otherwise.
    fields = ("path", "sha256", "sop_instance_uid", "instance_number", "series_id")
    series = ("series__study_instance_uid", "series__series_instance_uid")
    return list(
        qs.select_related("series").only(*fields, *series).order_by("series__pk", "instance_number")
    )
