"""Who is calling a DICOMweb URL: the platform's session, its API token, or HTTP Basic.

DICOMweb clients cannot follow a login redirect, so an anonymous call is 401 (with a Basic
challenge, which OHIF, 3D Slicer and dicomweb-client answer), a reader's is 403 on every method.
The API token is accepted as ``Authorization: Token <key>`` (DRF's form) and as ``Bearer <key>``
(what OHIF and Slicer send for an access token).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from accounts.permissions import user_is_coordinator

REALM = 'Basic realm="mritrus DICOMweb", charset="UTF-8"'
# Password hashing costs ~100 ms by design; a DICOMweb viewer sends hundreds of requests per
# series, so a checked (username, password digest) pair is remembered briefly in this process.
BASIC_CACHE_SECONDS = 60.0
_basic_cache: dict[tuple[str, str], tuple[int, float]] = {}
_basic_lock = threading.Lock()


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = REALM
    return response


def _basic_user(value: str, request: HttpRequest | None = None) -> Any:
    """The user of an HTTP Basic pair. The password is checked through django-axes, which needs
    the request: without one (the fast path) only a pair checked recently is known."""
    try:
        username, _, password = base64.b64decode(value).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    digest = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
    key = (username, digest)
    now = time.monotonic()
    with _basic_lock:
        hit = _basic_cache.get(key)
    if hit is not None and hit[1] > now:
        # Re-read the user: a deactivated account or a changed role applies at once.
        user = get_user_model().objects.filter(pk=hit[0], is_active=True).first()
        if user is not None:
            return user
    if request is None:
        return None
    # django-axes counts a wrong password and refuses a locked-out pair (None, as a bad one).
    user = authenticate(request, username=username, password=password)
    if user is not None:
        with _basic_lock:
            _basic_cache[key] = (user.pk, now + BASIC_CACHE_SECONDS)
    return user


def _token_user(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    from accounts.authentication import token_expired

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    if token_expired(token):  # as the API's ExpiringTokenAuthentication: gone for good
        token.delete()
        return None
    return token.user


def request_user(request: HttpRequest) -> tuple[Any, bool]:
    """(user or None, whether it came from the session cookie); a bad credential is None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme in ("token", "bearer") and value:
            return _token_user(value), False
        if scheme == "basic" and value:
            return _basic_user(value, request), False
        return None, False
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user, True
    return None, False


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Session-authenticated writes need the CSRF token, as in DRF; header credentials do not."""

    def _no_view(_request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
        return HttpResponse()

    check = CsrfViewMiddleware(_no_view)
    check.process_request(request)
    return check.process_view(request, _no_view, (), {})


def _cors(
    request: HttpRequest, response: HttpResponseBase, methods: tuple[str, ...]
) -> HttpResponseBase:
    """CORS for a viewer served from another origin (OHIF), only for the configured origins."""
    origin = request.META.get("HTTP_ORIGIN", "")
    if origin and origin in settings.MRITRUS_DICOMWEB_CORS_ORIGINS:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Access-Control-Allow-Methods"] = ", ".join((*methods, "OPTIONS"))
        response["Access-Control-Allow-Headers"] = (
            "Authorization, Accept, Content-Type, If-None-Match"
        )
        response["Access-Control-Expose-Headers"] = "Warning, ETag, Content-Type, Content-Length"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


def dicomweb_view(*, methods: tuple[str, ...]) -> Callable[[Callable[..., HttpResponseBase]], Any]:
    """Authenticate (401), authorise coordinators and admins (403), then the method (405)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Any:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "OPTIONS" and request.META.get("HTTP_ORIGIN"):
                # A CORS preflight carries no credentials; it learns only what is allowed.
                return _cors(request, HttpResponse(status=204), methods)
            return _cors(request, _checked(request, *args, **kwargs), methods)

        def _checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user, from_session = request_user(request)
            if user is None:
                return _text(401, "authentication required (session, API token or HTTP Basic)")
            if not user_is_coordinator(user):
                return _text(403, "DICOMweb is for coordinators and admins")
            if request.method not in methods:
                response = _text(405, f"{request.method} is not served here")
                response["Allow"] = ", ".join(methods)
                return response
            request.user = user
            if from_session and request.method not in ("GET", "HEAD", "OPTIONS"):
                refusal = _csrf_refusal(request)
                if refusal is not None:
                    return refusal
            return view(request, *args, **kwargs)

        # The fast path (fastpath.py) calls the view itself once it has checked the credential.
        wrapped.dicomweb_inner = view  # type: ignore[attr-defined]
        return wrapped

    return decorate
