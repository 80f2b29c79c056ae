"""Cohort inputs: safe zip extraction, the manifest CSV, DICOM-only folders → cases to import.

Nothing here writes to the database or to storage; `registration.services.cohort_import` does.
Messages name the manifest row and column, or the file, so a coordinator can fix the input.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import nibabel as nib
import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from registration.dicom_io import (
    SEG_STORAGE,
    DicomInputError,
    LoadedSeries,
    header_read,
    is_dicom,
    seg_load_onto,
    series_load,
)
from registration.services import CaseImage, CaseInput, grid_matches

MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("case_code", "reference_pirads", "mr_t2")
OPTIONAL_COLUMNS = (
    "age",
    "cspca",
    "isup_grade",
    "gleason",
    "lesion_side",
    "trus",
    "mr_label",
    "trus_label",
    "mr_landmarks",
    "trus_landmarks",
    "synthetic",
)
IMAGE_COLUMNS = ("mr_t2", "trus", "mr_label", "trus_label", "mr_landmarks", "trus_landmarks")
# column -> (modality, kind, the image column whose grid it must share, expected DICOM modality)
COLUMN_ROLES: dict[str, tuple[str, str, str, str]] = {
    "mr_t2": ("MR_T2", "original", "", "MR"),
    "trus": ("US", "original", "", "US"),
    "mr_label": ("MR_T2", "label", "mr_t2", ""),
    "trus_label": ("US", "label", "trus", ""),
    "mr_landmarks": ("MR_T2", "landmarks", "mr_t2", ""),
    "trus_landmarks": ("US", "landmarks", "trus", ""),
}
CASE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
GLEASON_RE = re.compile(r"^([1-5])\+([1-5])$")
IGNORED_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}


class ImportInputError(ValueError):
    """The input as a whole cannot be imported (nothing is stored)."""


class CaseInputError(ValueError):
    """One case cannot be imported (the others still can)."""


def default_cohort_name(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".ZIP"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or "cohort"


# --- zip / folder ---------------------------------------------------------------------------------


def _member_check(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if "\\" in name:
        name = name.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ImportInputError(f"zip member '{info.filename}' has an absolute path; refused")
    if ".." in pure.parts:
        raise ImportInputError(
            f"zip member '{info.filename}' contains '..' (path traversal); refused"
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ImportInputError(f"zip member '{info.filename}' is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise ImportInputError(f"zip member '{info.filename}' is encrypted; refused")
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
        raise ImportInputError(f"{zip_path.name}: not a readable zip file ({exc})") from exc
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
        names = [_member_check(i) for i in infos]
        written = 0
        for info, name in zip(infos, names):
            if info.compress_size and info.file_size / max(info.compress_size, 1) > max_ratio:
                raise ImportInputError(
                    f"zip member '{info.filename}' has compression ratio above {max_ratio:.0f}:1 "
                    "(zip bomb?)"
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
                                f"zip member '{info.filename}' inflates beyond its declared size "
                                "or the size limit (zip bomb?)"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib_error(), EOFError) as exc:
                raise ImportInputError(f"zip member '{info.filename}' is corrupt ({exc})") from exc


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
        raise ImportInputError(f"{path}: no such file or folder")
    tmp_root = Path(settings.MEDIA_ROOT) / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    dest = tmp_root / f"extract-{uuid.uuid4().hex}"
    dest.mkdir()
    try:
        if not zipfile.is_zipfile(path):
            raise ImportInputError(
                f"{path.name}: not a zip file (upload a .zip of the cohort folder)"
            )
        zip_extract_safe(
            path,
            dest,
            max_bytes=int(settings.MRITRUS_IMPORT_MAX_BYTES),
            max_ratio=float(settings.MRITRUS_IMPORT_MAX_RATIO),
            max_files=int(settings.MRITRUS_IMPORT_MAX_FILES),
        )
        yield _single_subfolder(dest.resolve())
    finally:
        shutil.rmtree(dest, ignore_errors=True)


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


def _files_under(folder: Path) -> list[Path]:
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


def _hash_files(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(str(p.relative_to(root)).encode())
        with p.open("rb") as fh:
            for chunk in iter(partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# --- one case to import ---------------------------------------------------------------------------


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


def cases_iterate(*, root: Path, salt: str, notes: list[str]) -> Iterator[CaseItem]:
    if (root / MANIFEST_NAME).is_file():
        yield from _manifest_cases(root=root, notes=notes)
    else:
        yield from _dicom_only_cases(root=root, salt=salt, notes=notes)


# --- manifest -------------------------------------------------------------------------------------


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
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
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
            f"row {line}, column {column}: '{value}' is an absolute path; paths must be relative to the manifest",
        )
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return (
            None,
            f"row {line}, column {column}: '{value}' leaves the cohort folder ('..' is not allowed)",
        )
    path = root / value
    if not path.exists():
        return None, f"row {line}, column {column}: '{value}' does not exist"
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return None, f"row {line}, column {column}: '{value}' points outside the cohort folder"
    return path, None


def _manifest_cases(*, root: Path, notes: list[str]) -> Iterator[CaseItem]:
    header, rows = _manifest_read(root)
    unknown = [h for h in header if h and h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
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
        for column in IMAGE_COLUMNS:
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
                files += _files_under(p) if p.is_dir() else [p]
            digest = hashlib.sha256(
                json.dumps({k: row.get(k, "") for k in sorted(row)}, sort_keys=True).encode()
            )
            digest.update(_hash_files(files, root).encode())
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
        for column in IMAGE_COLUMNS:
            if column not in paths:
                continue
            where = f"row {line}, column {column}: "
            try:
                loaded = _image_load(root=root, column=column, path=paths[column], images=images)
            except (DicomInputError, _ImageError) as exc:
                raise CaseInputError(f"{where}{exc}") from exc
            images.update({im.column: im for im in loaded})
        return CaseInput(
            case_code=code, fields=fields, images=list(images.values()), fingerprint=fingerprint
        )

    return load


class _ImageError(ValueError):
    pass


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _nifti_load(path: Path, root: Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    name = _rel(path, root)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise _ImageError(
            f"'{name}' is neither a NIfTI file (.nii, .nii.gz) nor a DICOM series folder"
        )
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float64)  # type: ignore[attr-defined]
        affine = np.asarray(img.affine, dtype=np.float64)  # type: ignore[attr-defined]
    except Exception as exc:  # nibabel/gzip/zlib raise many unrelated types for bad files
        raise _ImageError(f"'{name}' is not a readable NIfTI file ({exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if not np.all(np.isfinite(data)):
        raise _ImageError(f"'{name}' contains NaN or infinite voxel values")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise _ImageError(f"'{name}' has an invalid (singular or non-finite) affine")
    return data, affine


def _image_load(
    *, root: Path, column: str, path: Path, images: dict[str, CaseImage]
) -> list[CaseImage]:
    modality, kind, parent_column, dicom_modality = COLUMN_ROLES[column]
    parent = images.get(parent_column) if parent_column else None
    name = _rel(path, root)
    if path.is_dir():
        files = _files_under(path)
        if not files:
            raise _ImageError(f"'{name}' is an empty folder")
        for f in files:
            if not is_dicom(f):
                raise _ImageError(
                    f"{_rel(f, root)}: not a DICOM file (non-image file in a series folder)"
                )
        series = series_load(files, root=root)
        if dicom_modality and series.modality != dicom_modality:
            raise _ImageError(
                f"'{name}' has DICOM modality '{series.modality}', expected {dicom_modality}"
            )
        array: NDArray[Any] = series.volume
        if kind == "label":
            array = (array > 0.5).astype(np.uint8)  # as for NIfTI: any zone is gland
        elif kind == "landmarks":
            if not series.integer_valued or array.min() < 0 or array.max() > 255:
                raise _ImageError(f"'{name}' landmark values must be integers 0–255")
            array = array.astype(np.uint8)
        affine = series.affine
        image = CaseImage(
            column=column,
            modality=modality,
            kind=kind,
            array=array,
            affine=affine,
            source=name,
            source_format="dicom",
            dicom=series if kind == "original" else None,
            label_of_column=parent_column,
        )
    elif is_dicom(path):
        header = header_read(path, root=root)
        if header.get("SOPClassUID") != SEG_STORAGE or kind != "label":
            raise _ImageError(
                f"'{name}' is a single DICOM file; give a series folder (or a DICOM SEG for a label)"
            )
        if parent is None or parent.dicom is None:
            raise _ImageError(
                f"'{name}' is a DICOM SEG; its image column {parent_column} must be a DICOM series"
            )
        array = seg_load_onto(path, parent.dicom, root=root)
        image = CaseImage(
            column=column,
            modality=modality,
            kind=kind,
            array=array,
            affine=parent.affine,
            source=name,
            source_format="seg",
            seg_series_uid=str(header.get("SeriesInstanceUID", "")),
            label_of_column=parent_column,
        )
        image.notes.append(
            f"{column}: DICOM SEG read onto its referenced series ({int(array.max())} segment(s))"
        )
    else:
        data, affine = _nifti_load(path, root)
        if kind == "original":
            if data.ndim != 3:
                raise _ImageError(f"'{name}' must be a 3-D volume, got shape {data.shape}")
            array = data.astype(np.float32)
        elif data.ndim == 4:
            # DeepReg layout: channel 0 gland, channels 1.. landmarks (docs/architecture.md).
            from inference.io import deepreg_label_split

            gland, landmarks = deepreg_label_split(data)
            array = gland if kind == "label" else landmarks
        elif data.ndim != 3:
            raise _ImageError(f"'{name}' must be a 3-D label volume, got shape {data.shape}")
        elif kind == "label":
            # Multi-zone masks (e.g. peripheral/transition zone) collapse to whole gland.
            if data.min() < 0:
                raise _ImageError(f"'{name}' has negative label values")
            array = (data > 0.5).astype(np.uint8)
        else:
            rounded = np.rint(data)
            if np.any(np.abs(rounded - data) > 1e-3) or rounded.min() < 0 or rounded.max() > 255:
                raise _ImageError(f"'{name}' landmark values must be integers 0–255")
            array = rounded.astype(np.uint8)
        image = CaseImage(
            column=column,
            modality=modality,
            kind=kind,
            array=array,
            affine=affine,
            source=name,
            source_format="nifti",
            label_of_column=parent_column,
        )
    if parent is not None and not grid_matches(
        shape=image.array.shape,
        affine=image.affine,
        other_shape=parent.array.shape,
        other_affine=parent.affine,
    ):
        raise _ImageError(
            f"'{name}' grid {list(image.array.shape)} does not match the {parent_column} image grid "
            f"{list(parent.array.shape)} (shape or voxel positions differ)"
        )
    if kind in ("label", "landmarks") and not np.any(image.array):
        image.notes.append(f"{column}: the label volume is empty")
    if kind == "original" and float(np.ptp(image.array)) == 0.0:
        raise _ImageError(f"'{name}' is a constant image (no contrast)")
    return [image]


# --- DICOM only -----------------------------------------------------------------------------------

T2_EXCLUDE = (
    "adc",
    "dwi",
    "diff",
    "trace",
    "b800",
    "b1400",
    "dce",
    "t1",
    "perf",
    "calc",
    "loc",
    "scout",
)


def _t2_score(header: Any) -> tuple[int, str]:
    """Higher is more T2-like; 0 means not a T2 candidate. Returns (score, reason)."""
    text = " ".join(
        str(header.get(k, "") or "") for k in ("SeriesDescription", "ProtocolName", "SequenceName")
    ).lower()
    image_type = " ".join(str(v) for v in (header.get("ImageType") or [])).lower()
    if any(word in text for word in T2_EXCLUDE) or "adc" in image_type or "diffusion" in image_type:
        return 0, "not T2 (diffusion, ADC, T1, DCE or localizer by its description)"
    score = 0
    if "t2" in text:
        score += 10
    try:
        if (
            float(header.get("EchoTime", 0) or 0) >= 60
            and float(header.get("RepetitionTime", 0) or 0) >= 1500
        ):
            score += 3
    except (TypeError, ValueError):
        pass
    if score == 0:
        return 0, "not recognisably T2 (no 'T2' in its description, short TE/TR)"
    if any(w in text for w in ("tra", "ax")):
        score += 2
    return score, "T2"


def _dicom_only_cases(*, root: Path, salt: str, notes: list[str]) -> Iterator[CaseItem]:
    files = _files_under(root)
    if not files:
        raise ImportInputError(f"no {MANIFEST_NAME} and no files: nothing to import")
    by_patient: dict[str, dict[str, list[tuple[Path, Any]]]] = {}
    skipped = 0
    for f in files:
        if not is_dicom(f):
            skipped += 1
            notes.append(f"skipped non-DICOM file {_rel(f, root)}")
            continue
        try:
            header = header_read(f, root=root)
        except DicomInputError as exc:
            raise ImportInputError(str(exc)) from exc
        series_uid = str(header.get("SeriesInstanceUID", ""))
        if not series_uid:
            raise ImportInputError(f"{_rel(f, root)}: missing SeriesInstanceUID")
        patient = str(header.get("PatientID", "") or "")
        by_patient.setdefault(patient, {}).setdefault(series_uid, []).append((f, header))
    if not by_patient:
        raise ImportInputError(
            f"no {MANIFEST_NAME} and no DICOM files: the input is neither a manifest cohort nor DICOM"
        )
    for patient, series_map in sorted(by_patient.items()):
        code = dicom_patient_code(patient=patient, salt=salt)
        yield _dicom_patient_case(root=root, code=code, series_map=series_map)


def dicom_patient_code(*, patient: str, salt: str) -> str:
    """The pseudonymous case code of a DICOM-only import's PatientID (STOW-RS maps back with it)."""
    digest = hmac.new(salt.encode(), f"patient|{patient}".encode(), hashlib.sha256).hexdigest()
    return "D" + digest[:12]


