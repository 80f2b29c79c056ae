"""DICOM-only inputs (no manifest): files grouped by patient and series, the T2 chosen by its
attributes, other series skipped with a note that quotes only vocabulary words.

Nothing here writes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from registration.dicom.deid import descriptor_clean
from registration.dicom.read import (
    SEG_STORAGE,
    DicomInputError,
    LoadedSeries,
    header_read,
    is_dicom,
    series_load,
)
from registration.dicom.seg import seg_load_onto
from registration.importing.cases import (
    MANIFEST_NAME,
    CaseInputError,
    CaseItem,
    ImportInputError,
    files_hash,
    files_under,
    source_label,
)
from registration.importing.images import COLUMN_ROLES, max_voxels, modality_word
from registration.series import CaseImage, CaseInput

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


def dicom_only_cases(*, root: Path, salt: str, notes: list[str]) -> Iterator[CaseItem]:
    files = files_under(root)
    if not files:
        raise ImportInputError(f"no {MANIFEST_NAME} and no files: nothing to import")
    by_patient: dict[str, dict[str, list[tuple[Path, Any]]]] = {}
    skipped = 0
    for k, f in enumerate(files):
        label = f"file {k + 1} of {len(files)} of the input"
        if not is_dicom(f):
            skipped += 1
            continue
        try:
            header = header_read(f, root=root, label=label)
        except DicomInputError as exc:
            raise ImportInputError(str(exc)) from exc
        series_uid = str(header.get("SeriesInstanceUID", ""))
        if not series_uid:
            raise ImportInputError(f"{label}: missing SeriesInstanceUID")
        patient = str(header.get("PatientID", "") or "")
        by_patient.setdefault(patient, {}).setdefault(series_uid, []).append((f, header))
    if skipped:
        notes.append(f"skipped {skipped} non-DICOM file(s)")
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
    # Only the vocabulary words of the description (PS3.15 clean descriptors), never its text.
    desc = descriptor_clean(header.get("SeriesDescription", "")) or "(no description)"
    return f"'{desc[:40]}' ({modality_word(str(header.get('Modality', '')))}, {count} file(s))"


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
    item.fingerprint = files_hash(used, root)

    item.loader = partial(
        _patient_case_load,
        root=root,
        code=code,
        picks=[("mr_t2", series_map[t2_uid])] + ([("trus", series_map[us_uid])] if us_uid else []),
        seg=seg,
        notes=notes,
        fingerprint=item.fingerprint,
    )
    return item


def _patient_case_load(
    *,
    root: Path,
    code: str,
    picks: list[tuple[str, list[tuple[Path, Any]]]],
    seg: tuple[Path, Any] | None,
    notes: list[str],
    fingerprint: str,
) -> CaseInput:
    """Read the chosen series of one DICOM-only patient (and the SEG on its T2)."""
    images: dict[str, CaseImage] = {}
    for column, members in picks:
        modality, kind, _p, _d = COLUMN_ROLES[column]
        try:
            series: LoadedSeries = series_load(
                [p for p, _ in members], root=root, max_voxels=max_voxels()
            )
        except DicomInputError as exc:
            raise CaseInputError(f"case {code}, {column}: {exc}") from exc
        images[column] = CaseImage(
            column=column,
            modality=modality,
            kind=kind,
            array=series.volume,
            affine=series.affine,
            source=source_label(series.files, kind="dicom"),
            source_format="dicom",
            dicom=series,
        )
    if seg is not None:
        try:
            label = seg_load_onto(
                seg[0],
                images["mr_t2"].dicom,  # type: ignore[arg-type]
                root=root,
                max_voxels=max_voxels(),
            )
        except DicomInputError as exc:
            raise CaseInputError(f"case {code}, mr_label: {exc}") from exc
        images["mr_label"] = CaseImage(
            column="mr_label",
            modality="MR_T2",
            kind="label",
            array=label,
            affine=images["mr_t2"].affine,
            source=source_label([seg[0]], kind="seg"),
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
        fingerprint=fingerprint,
        notes=case_notes,
    )
