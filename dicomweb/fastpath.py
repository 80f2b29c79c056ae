"""A WSGI fast path for the hottest image GETs: DICOMweb and WADO-URI, coordinators and readers.

Django's full stack (middleware, session and user queries, URL resolution, the instance query)
costs several milliseconds per image, ten times what Orthanc spends. The answers here are the same
bytes the Django views give (tests compare them), for the common case only: a GET with a known
credential of a coordinator or admin, an instance that exists, nothing conditional. Everything
else (errors, refusals, readers, CORS, If-None-Match, other Accept values) falls through to Django,
which stays the only place that says no.

Two process-local caches make a hit touch no database:
* the user behind each credential (session key, API token, Basic pair), for AUTH_TTL seconds;
  a logout in this process drops it at once, other processes within AUTH_TTL (a role change or
  a deactivation likewise applies within AUTH_TTL). Object checks are never cached: the reader's
  endpoint runs its own view (assignment, open study) on every request;
* where an instance's file is, by SOP Instance UID (stored files never change; a deleted one
  fails to open and falls through).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import close_old_connections, connection

from .media import (
    DICOM,
    EXPLICIT_VR_LE,
    OCTET,
    accept_parse,
    multipart_chunks,
    multipart_content_type,
)

logger = logging.getLogger(__name__)
AUTH_TTL = 10.0
MAX_ENTRIES = 100_000
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
StartResponse = Callable[..., Any]

_lock = threading.Lock()
_auth: dict[str, tuple[float, Any]] = {}  # credential -> (expiry, active user)
_instances: dict[
    str, tuple[str, str, str, str, int]
] = {}  # sop -> path, sha, study, series, cohort


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    with _lock:
        if len(table) >= MAX_ENTRIES:
            table.clear()
        table[key] = value


def caches_clear() -> None:
    with _lock:
        _auth.clear()
        _instances.clear()


def _db_done() -> None:
    """Give back the connection as Django does after a request (not inside a test's transaction).

    A SQLite connection is kept by its thread instead: opening one (and its PRAGMAs) cost more
    than the searches themselves, and in WAL mode each read still sees the latest commit.
    """
    if not connection.in_atomic_block and connection.vendor != "sqlite":
        close_old_connections()


def _session_key(environ: dict[str, Any]) -> str:
    raw = environ.get("HTTP_COOKIE", "")
    if not raw:
        return ""
    try:
        morsel = SimpleCookie(raw).get(settings.SESSION_COOKIE_NAME)
    except Exception:  # a malformed cookie header is Django's to judge
        return ""
    return morsel.value if morsel is not None else ""


def _session_user(key: str) -> Any:
    """What django.contrib.auth.get_user decides for this session, then the role."""
    from importlib import import_module

    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.utils.crypto import constant_time_compare

    store = import_module(settings.SESSION_ENGINE).SessionStore(key)
    data = store.load()
    user_id = data.get(SESSION_KEY)
    if not user_id:
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    if not constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    return user


def _credential_user(environ: dict[str, Any], *, header_ok: bool) -> Any:
    """The active user behind the request's credential (from cache, else checked), or None."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header:
        if not header_ok:
            return None
        key = "h:" + hashlib.sha256(header.encode()).hexdigest()
    else:
        session = _session_key(environ)
        if not session:
            return None
        key = "s:" + session
    now = time.monotonic()
    hit = _auth.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    from .auth import _basic_user, _token_user

    try:
        if header:
            scheme, _, value = header.partition(" ")
            scheme = scheme.lower()
            if scheme in ("token", "bearer"):
                user = _token_user(value.strip())
            elif scheme == "basic":
                user = _basic_user(value.strip())
            else:
                return None
        else:
            user = _session_user(key[2:])
    finally:
        _db_done()
    if user is not None:
        _remember(_auth, key, (now + AUTH_TTL, user))
    return user


def _authorised(environ: dict[str, Any], *, header_ok: bool) -> Any:
    """The coordinator or admin behind the credential, or None."""
    from accounts.permissions import user_is_coordinator

    user = _credential_user(environ, header_ok=header_ok)
    return user if user is not None and user_is_coordinator(user) else None


def _forget_session(sender: Any, request: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    with _lock:
        if key:
            _auth.pop("s:" + key, None)


user_logged_out.connect(_forget_session, dispatch_uid="dicomweb-fastpath-logout")


def _instance(sop: str) -> tuple[str, str, str, str, int] | None:
    found = _instances.get(sop)
    if found is not None:
        return found
    from registration.models import DicomInstance

    try:
        row = (
            DicomInstance.objects.filter(sop_instance_uid=sop)
            .values_list(
                "path",
                "sha256",
                "series__study_instance_uid",
                "series__series_instance_uid",
                "series__case__cohort_id",
            )
            .first()
        )
    finally:
        _db_done()
    if row is None:
        return None
    entry = (str(Path(settings.MEDIA_ROOT) / row[0]), row[1], row[2], row[3], int(row[4]))
    _remember(_instances, sop, entry)
    return entry


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _wado_uri(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]] | None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    one = {k: v[0] for k, v in query.items() if len(v) == 1}
    if one.get("requestType") != "WADO" or one.get("contentType", DICOM) != DICOM:
        return None
    found = _instance(one.get("objectUID", ""))
    if found is None or (found[2], found[3]) != (one.get("studyUID"), one.get("seriesUID")):
        return None
    if not _authorised(environ, header_ok=False):  # the Django view takes the session only
        return None
    body = _read(found[0])
    if body is None:
        return None
    headers = [
        ("Content-Type", DICOM),
        ("Cache-Control", "private, max-age=3600"),
        ("Vary", "Cookie"),
    ]
    return "200 OK", headers + [("Content-Length", str(len(body)))], [body]


def _dicomweb(
    environ: dict[str, Any], parts: list[str]
) -> tuple[str, list[tuple[str, str]], list[bytes]] | None:
    cohort: int | None = None
    if parts[:1] == ["cohorts"]:
        if len(parts) < 2 or not parts[1].isdigit():
            return None
        cohort, parts = int(parts[1]), parts[2:]
    frames = len(parts) == 8 and parts[6:] == ["frames", "1"]
    if not (len(parts) == 6 or frames) or parts[0:5:2] != ["studies", "series", "instances"]:
        return None
    study, series, sop = parts[1], parts[3], parts[5]
    accept = accept_parse(environ.get("HTTP_ACCEPT", ""))
    if not accept or accept[0].main != "multipart/related":
        return None
    wanted = accept[0].inner or (OCTET if frames else DICOM)
    if wanted != (OCTET if frames else DICOM) or accept[0].transfer_syntax not in (
        "",
        "*",
        EXPLICIT_VR_LE,
    ):
        return None
    found = _instance(sop)
    if found is None or (found[2], found[3]) != (study, series):
        return None
    if cohort is not None and found[4] != cohort:
        return None
    if not _authorised(environ, header_ok=True):
        return None
    data = _read(found[0])
    if data is None:
        return None
    if frames:
        from .instances import instance_frame

        data = instance_frame(Path(found[0]), frame=1)
    boundary = "mritrus-" + found[1][:24]
    body = b"".join(multipart_chunks([data], part_type=wanted, boundary=boundary))
    headers = [
        ("Content-Type", multipart_content_type(part_type=wanted, boundary=boundary)),
        ("Content-Length", str(len(body))),
        ("ETag", f'"{found[1]}-f1"' if frames else f'"{found[1]}"'),
        ("Cache-Control", "private, max-age=31536000, immutable"),
    ]
    return "200 OK", headers, [body]


def _call(
    environ: dict[str, Any], view: Callable[..., Any], user: Any, *args: Any, **kwargs: Any
) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
    """Run a Django view on a request built from ``environ``, as ``user``; only a 200 is kept."""
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import Http404

    request = WSGIRequest(environ)
    request.user = user
    try:
        response = view(request, *args, **kwargs)
    except Http404:
        return None
    finally:
        _db_done()
    if response.status_code != 200:
        return None  # refusals and errors are Django's to give
    status = f"{response.status_code} {response.reason_phrase}"
    headers = list(response.items())
    if not response.streaming and not response.has_header("Content-Length"):
        headers.append(("Content-Length", str(len(response.content))))
    return status, headers, response


def _view(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
    """Other DICOMweb GETs (QIDO, metadata, rendered): the view itself, without the middleware."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(environ["PATH_INFO"])
    except Resolver404:
        return None
    inner = getattr(match.func, "dicomweb_inner", None)
    if inner is None:
        return None
    user = _authorised(environ, header_ok=True)
    if user is None:
        return None
    return _call(environ, inner, user, *match.args, **match.kwargs)


def _reader_wado(
    environ: dict[str, Any],
) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
    """The reader's blinded WADO-URI: its own view (ownership, open study, session opened) runs
    on every request; only the session lookup and the middleware are skipped."""
    from readerstudy.views import wado_view

    user = _credential_user(environ, header_ok=False)
    if user is None:
        return None
    answer = _call(environ, wado_view, user)
    if answer is not None:
        answer[1].append(("Vary", "Cookie"))
    return answer


def _answer(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Iterable[bytes]] | None:
    if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_IF_NONE_MATCH"):
        return None
    if environ.get("HTTP_ORIGIN"):
        return None
    path = environ.get("PATH_INFO", "")
    if path == "/wado":
        return _wado_uri(environ)
    if path == "/reading/wado":
        return _reader_wado(environ)
    if path.startswith("/dicomweb/"):
        return _dicomweb(environ, path[len("/dicomweb/") :].split("/")) or _view(environ)
    return None


class FastPath:
    """WSGI middleware: answer what it can, hand the rest to Django."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            answer = _answer(environ)
        except Exception:  # never worse than Django: log, and let Django answer
            logger.exception("DICOM fast path failed; Django answers instead")
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers + SECURITY_HEADERS)
        return body
