"""One case to import (a manifest row or a DICOM-only patient), the two kinds of import error, and
the files of an input."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from registration.series import CaseInput

MANIFEST_NAME = "manifest.csv"
IGNORED_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}


class ImportInputError(ValueError):
    """The input as a whole cannot be imported (nothing is stored)."""


class CaseInputError(ValueError):
    """One case cannot be imported (the others still can)."""


@dataclass
class CaseItem:
    """One manifest row or one DICOM-only patient: validated fields, and a loader for the images."""

    case_code: str
    row: int | None
    errors: list[str]
    fingerprint: str = ""
    loader: Callable[[], CaseInput] | None = None

    @property
    def where(self) -> str:
        return f"row {self.row}, " if self.row is not None else ""

    def load(self) -> CaseInput:
        assert self.loader is not None
        return self.loader()


def default_cohort_name(*, run_pk: int) -> str:
    """A neutral name: upload and folder names of clinical exports often carry a patient's name or ID."""
    return f"Cohort of import {run_pk}"


def source_label(paths: list[Path], *, kind: str) -> str:
    """What a stored series came from, without its path: the format and a hash of its files."""
    digest = hashlib.sha256()
    for p in sorted(paths, key=str):
        with p.open("rb") as fh:
            for chunk in iter(partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
    return f"{kind} sha256:{digest.hexdigest()[:16]}"


def files_under(folder: Path) -> list[Path]:
    """The files of ``folder``, in name order, without hidden files and OS litter; links refused."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel_parts = p.relative_to(folder).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in rel_parts):
            continue
        if p.is_symlink():
            raise CaseInputError(f"{p.name}: symbolic links are not accepted")
        if p.is_file() and p.name not in IGNORED_NAMES:
            out.append(p)
    return out


def files_hash(paths: list[Path], root: Path) -> str:
    """A fingerprint of files' names (relative to ``root``) and bytes."""
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(str(p.relative_to(root)).encode())
        with p.open("rb") as fh:
            for chunk in iter(partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
