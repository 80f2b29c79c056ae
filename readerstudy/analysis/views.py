"""The coordinator's analysis page, figure and export downloads, and the same through the API.

Views parse the request, call the selectors/services, and render. Every response that carries
results names the snapshot hash (page, ``X-Snapshot-SHA256`` header, file names, file contents).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views import View
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http_status
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CoordinatorRequiredMixin, IsCoordinator
from readerstudy.analysis.exports import EXPORT_BUILDERS, EXPORT_FORMATS, export_filename
from readerstudy.analysis.figures import FIGURE_CONTENT_TYPES, FIGURES, figure_render
from readerstudy.analysis.frames import REFERENCE_STANDARDS
from readerstudy.analysis.page_tables import display_tables
from readerstudy.analysis.selectors import (
    analysis_is_available,
    analysis_reads,
    analysis_snapshot_get,
    analysis_snapshots,
    analysis_study_get,
)
from readerstudy.analysis.services import (
    SnapshotIntegrityError,
    analysis_run,
    analysis_snapshot_build,
)
from readerstudy.models import ReaderStudy, Snapshot

logger = logging.getLogger(__name__)

NOT_FROZEN = (
    "Analysis runs only on frozen data: lock the study, or take a snapshot of the submitted reads."
)


def _snapshot_pk(request: HttpRequest) -> int | None:
    raw = request.GET.get("snapshot")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise Http404("snapshot must be a number") from exc


def _frozen_snapshot(request: HttpRequest, study: ReaderStudy) -> Snapshot:
    if not analysis_is_available(study=study):
        raise Http404(NOT_FROZEN)
    return analysis_snapshot_get(study=study, snapshot_pk=_snapshot_pk(request))


class AnalysisNotPossible(Exception):
    """The snapshot exists but cannot be analysed (no reads, tampered payload, malformed data)."""


def _results(snapshot: Snapshot) -> dict[str, Any]:
    try:
        return analysis_run(snapshot=snapshot)
    except (ValueError, SnapshotIntegrityError) as exc:
        logger.warning("analysis of snapshot %s refused: %s", snapshot.pk, exc, exc_info=True)
        raise AnalysisNotPossible(
            f"Snapshot {snapshot.sha256[:12]} cannot be analysed: {exc}"
        ) from exc


def _conflict(message: str) -> HttpResponse:
    return HttpResponse(message, status=409, content_type="text/plain; charset=utf-8")


def _study_slug(study: ReaderStudy) -> str:
    return slugify(study.name) or f"study-{study.pk}"


def _download(
    content: bytes, *, content_type: str, filename: str, snapshot: Snapshot, inline: bool = False
) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Snapshot-SHA256"] = snapshot.sha256
    response["Cache-Control"] = "private, no-store"
    return response


def _figure_bytes(*, snapshot: Snapshot, key: str, fmt: str) -> bytes:
    """Rendered once per snapshot, figure and format: a figure is a pure function of the results."""
    results = _results(snapshot)
    cache_key = f"readerstudy:figure:{results['format']}:{snapshot.sha256}:{results['synthetic']}:{key}:{fmt}"
    content = cache.get(cache_key)
    if content is None:
        content = figure_render(key, results, fmt=fmt)
        cache.set(cache_key, content, timeout=3600)
    return bytes(content)


def figure_response(
    *, study: ReaderStudy, snapshot: Snapshot, key: str, fmt: str, inline: bool = False
) -> HttpResponse:
    if key not in FIGURES or fmt not in FIGURE_CONTENT_TYPES:
        raise Http404("unknown figure or format")
    try:
        content = _figure_bytes(snapshot=snapshot, key=key, fmt=fmt)
    except AnalysisNotPossible as exc:
        return _conflict(str(exc))
    filename = f"{_study_slug(study)}-{key}-{snapshot.sha256[:12]}.{fmt}"
    return _download(
        content,
        content_type=FIGURE_CONTENT_TYPES[fmt],
        filename=filename,
        snapshot=snapshot,
        inline=inline,
    )


def export_response(*, study: ReaderStudy, snapshot: Snapshot, key: str) -> HttpResponse:
    if key not in EXPORT_FORMATS:
        raise Http404("unknown export")
    fmt = EXPORT_FORMATS[key]
    try:
        results = _results(snapshot)
    except AnalysisNotPossible as exc:
        return _conflict(str(exc))
    # Like figures, an export is a pure function of the snapshot: built once (a 20,000-read
    # workbook takes seconds), then served from the cache.
    cache_key = (
        f"readerstudy:export:{results['format']}:{snapshot.sha256}:{results['synthetic']}:{key}"
    )
    content = cache.get(cache_key)
    if content is None:
        content = EXPORT_BUILDERS[key](results, analysis_reads(snapshot=snapshot))
        cache.set(cache_key, content, timeout=3600)
    content_type = fmt.content_type + (
        "; charset=utf-8" if fmt.content_type.startswith("text/") else ""
    )
    filename = export_filename(key=key, study_slug=_study_slug(study), sha256=snapshot.sha256)
    return _download(content, content_type=content_type, filename=filename, snapshot=snapshot)


# --- pages -----------------------------------------------------------------------------------------


class AnalysisPageView(CoordinatorRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        context: dict[str, Any] = {
            "study": study,
            "reference_label": REFERENCE_STANDARDS.get(study.reference_standard, ""),
            "snapshots": analysis_snapshots(study=study),
            "can_snapshot": study.status != ReaderStudy.Status.DRAFT,
        }
        if not analysis_is_available(study=study):
            context["not_frozen"] = NOT_FROZEN
            return render(request, "readerstudy/analysis_unavailable.html", context, status=409)
        snapshot = analysis_snapshot_get(study=study, snapshot_pk=_snapshot_pk(request))
        try:
            results = _results(snapshot)
        except AnalysisNotPossible as exc:
            context["not_frozen"] = str(exc)
            return render(request, "readerstudy/analysis_unavailable.html", context, status=409)
        # The SVGs are fetched by static/js/analysis.js and inlined, so the page itself answers at
        # once and the four charts are drawn in parallel requests (each cached per snapshot).
        figures = [{"key": spec.key, "title": spec.title} for spec in FIGURES.values()]
        context.update(
            {
                "snapshot": snapshot,
                "results": results,
                "tables": display_tables(results),
                "figures": figures,
                "exports": list(EXPORT_FORMATS.values()),
                "missing": results["missing"],
            }
        )
        return render(request, "readerstudy/analysis.html", context)


class AnalysisSnapshotCreateView(CoordinatorRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        try:
            snapshot = analysis_snapshot_build(study=study, user=request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Snapshot {snapshot.sha256[:12]} taken.")
        return redirect("readerstudy:analysis", pk=study.pk)


class AnalysisFigureView(CoordinatorRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int, key: str, fmt: str) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        snapshot = _frozen_snapshot(request, study)
        return figure_response(
            study=study,
            snapshot=snapshot,
            key=key,
            fmt=fmt,
            inline=request.GET.get("inline") == "1",
        )


class AnalysisExportView(CoordinatorRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int, key: str) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        snapshot = _frozen_snapshot(request, study)
        return export_response(study=study, snapshot=snapshot, key=key)


# --- API -------------------------------------------------------------------------------------------

_SNAPSHOT_PARAM = OpenApiParameter(
    "snapshot", int, description="Snapshot id (default: the study's latest snapshot)."
)


class _CoordinatorAPIView(APIView):
    permission_classes = [IsAuthenticated, IsCoordinator]


class _FileRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv`` or ``image/png`` without a 406; errors stay JSON."""

    media_type = "*/*"
    format = "file"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class _CoordinatorFileAPIView(_CoordinatorAPIView):
    renderer_classes = [JSONRenderer, _FileRenderer]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # An error (a DRF Response) is JSON even when the client asked for the file renderer,
        # whose media type "*/*" would otherwise be its Content-Type.
        if isinstance(response, Response) and isinstance(
            getattr(request, "accepted_renderer", None), _FileRenderer
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# What the file endpoints answer besides the file: 404 (JSON) and 409 (text, not analysable).
_FILE_ERRORS: dict[Any, Any] = {
    404: OpenApiResponse(OpenApiTypes.OBJECT, description=NOT_FROZEN),
    (409, "text/plain"): OpenApiResponse(
        OpenApiTypes.STR, description="the snapshot cannot be analysed"
    ),
}


class AnalysisResultsAPIView(_CoordinatorAPIView):
    @extend_schema(
        summary="All analysis results of a snapshot (JSON)",
        parameters=[_SNAPSHOT_PARAM],
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(OpenApiTypes.OBJECT, description=NOT_FROZEN),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="cannot be analysed"),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        study = analysis_study_get(pk=pk)
        snapshot = _frozen_snapshot(request, study)  # type: ignore[arg-type]
        try:
            results = _results(snapshot)
        except AnalysisNotPossible as exc:
            return Response({"detail": str(exc)}, status=409)
        response = Response(results)
        response["X-Snapshot-SHA256"] = snapshot.sha256
        return response


class AnalysisSnapshotAPIView(_CoordinatorAPIView):
    @extend_schema(
        summary="Freeze the submitted reads as a new snapshot",
        request=None,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, pk: int) -> Response:
        study = analysis_study_get(pk=pk)
        try:
            snapshot = analysis_snapshot_build(study=study, user=request.user)
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=400)
        except PermissionDenied as exc:
            return Response({"detail": str(exc)}, status=403)
        return Response(
            {
                "id": snapshot.pk,
                "sha256": snapshot.sha256,
                "created_at": snapshot.created_at.isoformat(),
                "reads": len(snapshot.payload.get("reads", [])),
            },
            status=http_status.HTTP_201_CREATED,
        )


