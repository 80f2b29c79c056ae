"""Media types of PS3.18: Accept negotiation, multipart/related bodies out and in.

Everything stored here is uncompressed Explicit VR Little Endian (registration.dicom.write writes it
so), and nothing is transcoded: a request for any other transfer syntax is refused with 406 and a
sentence saying what is served, rather than answered with bytes the client did not ask for.
"""

from __future__ import annotations

import mmap
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
SERVED_SYNTAXES = (EXPLICIT_VR_LE, "*")
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET = "application/octet-stream"

_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')


@dataclass
class MediaRange:
    main: str  # e.g. multipart/related, application/dicom, */*
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def inner(self) -> str:
        """The part type of a multipart range (``type=``), else the range itself."""
        return self.params.get("type", "").lower() if self.is_multipart else self.main

    @property
    def is_multipart(self) -> bool:
        return self.main == "multipart/related"

    @property
    def transfer_syntax(self) -> str:
        return self.params.get("transfer-syntax", "")


def accept_parse(header: str) -> list[MediaRange]:
    """Media ranges of an Accept header, best first (q, then order); empty header = ``*/*``."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for n, item in enumerate(_SPLIT.split(header or "*/*")):
        parts = [p.strip() for p in item.split(";") if p.strip()]
        if not parts:
            continue
        media = MediaRange(main=parts[0].lower())
        for param in parts[1:]:
            key, _, value = param.partition("=")
            media.params[key.strip().lower()] = value.strip().strip('"')
        try:
            media.q = float(media.params.pop("q", "1"))
        except ValueError:
            media.q = 1.0
        if media.q > 0:
            ranges.append((-media.q, n, media))
    return [m for _, _, m in sorted(ranges, key=lambda t: (t[0], t[1]))]


class NotAcceptable(Exception):
    """The client accepts nothing that is served here; the message says what is."""


def negotiate_multipart(header: str, *, part_types: tuple[str, ...]) -> str:
    """The part media type to send in ``multipart/related``, or NotAcceptable.

    ``part_types`` are what this resource can produce, the first the default. A range naming a
    transfer syntax other than Explicit VR Little Endian (or ``*``) does not match.
    """
    refused_syntax = ""
    for media in accept_parse(header):
        if media.main in ("*/*", "multipart/*") or (media.is_multipart and not media.inner):
            candidates = [part_types[0]]
        elif media.is_multipart:
            candidates = [t for t in part_types if _type_match(media.inner, t)]
        elif media.main in part_types and media.main == DICOM_JSON:
            candidates = [media.main]
        else:
            continue
        if media.transfer_syntax and media.transfer_syntax not in SERVED_SYNTAXES:
            refused_syntax = media.transfer_syntax
            continue
        if candidates:
            return candidates[0]
    if refused_syntax:
        raise NotAcceptable(
            f"transfer syntax {refused_syntax} is not served: instances are stored uncompressed "
            f"in Explicit VR Little Endian ({EXPLICIT_VR_LE}) and are not transcoded; ask for "
            f"transfer-syntax={EXPLICIT_VR_LE} or transfer-syntax=*"
        )
    wanted = ", ".join(f'multipart/related; type="{t}"' for t in part_types)
    raise NotAcceptable(f"this resource is served as {wanted} (Accept: {header!r})")


def _type_match(pattern: str, media_type: str) -> bool:
    if pattern in ("*/*", media_type):
        return True
    return pattern.endswith("/*") and media_type.startswith(pattern[:-1])


def negotiate_single(header: str, *, types: tuple[str, ...]) -> str:
    """One of ``types`` (e.g. dicom+json, image/png) that the Accept header allows."""
    for media in accept_parse(header):
        for t in types:
            if _type_match(media.main, t) or (media.main == "application/json" and t == DICOM_JSON):
                return t
    raise NotAcceptable(f"this resource is served as {', '.join(types)} (Accept: {header!r})")


def boundary_new() -> str:
    return "mritrus-" + secrets.token_hex(12)


def multipart_content_type(*, part_type: str, boundary: str) -> str:
    extra = f"; transfer-syntax={EXPLICIT_VR_LE}" if part_type in (DICOM, OCTET) else ""
    return f'multipart/related; type="{part_type}"{extra}; boundary={boundary}'


def multipart_chunks(
    parts: Iterable[bytes], *, part_type: str, boundary: str, location: Iterable[str] | None = None
) -> Iterator[bytes]:
    """The body of a multipart/related message, one part per item, streamed."""
    extra = f"; transfer-syntax={EXPLICIT_VR_LE}" if part_type in (DICOM, OCTET) else ""
    locations = iter(location) if location is not None else None
    for data in parts:
        head = f"--{boundary}\r\nContent-Type: {part_type}{extra}\r\n"
        if locations is not None:
            head += f"Content-Location: {next(locations)}\r\n"
        yield (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data + b"\r\n"
    yield f"--{boundary}--\r\n".encode()


class MultipartError(ValueError):
    """A request body that is not the multipart/related message it says it is."""


def content_type_boundary(content_type: str) -> tuple[str, str, str]:
    """(media type, part type, boundary) of a request Content-Type."""
    media = accept_parse(content_type)
    if not media:
        raise MultipartError("no Content-Type")
    m = media[0]
    return m.main, m.params.get("type", "").lower(), m.params.get("boundary", "")


def multipart_split(path: Path, *, boundary: str) -> Iterator[tuple[dict[str, str], bytes]]:
    """(headers, body) of each part of the multipart message stored in ``path``.

    The message is memory-mapped rather than read, so a large STOW body is not copied whole.
    """
    if not boundary:
        raise MultipartError("the multipart Content-Type has no boundary")
    if path.stat().st_size == 0:
        raise MultipartError("the request body is empty")
    delimiter = b"--" + boundary.encode("latin-1")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(delimiter)
        if start < 0:
            raise MultipartError("the body holds no part delimited by the boundary")
        while True:
            start += len(delimiter)
            if data[start : start + 2] == b"--":
                return
            start = start + 2 if data[start : start + 2] == b"\r\n" else start
            end = data.find(b"\r\n" + delimiter, start)
            if end < 0:
                raise MultipartError("a part is not closed by the boundary")
            head_end = data.find(b"\r\n\r\n", start, end)
            if head_end < 0:
                headers: dict[str, str] = {}
                body_start = start
            else:
                headers = _headers_parse(bytes(data[start:head_end]))
                body_start = head_end + 4
            yield headers, bytes(data[body_start:end])
            start = end + 2


def _headers_parse(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out
