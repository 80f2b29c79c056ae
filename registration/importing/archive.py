"""Opening a cohort input: a folder as it is, or a zip extracted under ``MEDIA_ROOT/tmp`` with path,
link, count, size and compression-ratio checks (zip bombs, traversal)."""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path, PurePosixPath

from django.conf import settings

from registration.dicom.read import error_text
from registration.importing.cases import IGNORED_NAMES, MANIFEST_NAME, ImportInputError
from registration.storage import tmp_folder


def _member_check(info: zipfile.ZipInfo, *, index: int) -> str:
    name = info.filename
    label = f"zip member {index + 1}"
    if "\\" in name:
        name = name.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ImportInputError(f"{label} has an absolute path; refused")
    if ".." in pure.parts:
        raise ImportInputError(f"{label} contains '..' (path traversal); refused")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ImportInputError(f"{label} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise ImportInputError(f"{label} is encrypted; refused")
    return name


def zip_extract_safe(
    zip_path: Path, dest: Path, *, max_bytes: int, max_ratio: float, max_files: int
) -> None:
    """Extract with path, link, count, size and compression-ratio checks (before and while writing).

    Declared sizes are checked first; the bytes actually inflated are counted too, because a zip
    header can lie about them.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportInputError(
            f"the upload is not a readable zip file ({error_text(exc)})"
        ) from exc
    with zf:
        infos = zf.infolist()
        files = [i for i in infos if not i.is_dir()]
        if len(files) > max_files:
            raise ImportInputError(
                f"the zip holds {len(files)} files, more than the limit of {max_files}"
            )
        total = sum(i.file_size for i in files)
        if total > max_bytes:
            raise ImportInputError(
                f"the zip would expand to {total} bytes, more than the limit of {max_bytes}"
            )
        compressed = sum(i.compress_size for i in files)
        if compressed and total / compressed > max_ratio:
            raise ImportInputError(
                f"the zip's compression ratio {total / compressed:.0f}:1 exceeds the limit "
                f"{max_ratio:.0f}:1 (zip bomb?)"
            )
        names = [_member_check(i, index=k) for k, i in enumerate(infos)]
        written = 0
        for index, (info, name) in enumerate(zip(infos, names)):
            label = f"zip member {index + 1}"
            if info.compress_size and info.file_size / max(info.compress_size, 1) > max_ratio:
                raise ImportInputError(
                    f"{label} has compression ratio above {max_ratio:.0f}:1 (zip bomb?)"
                )
            target = dest / name
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            member_bytes = 0
            try:
                with zf.open(info) as src, target.open("wb") as out:
                    for chunk in iter(partial(src.read, 1 << 20), b""):
                        member_bytes += len(chunk)
                        written += len(chunk)
                        if member_bytes > info.file_size or written > max_bytes:
                            raise ImportInputError(
                                f"{label} inflates beyond its declared size "
                                "or the size limit (zip bomb?)"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib_error(), EOFError) as exc:
                raise ImportInputError(f"{label} is corrupt (damaged compressed data)") from exc


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


@contextmanager
def input_open(path: Path) -> Iterator[Path]:
    """Yield the folder to import from: the folder itself, or a zip extracted under MEDIA_ROOT/tmp."""
    if path.is_dir():
        yield _single_subfolder(path.resolve())
        return
    if not path.is_file():
        raise ImportInputError("the input is neither a file nor a folder")
    with tmp_folder("extract") as dest:
        if not zipfile.is_zipfile(path):
            raise ImportInputError(
                "the upload is not a zip file (upload a .zip of the cohort folder)"
            )
        zip_extract_safe(
            path,
            dest,
            max_bytes=int(settings.MRITRUS_IMPORT_MAX_BYTES),
            max_ratio=float(settings.MRITRUS_IMPORT_MAX_RATIO),
            max_files=int(settings.MRITRUS_IMPORT_MAX_FILES),
        )
        yield _single_subfolder(dest.resolve())


def _visible(path: Path) -> bool:
    return (
        not path.name.startswith(".") and path.name != "__MACOSX" and path.name not in IGNORED_NAMES
    )


def _single_subfolder(root: Path) -> Path:
    """A zip of a folder holds that folder: look inside when it is the only entry."""
    if (root / MANIFEST_NAME).is_file():
        return root
    entries = [p for p in root.iterdir() if _visible(p)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return _single_subfolder(entries[0])
    return root