class AnalysisExportAPIView(_CoordinatorFileAPIView):
    @extend_schema(
        summary="Download one export: reads-csv, workbook-xlsx, results-json, imrmc, mrmc-long-csv, figures-zip",
        parameters=[_SNAPSHOT_PARAM],
        responses={
            **{
                (200, content_type): OpenApiTypes.BINARY
                for content_type in sorted({f.content_type for f in EXPORT_FORMATS.values()})
            },
            **_FILE_ERRORS,
        },
    )
    def get(self, request: Request, pk: int, key: str) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        snapshot = _frozen_snapshot(request, study)  # type: ignore[arg-type]
        return export_response(study=study, snapshot=snapshot, key=key)


class AnalysisFigureAPIView(_CoordinatorFileAPIView):
    @extend_schema(
        summary="Download one figure (roc, kappa, likert, mrmc) as svg or png",
        parameters=[_SNAPSHOT_PARAM],
        responses={
            **{(200, ct): OpenApiTypes.BINARY for ct in sorted(FIGURE_CONTENT_TYPES.values())},
            **_FILE_ERRORS,
        },
    )
    def get(self, request: Request, pk: int, key: str, fmt: str) -> HttpResponse:
        study = analysis_study_get(pk=pk)
        snapshot = _frozen_snapshot(request, study)  # type: ignore[arg-type]
        return figure_response(study=study, snapshot=snapshot, key=key, fmt=fmt)
