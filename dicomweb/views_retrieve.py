"""WADO-RS retrieves (PS3.18 §10.4): instances, metadata, frames, bulk data, rendered images.

Instances are the stored Part 10 files, sent as they are (de-identified at import, Explicit VR
Little Endian): no parsing or re-encoding on the way out, which is most of the speed.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse

from registration.models import DicomInstance

from . import selectors
from .auth import dicomweb_view
from .common import IMMUTABLE, not_modified, root_url, scope_get, text
from .instances import (
    PIXEL_DATA,
    FrameError,
    frames_parse,
    instance_frame,
    instance_metadata_json,
    instance_rendered,
)
from .media import (
    DICOM,
    DICOM_JSON,
    OCTET,
    NotAcceptable,
    accept_parse,
    boundary_new,
    multipart_chunks,
    multipart_content_type,
    negotiate_multipart,
    negotiate_single,
)
from .views_search import study_store

FRAMES_REFUSAL = (
    "; frames are served uncompressed only (application/octet-stream, Explicit VR Little "
    "Endian): compressed frame types (image/jls, image/jp2, image/jpeg, ...) are not produced"
)


def _instances(
    cohort: int | None, study: str, series: str | None = None, instance: str | None = None
) -> list[DicomInstance]:
    found = selectors.instances_of(
        scope=scope_get(cohort), study_uid=study, series_uid=series, sop_uid=instance
    )
    if not found:
        raise Http404("no such study, series or instance")
    return found


def _file_bytes(instances: list[DicomInstance]) -> Iterator[bytes]:
    for inst in instances:
        yield selectors.media_path(inst.path).read_bytes()


def _retrieve(
    request: HttpRequest, instances: list[DicomInstance]
) -> HttpResponse | StreamingHttpResponse:
    accept = request.META.get("HTTP_ACCEPT", "")
    ranges = accept_parse(accept)
    single = len(instances) == 1
    if single and ranges and ranges[0].main == DICOM and not ranges[0].transfer_syntax:
        # A bare application/dicom (curl, browsers' "save as") gets the file itself.
        inst = instances[0]
        etag = f'"{inst.sha256}"'
        cached = not_modified(request, etag)
        if cached is not None:
            return cached
        response = HttpResponse(selectors.media_path(inst.path).read_bytes(), content_type=DICOM)
        response["ETag"] = etag
        response["Cache-Control"] = IMMUTABLE
        return response
    try:
        part_type = negotiate_multipart(accept, part_types=(DICOM,))
    except NotAcceptable as exc:
        return text(406, str(exc))
    if single:
        inst = instances[0]
        etag = f'"{inst.sha256}"'
        cached = not_modified(request, etag)
        if cached is not None:
            return cached
        # A boundary fixed by the content keeps the bytes, and so the strong ETag, stable.
        boundary = "mritrus-" + inst.sha256[:24]
        body = b"".join(
            multipart_chunks(_file_bytes(instances), part_type=part_type, boundary=boundary)
        )
        response = HttpResponse(
            body, content_type=multipart_content_type(part_type=part_type, boundary=boundary)
        )
        response["ETag"] = etag
        response["Cache-Control"] = IMMUTABLE
        return response
    boundary = boundary_new()
    streaming = StreamingHttpResponse(
        multipart_chunks(_file_bytes(instances), part_type=part_type, boundary=boundary),
        content_type=multipart_content_type(part_type=part_type, boundary=boundary),
    )
    streaming["Cache-Control"] = "private, no-cache"
    return streaming


def _metadata(
    request: HttpRequest, cohort: int | None, instances: list[DicomInstance]
) -> HttpResponse:
    try:
        negotiate_single(request.META.get("HTTP_ACCEPT", ""), types=(DICOM_JSON,))
    except NotAcceptable as exc:
        return text(406, str(exc))
    base = root_url(request, cohort)
    out = []
    for inst in instances:
        series = inst.series
        uri = (
            f"{base}/studies/{series.study_instance_uid}/series/{series.series_instance_uid}"
            f"/instances/{inst.sop_instance_uid}/bulkdata/{PIXEL_DATA}"
        )
        out.append(instance_metadata_json(selectors.media_path(inst.path), bulk_uri=uri))
    response = HttpResponse("[" + ",".join(out) + "]", content_type=DICOM_JSON)
    response["Cache-Control"] = "private, no-cache"
    return response


def _octets(
    request: HttpRequest, inst: DicomInstance, frames: list[int], etag: str
) -> HttpResponse:
    try:
        part_type = negotiate_multipart(request.META.get("HTTP_ACCEPT", ""), part_types=(OCTET,))
    except NotAcceptable as exc:
        return text(406, str(exc) + FRAMES_REFUSAL)
    cached = not_modified(request, etag)
    if cached is not None:
        return cached
    path = selectors.media_path(inst.path)
    try:
        parts = [instance_frame(path, frame=f) for f in frames]
    except FrameError as exc:
        return text(404, str(exc))
    boundary = "mritrus-" + inst.sha256[:24]
    body = b"".join(multipart_chunks(parts, part_type=part_type, boundary=boundary))
    response = HttpResponse(
        body, content_type=multipart_content_type(part_type=part_type, boundary=boundary)
    )
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE
    return response


@dicomweb_view(methods=("GET", "POST"))
def study_view(
    request: HttpRequest, study: str, cohort: int | None = None
) -> HttpResponse | StreamingHttpResponse:
    """GET: every instance of the study. POST: STOW-RS into the study."""
    if request.method == "POST":
        return study_store(request, cohort=cohort, study=study)
    return _retrieve(request, _instances(cohort, study))


@dicomweb_view(methods=("GET",))
def series_view(
    request: HttpRequest, study: str, series: str, cohort: int | None = None
) -> HttpResponse | StreamingHttpResponse:
    return _retrieve(request, _instances(cohort, study, series))


@dicomweb_view(methods=("GET",))
def instance_view(
    request: HttpRequest, study: str, series: str, instance: str, cohort: int | None = None
) -> HttpResponse | StreamingHttpResponse:
    return _retrieve(request, _instances(cohort, study, series, instance))


@dicomweb_view(methods=("GET",))
def study_metadata_view(
    request: HttpRequest, study: str, cohort: int | None = None
) -> HttpResponse:
    return _metadata(request, cohort, _instances(cohort, study))


@dicomweb_view(methods=("GET",))
def series_metadata_view(
    request: HttpRequest, study: str, series: str, cohort: int | None = None
) -> HttpResponse:
    return _metadata(request, cohort, _instances(cohort, study, series))


@dicomweb_view(methods=("GET",))
def instance_metadata_view(
    request: HttpRequest, study: str, series: str, instance: str, cohort: int | None = None
) -> HttpResponse:
    return _metadata(request, cohort, _instances(cohort, study, series, instance))


@dicomweb_view(methods=("GET",))
def frames_view(
    request: HttpRequest,
    study: str,
    series: str,
    instance: str,
    frames: str,
    cohort: int | None = None,
) -> HttpResponse:
    try:
        numbers = frames_parse(frames)
    except ValueError:
        return text(400, f"frame list {frames!r}: comma-separated numbers from 1")
    inst = _instances(cohort, study, series, instance)[0]
    return _octets(request, inst, numbers, f'"{inst.sha256}-f{frames}"')


@dicomweb_view(methods=("GET",))
def bulkdata_view(
    request: HttpRequest,
    study: str,
    series: str,
    instance: str,
    tag: str,
    cohort: int | None = None,
) -> HttpResponse:
    if tag.upper() != PIXEL_DATA:
        return text(404, f"no bulk data at tag {tag}: only PixelData ({PIXEL_DATA}) is bulk here")
    inst = _instances(cohort, study, series, instance)[0]
    return _octets(request, inst, [1], f'"{inst.sha256}-b"')


def _rendered(request: HttpRequest, inst: DicomInstance) -> HttpResponse:
    try:
        media_type = negotiate_single(
            request.META.get("HTTP_ACCEPT", ""), types=("image/jpeg", "image/png")
        )
    except NotAcceptable as exc:
        return text(406, str(exc))
    params = request.GET
    try:
        window = None
        if params.get("window"):
            centre, width, *_ = params["window"].split(",")
            window = (float(centre), float(width))
        viewport = None
        if params.get("viewport"):
            vw, vh, *_ = params["viewport"].split(",")
            viewport = (int(vh), int(vw))
        quality = int(params.get("quality", 90))
    except ValueError:
        return text(400, "window=centre,width[,function], viewport=width,height, quality=1..100")
    body = instance_rendered(
        selectors.media_path(inst.path),
        media_type=media_type,
        window=window,
        viewport=viewport,
        quality=quality,
    )
    response = HttpResponse(body, content_type=media_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@dicomweb_view(methods=("GET",))
def instance_rendered_view(
    request: HttpRequest, study: str, series: str, instance: str, cohort: int | None = None
) -> HttpResponse:
    return _rendered(request, _instances(cohort, study, series, instance)[0])


@dicomweb_view(methods=("GET",))
def frames_rendered_view(
    request: HttpRequest,
    study: str,
    series: str,
    instance: str,
    frames: str,
    cohort: int | None = None,
) -> HttpResponse:
    if frames != "1":
        return text(404, "rendered frames: the instances here have one frame (1)")
    return _rendered(request, _instances(cohort, study, series, instance)[0])
