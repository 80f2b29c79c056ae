"""Reads for cohorts, cases, series and DICOM instances."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet

from registration.models import Case, Cohort, DicomInstance, ImageSeries, ImportRun


def cohort_list() -> QuerySet[Cohort]:
    return Cohort.objects.annotate(
        case_count=Count("cases", distinct=True),
        synthetic_case_count=Count("cases", filter=Q(cases__synthetic=True), distinct=True),
    ).order_by("name")


def cohort_get(*, pk: int) -> Cohort:
    return Cohort.objects.get(pk=pk)


def cohort_cases(*, cohort: Cohort) -> QuerySet[Case]:
    """Cases with their series (and series counts) for the cohort page."""
    return (
        Case.objects.filter(cohort=cohort)
        .prefetch_related(
            Prefetch(
                "series",
                queryset=ImageSeries.objects.annotate(instance_count=Count("instances")).order_by(
                    "modality", "kind", "pk"
                ),
            )
        )
        .order_by("case_code")
    )


def case_get(*, pk: int) -> Case:
    return Case.objects.select_related("cohort").get(pk=pk)


def case_series(*, case: Case) -> QuerySet[ImageSeries]:
    return (
        ImageSeries.objects.filter(case=case)
        .annotate(instance_count=Count("instances"))
        .select_related("label_of")
        .order_by("modality", "kind", "pk")
    )


def series_get(*, pk: int) -> ImageSeries:
    return ImageSeries.objects.select_related("case", "case__cohort").get(pk=pk)


def series_instances(*, series: ImageSeries) -> QuerySet[DicomInstance]:
    return DicomInstance.objects.filter(series=series).order_by("instance_number")


def instance_for_wado(*, study_uid: str, series_uid: str, object_uid: str) -> DicomInstance:
    """The instance named by a WADO-URI triple; DoesNotExist unless all three UIDs agree."""
    return DicomInstance.objects.select_related("series").get(
        sop_instance_uid=object_uid,
        series__series_instance_uid=series_uid,
        series__study_instance_uid=study_uid,
    )


def import_run_list(*, cohort: Cohort | None = None) -> QuerySet[ImportRun]:
    # The report can be large (one entry per case): lists never load it.
    qs = ImportRun.objects.select_related("cohort", "started_by").defer("report")
    return qs.filter(cohort=cohort) if cohort is not None else qs


def import_run_get(*, pk: int) -> ImportRun:
    return ImportRun.objects.select_related("cohort", "started_by").get(pk=pk)


def import_report_page(*, run: ImportRun, page: int) -> dict[str, Any]:
    """One page of an import report's cases (``MRITRUS_REPORT_PAGE_SIZE`` each), with the
    run-level notes; ``page`` is 1-based and clamped to the pages there are."""
    size = max(1, int(settings.MRITRUS_REPORT_PAGE_SIZE))
    cases = list((run.report or {}).get("cases", []))
    pages = max(1, -(-len(cases) // size))
    page = min(max(1, page), pages)
    return {
        "cohort": (run.report or {}).get("cohort", ""),
        "notes": list((run.report or {}).get("notes", [])),
        "cases": cases[(page - 1) * size : page * size],
        "page": page,
        "pages": pages,
        "case_count": len(cases),
    }


def import_run_by_upload_key(*, user: Any, key: str) -> ImportRun | None:
    """The newest import this user started from an upload tagged ``key`` (None if none yet)."""
    if not key:
        return None
    return (
        ImportRun.objects.filter(started_by=user, report__upload_key=key[:64])
        .order_by("-started_at")
        .first()
    )
