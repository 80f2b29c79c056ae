"""Small helpers shared by the DICOMweb views: scope, base URL, plain-text refusals, caching."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from .selectors import Scope, cohort_exists

# Stored instances are immutable (a replaced series gets new UIDs), so a response named by
# instance UID may be cached by the client's browser for a year; `private`: it needs a login.
IMMUTABLE = "private, max-age=31536000, immutable"


def scope_get(cohort: int | None) -> Scope:
    """The scope of the URL; 404 for a cohort that does not exist (no hint of others)."""
    if cohort is not None and not cohort_exists(pk=cohort):
        raise Http404("no such cohort")
    return Scope(cohort_id=cohort)


def root_path(request: HttpRequest, cohort: int | None) -> str:
    script = request.META.get("SCRIPT_NAME", "").rstrip("/")
    return f"{script}/dicomweb" + (f"/cohorts/{cohort}" if cohort is not None else "")


def root_url(request: HttpRequest, cohort: int | None) -> str:
    """Absolute base URL of the service the client called (for RetrieveURL, BulkDataURI).

    From the Host header unless MRITRUS_PUBLIC_URL is set: some clients send a Host without the
    port (dicomweb-client does), and a proxy may hide the public address.
    """
    public = str(getattr(settings, "MRITRUS_PUBLIC_URL", "") or "").rstrip("/")
    if public:
        return public + root_path(request, cohort)
    return request.build_absolute_uri(root_path(request, cohort))


def text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def warning_header(messages: list[str]) -> str:
    """PS3.18 §8.x Warning header: ``299 {service}: {text}``, several joined by commas."""
    return ", ".join(f'299 mritrus: "{m.replace(chr(34), chr(39))}"' for m in messages)


def not_modified(request: HttpRequest, etag: str) -> HttpResponse | None:
    if etag and request.META.get("HTTP_IF_NONE_MATCH", "") in (etag, f"W/{etag}"):
        response = HttpResponse(status=304)
        response["ETag"] = etag
        response["Cache-Control"] = IMMUTABLE
        return response
    return None
