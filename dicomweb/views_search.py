"""QIDO-RS searches (PS3.18 §10.6) and STOW-RS stores (§10.5). Views parse, call, render."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from . import selectors
from .auth import dicomweb_view
from .common import root_url, scope_get, text, warning_header
from .media import (
    DICOM_JSON,
    MultipartError,
    NotAcceptable,
    content_type_boundary,
    negotiate_single,
)
from .query import QueryError, query_parse, records_filter, records_json
from .services import StowRequestError, stow_store

LEVEL_KEYS = {
    "study": selectors.STUDY_KEYS,
    "series": selectors.SERIES_KEYS,
    "instance": selectors.INSTANCE_KEYS,
}


def _dicom_json(payload: Any, *, status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(payload, separators=(",", ":")), status=status, content_type=DICOM_JSON
    )


def _search(
    request: HttpRequest,
    *,
    level: str,
    cohort: int | None,
    study: str | None = None,
    series: str | None = None,
) -> HttpResponse:
    scope = scope_get(cohort)
    try:
        negotiate_single(request.META.get("HTTP_ACCEPT", ""), types=(DICOM_JSON,))
        params = [(k, v) for k, values in request.GET.lists() for v in values]
        query = query_parse(params, supported=LEVEL_KEYS[level])
    except NotAcceptable as exc:
        return text(406, str(exc))
    except QueryError as exc:
        return text(400, str(exc))
    base = root_url(request, cohort)
    if level == "study":
        records = selectors.study_records(scope=scope, study_uid=study)
    elif level == "series":
        records = selectors.series_records(scope=scope, study_uid=study)
    else:
        records = selectors.instance_records(scope=scope, study_uid=study, series_uid=series)
    page, more = records_filter(records, query)
    for record in page:
        url = f"{base}/studies/{record['StudyInstanceUID']}"
        if level != "study":
            url += f"/series/{record['SeriesInstanceUID']}"
        if level == "instance":
            url += f"/instances/{record['SOPInstanceUID']}"
        record["RetrieveURL"] = url
    out = records_json(page, level=level, query=query)
    response = _dicom_json(out)
    warnings = list(query.warnings)
    if more:
        warnings.append("there are more results: ask again with a larger offset")
    if warnings:
        response["Warning"] = warning_header(warnings)
    return response


def _stow(request: HttpRequest, *, cohort: int | None, study: str | None) -> HttpResponse:
    if cohort is None:
        return text(
            400,
            "STOW-RS stores into a cohort: POST to /dicomweb/cohorts/<cohort id>/studies "
            "(cohort ids: /api/cohorts/)",
        )
    scope_get(cohort)
    from registration.models import Cohort

    try:
        media, part_type, boundary = content_type_boundary(request.META.get("CONTENT_TYPE", ""))
    except MultipartError as exc:
        return text(415, str(exc))
    environ = request.META
    # A chunked body has no Content-Length, and Django then reads nothing; servers that de-chunk
    # (gunicorn) say so with wsgi.input_terminated, and the raw input is read to its end.
    chunked = "CONTENT_LENGTH" not in environ or not environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"] if chunked and environ.get("wsgi.input_terminated") else request
    try:
        result = stow_store(
            stream=stream,
            content_type=media,
            boundary=boundary,
            part_type=part_type,
            cohort=Cohort.objects.get(pk=cohort),
            user=request.user,
            base_url=root_url(request, cohort),
            study_uid=study,
        )
    except StowRequestError as exc:
        return text(exc.status, str(exc))
    response = _dicom_json(result.body, status=result.status)
    if result.warnings:
        response["Warning"] = warning_header(result.warnings[:20])
    return response


@dicomweb_view(methods=("GET", "POST"))
def studies_view(request: HttpRequest, cohort: int | None = None) -> HttpResponse:
    """GET: search for studies. POST: store instances (STOW-RS) into the URL's cohort."""
    if request.method == "POST":
        return _stow(request, cohort=cohort, study=None)
    return _search(request, level="study", cohort=cohort)


@dicomweb_view(methods=("GET",))
def series_search_view(
    request: HttpRequest, cohort: int | None = None, study: str | None = None
) -> HttpResponse:
    return _search(request, level="series", cohort=cohort, study=study)


@dicomweb_view(methods=("GET",))
def instances_search_view(
    request: HttpRequest,
    cohort: int | None = None,
    study: str | None = None,
    series: str | None = None,
) -> HttpResponse:
    return _search(request, level="instance", cohort=cohort, study=study, series=series)


def study_store(request: HttpRequest, *, cohort: int | None, study: str) -> HttpResponse:
    """POST /studies/{study}: STOW-RS of instances that must belong to that study."""
    return _stow(request, cohort=cohort, study=study)
