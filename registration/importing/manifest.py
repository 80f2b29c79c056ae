"""The manifest CSV: its header, each row's fields and image paths, checked and worded for the
coordinator ("row 4, column gleason: ..."). The columns are `inference.manifest.MANIFEST_COLUMNS`,
the list the simulator and the real-case scripts write."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from inference.manifest import MANIFEST_COLUMNS
from registration.dicom.read import DicomInputError
from registration.importing.cases import (
    MANIFEST_NAME,
    CaseInputError,
    CaseItem,
    ImportInputError,
    files_hash,
    files_under,
)
from registration.importing.images import COLUMN_ROLES, ImageError, image_load
from registration.series import CaseImage, CaseInput

REQUIRED_COLUMNS = ("case_code", "reference_pirads", "mr_t2")
CASE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
GLEASON_RE = re.compile(r"^([1-5])\+([1-5])$")


def _manifest_read(root: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    raw = (root / MANIFEST_NAME).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportInputError(f"{MANIFEST_NAME}: not UTF-8 text ({exc})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportInputError(f"{MANIFEST_NAME}: the file is empty") from None
    header = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportInputError(f"{MANIFEST_NAME}: missing required column(s): {', '.join(missing)}")
    duplicated = sorted({h for h in header if header.count(h) > 1 and h})
    if duplicated:
        raise ImportInputError(f"{MANIFEST_NAME}: column(s) repeated: {', '.join(duplicated)}")
    rows: list[tuple[int, dict[str, str]]] = []
    max_rows = int(settings.MRITRUS_IMPORT_MAX_ROWS)
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        if len(rows) >= max_rows:
            # Refused whole, before any image is read: a cohort this size is a mistake or an attack.
            raise ImportInputError(
                f"{MANIFEST_NAME}: more than {max_rows} case rows (MRITRUS_IMPORT_MAX_ROWS); "
                "split the cohort into several imports"
            )
        line = reader.line_num
        if len(values) > len(header):
            rows.append(
                (line, {"__error__": f"row {line}: {len(values)} values for {len(header)} columns"})
            )
            continue
        rows.append((line, {h: v.strip() for h, v in zip(header, values)}))
    return header, rows


def _int_in(value: str, lo: int, hi: int) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if lo <= number <= hi else None


def _fields_parse(row: dict[str, str], line: int) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    fields: dict[str, Any] = {}

    def bad(column: str, message: str) -> None:
        errors.append(f"row {line}, column {column}: {message}")

    pirads = row.get("reference_pirads", "")
    if not pirads:
        bad("reference_pirads", "missing (required, 1–5)")
    elif (value := _int_in(pirads, 1, 5)) is None:
        bad("reference_pirads", f"'{pirads}' is not an integer 1–5")
    else:
        fields["reference_pirads"] = value
    age = row.get("age", "")
    if age:
        if (value := _int_in(age, 18, 120)) is None:
            bad("age", f"'{age}' is not an integer 18–120")
        else:
            fields["age"] = value
    cspca = row.get("cspca", "").lower()
    if cspca in ("yes", "no"):
        fields["cspca"] = cspca == "yes"
    elif cspca:
        bad("cspca", f"'{row['cspca']}' must be yes, no or empty")
    isup = row.get("isup_grade", "")
    if isup:
        if (value := _int_in(isup, 0, 5)) is None:
            bad("isup_grade", f"'{isup}' is not an integer 0–5")
        else:
            fields["isup_grade"] = value
    gleason = row.get("gleason", "")
    if gleason:
        if not GLEASON_RE.match(gleason.replace(" ", "")):
            bad("gleason", f"'{gleason}' is not a Gleason pattern like 3+4")
        else:
            fields["gleason"] = gleason.replace(" ", "")
    side = row.get("lesion_side", "").lower()
    if side in ("left", "right", "bilateral", "none"):
        fields["lesion_side"] = side
    elif side:
        bad("lesion_side", f"'{row['lesion_side']}' must be left, right, bilateral or none")
    synthetic = row.get("synthetic", "").lower()
    if synthetic in ("true", "false", ""):
        fields["synthetic"] = synthetic == "true"
    else:
        bad("synthetic", f"'{row['synthetic']}' must be true or false")
    return fields, errors


def _path_resolve(root: Path, value: str, line: int, column: str) -> tuple[Path | None, str | None]:
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return (
            None,
            f"row {line}, column {column}: an absolute path; paths must be relative to the manifest",
        )
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return (
            None,
            f"row {line}, column {column}: the path leaves the cohort folder ('..' is not allowed)",
        )
    path = root / value
    if not path.exists():
        return None, f"row {line}, column {column}: the path does not exist"
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return None, f"row {line}, column {column}: the path points outside the cohort folder"
    return path, None


def manifest_cases(*, root: Path, notes: list[str]) -> Iterator[CaseItem]:
    header, rows = _manifest_read(root)
    unknown = [h for h in header if h and h not in MANIFEST_COLUMNS]
    if unknown:
        notes.append(f"{MANIFEST_NAME}: ignored unknown column(s): {', '.join(unknown)}")
    if not rows:
        raise ImportInputError(f"{MANIFEST_NAME}: no case rows")
    seen: dict[str, int] = {}
    for line, row in rows:
        if "__error__" in row:
            yield CaseItem(case_code="", row=line, errors=[row["__error__"]])
            continue
        code = row.get("case_code", "")
        errors: list[str] = []
        if not code:
            errors.append(f"row {line}, column case_code: missing (required)")
        elif not CASE_CODE_RE.match(code):
            errors.append(
                f"row {line}, column case_code: '{code}' must be 1–32 letters, digits, '_' or '-'"
            )
        elif code in seen:
            errors.append(
                f"row {line}, column case_code: duplicate case code '{code}' (also on row {seen[code]})"
            )
        else:
            seen[code] = line
        fields, field_errors = _fields_parse(row, line)
        errors += field_errors
        paths: dict[str, Path] = {}
        if not row.get("mr_t2"):
            errors.append(f"row {line}, column mr_t2: missing (required)")
        for column in COLUMN_ROLES:
            value = row.get(column, "")
            if not value:
                continue
            path, error = _path_resolve(root, value, line, column)
            if error:
                errors.append(error)
            elif path is not None:
                paths[column] = path
        for column, (_m, _k, parent, _d) in COLUMN_ROLES.items():
            if column in paths and parent and parent not in paths and row.get(parent, "") == "":
                errors.append(
                    f"row {line}, column {column}: given without its image column {parent}"
                )
        item = CaseItem(case_code=code, row=line, errors=errors)
        if not errors:
            files: list[Path] = []
            for p in paths.values():
                files += files_under(p) if p.is_dir() else [p]
            digest = hashlib.sha256(
                json.dumps({k: row.get(k, "") for k in sorted(row)}, sort_keys=True).encode()
            )
            digest.update(files_hash(files, root).encode())
            item.fingerprint = digest.hexdigest()
            item.loader = _manifest_loader(
                root=root,
                line=line,
                code=code,
                fields=fields,
                paths=paths,
                fingerprint=item.fingerprint,
            )
        yield item


def _manifest_loader(
    *,
    root: Path,
    line: int,
    code: str,
    fields: dict[str, Any],
    paths: dict[str, Path],
    fingerprint: str,
) -> Callable[[], CaseInput]:
    def load() -> CaseInput:
        images: dict[str, CaseImage] = {}
        for column in COLUMN_ROLES:
            if column not in paths:
                continue
            where = f"row {line}, column {column}: "
            try:
                loaded = image_load(root=root, column=column, path=paths[column], images=images)
            except (DicomInputError, ImageError) as exc:
                raise CaseInputError(f"{where}{exc}") from exc
            images.update({im.column: im for im in loaded})
        return CaseInput(
            case_code=code, fields=fields, images=list(images.values()), fingerprint=fingerprint
        )

    return load
