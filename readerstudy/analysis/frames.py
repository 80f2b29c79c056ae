"""Snapshot payload → pandas frames, and the canonical hash of a payload.

No Django here: exports, figures and tests build frames from a payload dict alone, so the analysis
of a snapshot can be reproduced from its JSON export without the database.

The payload is the one ``readerstudy.analysis.services.snapshot_create`` freezes::

    {"study": {"id", "name", "status", "reference_standard", "seed", "washout_days", "arms"},
     "reads": [{"reader", "reader_level", "years_experience", "arm", "session", "position",
                "reading_code", "case_id", "case_code", "synthetic", "reference_pirads", "cspca",
                "isup_grade", "gleason", "lesion_side", "pirads", "zone", "side", "likert",
                "comment", "active_seconds", "started_at", "submitted_at"}, ...]}

and its hash is the sha256 of the canonical JSON (sorted keys, no whitespace, ASCII escapes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

REFERENCE_STANDARDS: dict[str, str] = {
    "pirads": "Clinical PI-RADS (4–5 positive, 1–3 negative)",
    "biopsy": "Biopsy: clinically significant prostate cancer (csPCa) positive",
}

# Keys every read of a payload must have.
PAYLOAD_READ_KEYS: tuple[str, ...] = (
    "reader",
    "reader_level",
    "arm",
    "session",
    "reading_code",
    "case_code",
    "synthetic",
    "reference_pirads",
    "cspca",
    "isup_grade",
    "gleason",
    "lesion_side",
    "pirads",
    "zone",
    "side",
    "likert",
    "comment",
    "active_seconds",
    "started_at",
    "submitted_at",
)

# One row per submitted read; the order is the CSV column order. ``case`` is the cohort case code
# (coordinators only), ``biopsy_side`` the cohort's lesion side. The names are the input columns of
# ``readerstudy.stats.study_analyse``, which reads this frame as it is (nullable dtypes included).
READ_FIELDS: tuple[str, ...] = (
    "study",
    "reader",
    "reader_level",
    "reading_code",
    "case",
    "arm",
    "session",
    "pirads",
    "zone",
    "side",
    "likert",
    "comment",
    "active_seconds",
    "started_at",
    "submitted_at",
    "reference_pirads",
    "cspca",
    "isup",
    "gleason",
    "biopsy_side",
    "synthetic",
)

_INT_FIELDS = ("session", "pirads", "likert", "reference_pirads", "isup")


def payload_canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """The bytes the snapshot hash is taken of (as ``snapshot_create`` writes them)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def payload_sha256(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(payload_canonical_bytes(payload)).hexdigest()


def payload_validate(payload: Mapping[str, Any]) -> None:
    """Refuse a payload that the analysis could misread, with a message that says what is wrong."""
    study = payload.get("study")
    if not isinstance(study, Mapping):
        raise ValueError("snapshot payload has no 'study' object")
    for name in ("name", "reference_standard", "arms"):
        if name not in study:
            raise ValueError(f"snapshot payload's study lacks {name!r}")
    reference = study.get("reference_standard")
    if reference not in REFERENCE_STANDARDS:
        raise ValueError(
            f"unknown reference standard {reference!r}; expected one of {sorted(REFERENCE_STANDARDS)}"
        )
    reads = payload.get("reads")
    if not isinstance(reads, Sequence) or isinstance(reads, str):
        raise ValueError("snapshot payload has no 'reads' list")
    seen: set[tuple[str, str, str]] = set()
    for i, read in enumerate(reads):
        if not isinstance(read, Mapping):
            raise ValueError(f"read #{i} is not an object")
        missing = [f for f in PAYLOAD_READ_KEYS if f not in read]
        if missing:
            raise ValueError(f"read #{i} lacks field(s) {', '.join(missing)}")
        key = (str(read["reader"]), str(read["arm"]), str(read["case_code"]))
        if key in seen:
            raise ValueError(f"read #{i} duplicates reader/arm/case {key}")
        seen.add(key)


def reads_frame(payload: Mapping[str, Any]) -> pd.DataFrame:
    """One row per read, columns READ_FIELDS, nullable integer dtypes, timestamps as UTC datetimes,
    sorted by reader, arm (design order), case."""
    payload_validate(payload)
    arms = list(payload["study"]["arms"])
    records = [
        {
            "study": payload["study"]["name"],
            "reader": r["reader"],
            "reader_level": r["reader_level"],
            "reading_code": r["reading_code"],
            "case": r["case_code"],
            "arm": r["arm"],
            "session": r["session"],
            "pirads": r["pirads"],
            "zone": r["zone"],
            "side": r["side"],
            "likert": r["likert"],
            "comment": r["comment"],
            "active_seconds": r["active_seconds"],
            "started_at": r["started_at"],
            "submitted_at": r["submitted_at"],
            "reference_pirads": r["reference_pirads"],
            "cspca": r["cspca"],
            "isup": r["isup_grade"],
            "gleason": r["gleason"],
            "biopsy_side": r["lesion_side"],
            "synthetic": bool(r["synthetic"]),
        }
        for r in payload["reads"]
    ]
    frame = pd.DataFrame.from_records(records, columns=list(READ_FIELDS))
    for name in _INT_FIELDS:
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    frame["active_seconds"] = pd.to_numeric(frame["active_seconds"], errors="raise").astype(
        "float64"
    )
    frame["cspca"] = pd.array(frame["cspca"].tolist(), dtype="boolean")
    frame["synthetic"] = frame["synthetic"].astype(bool)
    for name in ("started_at", "submitted_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name in ("study", "reader", "reader_level", "reading_code", "case", "arm"):
        frame[name] = frame[name].astype("string")
    for name in ("zone", "side", "comment", "biopsy_side", "gleason"):
        frame[name] = frame[name].fillna("").astype("string")
    order = {a: i for i, a in enumerate(arms)}
    frame["_arm_order"] = frame["arm"].map(lambda a: order.get(a, len(order)))
    frame = frame.sort_values(["reader", "_arm_order", "case"], kind="stable")
    return frame.drop(columns="_arm_order").reset_index(drop=True)


def truth_series(reads: pd.DataFrame, *, reference: str) -> pd.Series:
    """Per-read truth (1 positive, 0 negative, <NA> unknown) under the study's reference standard."""
    if reference == "pirads":
        ref = reads["reference_pirads"]
        return pd.Series(
            pd.array([None if pd.isna(v) else int(v >= 4) for v in ref], dtype="Int64"),
            index=reads.index,
        )
    if reference == "biopsy":
        return pd.Series(
            pd.array([None if pd.isna(v) else int(bool(v)) for v in reads["cspca"]], dtype="Int64"),
            index=reads.index,
        )
    raise ValueError(f"unknown reference standard {reference!r}")