def _describe(header: Any, count: int) -> str:
    desc = str(header.get("SeriesDescription", "") or "(no description)")
    return f"'{desc[:40]}' ({header.get('Modality', '?')}, {count} file(s))"


def _dicom_patient_case(
    *, root: Path, code: str, series_map: dict[str, list[tuple[Path, Any]]]
) -> CaseItem:
    notes: list[str] = []
    mr: list[tuple[int, str]] = []
    us: list[tuple[int, str]] = []
    segs: dict[str, tuple[Path, Any]] = {}
    for uid, members in series_map.items():
        header = members[0][1]
        modality = str(header.get("Modality", ""))
        if header.get("SOPClassUID") == SEG_STORAGE:
            for path, h in members:
                for ref in h.get("ReferencedSeriesSequence", []):
                    segs[str(ref.SeriesInstanceUID)] = (path, h)
            continue
        if modality == "MR":
            score, reason = _t2_score(header)
            if score:
                mr.append((score * 1000 + len(members), uid))
            else:
                notes.append(f"skipped series {_describe(header, len(members))}: {reason}")
        elif modality == "US":
            us.append((len(members), uid))
        else:
            notes.append(f"skipped series {_describe(header, len(members))}: modality not MR or US")
    errors = []
    if not mr:
        errors.append("no T2 series found among the DICOM series of this patient")
    mr.sort(reverse=True)
    us.sort(reverse=True)
    for _, uid in mr[1:]:
        notes.append(
            f"skipped series {_describe(series_map[uid][0][1], len(series_map[uid]))}: another T2 series was chosen"
        )
    for _, uid in us[1:]:
        notes.append(
            f"skipped series {_describe(series_map[uid][0][1], len(series_map[uid]))}: another US series was chosen"
        )
    item = CaseItem(case_code=code, row=None, errors=[f"case {code}: {e}" for e in errors])
    if errors:
        return item
    t2_uid = mr[0][1]
    us_uid = us[0][1] if us else ""
    seg = segs.get(t2_uid)
    used = [p for p, _ in series_map[t2_uid]]
    if us_uid:
        used += [p for p, _ in series_map[us_uid]]
    if seg is not None:
        used.append(seg[0])
    item.fingerprint = _hash_files(used, root)

    def load() -> CaseInput:
        images: dict[str, CaseImage] = {}
        picks = [("mr_t2", series_map[t2_uid])]
        if us_uid:
            picks.append(("trus", series_map[us_uid]))
        for column, members in picks:
            modality, kind, _p, _d = COLUMN_ROLES[column]
            try:
                series: LoadedSeries = series_load([p for p, _ in members], root=root)
            except DicomInputError as exc:
                raise CaseInputError(f"case {code}, {column}: {exc}") from exc
            images[column] = CaseImage(
                column=column,
                modality=modality,
                kind=kind,
                array=series.volume,
                affine=series.affine,
                source=_rel(series.files[0].parent, root),
                source_format="dicom",
                dicom=series,
            )
        if seg is not None:
            try:
                label = seg_load_onto(seg[0], images["mr_t2"].dicom, root=root)  # type: ignore[arg-type]
            except DicomInputError as exc:
                raise CaseInputError(f"case {code}, mr_label: {exc}") from exc
            images["mr_label"] = CaseImage(
                column="mr_label",
                modality="MR_T2",
                kind="label",
                array=label,
                affine=images["mr_t2"].affine,
                source=_rel(seg[0], root),
                source_format="seg",
                seg_series_uid=str(seg[1].get("SeriesInstanceUID", "")),
                label_of_column="mr_t2",
            )
        case_notes = notes + [
            "reference PI-RADS unknown (DICOM-only input): fill it in before using the case in a study"
        ]
        return CaseInput(
            case_code=code,
            fields={"reference_pirads": None},
            images=list(images.values()),
            fingerprint=item.fingerprint,
            notes=case_notes,
        )

    item.loader = load
    return item


__all__ = [
    "CaseInputError",
    "ImportInputError",
    "cases_iterate",
    "default_cohort_name",
    "dicom_patient_code",
    "input_open",
    "zip_extract_safe",
]
