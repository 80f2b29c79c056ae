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
from django.db.models import Count, Min, QuerySet

from registration.models import Cohort, DicomInstance, ImageSeries

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


def _series_queryset(
    *, scope: Scope, study_uid: str | None = None, series_uid: str | None = None
) -> QuerySet[ImageSeries]:
    qs = ImageSeries.objects.all()
    if scope.cohort_id is not None:
        qs = qs.filter(case__cohort_id=scope.cohort_id)
    if study_uid is not None:
        qs = qs.filter(study_instance_uid=study_uid)
    if series_uid is not None:
        qs = qs.filter(series_instance_uid=series_uid)
    return qs


def series_records(
    *, scope: Scope, study_uid: str | None = None, series_uid: str | None = None
) -> list[dict[str, Any]]:
    """One record per series with instances, with its study's attributes, in a stable order."""
    rows = (
        _series_queryset(scope=scope, study_uid=study_uid, series_uid=series_uid)
        .annotate(n=Count("instances"), first_path=Min("instances__path"))
        .filter(n__gt=0)
        .values(
            "pk",
            "study_instance_uid",
            "series_instance_uid",
            "series_description",
            "case__case_code",
            "n",
            "first_path",
        )
        .order_by("case__case_code", "study_instance_uid", "pk")
    )
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
                "_sop_class_uid": header.sop_class_uid,
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
    by_pk = {}
    for record in series_records(scope=scope, study_uid=study_uid, series_uid=series_uid):
        by_pk[record["SeriesInstanceUID"]] = record
    rows = (
        DicomInstance.objects.filter(series__series_instance_uid__in=list(by_pk))
        .values("sop_instance_uid", "instance_number", "series__series_instance_uid")
        .order_by("series__case__case_code", "series__pk", "instance_number")
    )
    out = []
    for row in rows:
        series = by_pk[row["series__series_instance_uid"]]
        header: SeriesHeader = series["_header"]
        out.append(
            {
                **series,
                "SOPClassUID": header.sop_class_uid,
                "SOPInstanceUID": row["sop_instance_uid"],
                "InstanceNumber": row["instance_number"],
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
    return list(qs.select_related("series").order_by("series__pk", "instance_number"))
