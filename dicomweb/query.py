"""QIDO-RS query parameters (PS3.18 §8.3.4) and DICOM JSON (PS3.18 Annex F), as pure functions.

Records are plain ``{keyword: value}`` dicts built by the selectors; this module matches them
against the query keys, applies limit/offset, and encodes the requested attributes.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR as _dictionary_VR
from pydicom.datadict import keyword_for_tag
from pydicom.datadict import tag_for_keyword as _tag_for_keyword

# Looked up for every attribute of every record: memoised (the dictionary never changes).
dictionary_VR = functools.lru_cache(maxsize=4096)(_dictionary_VR)
tag_for_keyword = functools.lru_cache(maxsize=4096)(_tag_for_keyword)

RESERVED = {"limit", "offset", "includefield", "fuzzymatching", "emptyvalue", "_"}
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")

# Attributes returned by default at each level (PS3.18 Table 6.7.1-2, those this server holds).
STUDY_FIELDS = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstanceAvailability",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "RetrieveURL",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = (
    "SpecificCharacterSet",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesInstanceUID",
    "SeriesDate",
    "NumberOfSeriesRelatedInstances",
    "RetrieveURL",
    "StudyInstanceUID",
)
INSTANCE_FIELDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceAvailability",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
    "RetrieveURL",
    "StudyInstanceUID",
    "SeriesInstanceUID",
)
LEVEL_FIELDS = {"study": STUDY_FIELDS, "series": SERIES_FIELDS, "instance": INSTANCE_FIELDS}


class QueryError(ValueError):
    """A query the client must fix (400)."""


@dataclass
class Query:
    filters: dict[str, str] = field(default_factory=dict)  # keyword -> value
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def keyword_of(key: str) -> str:
    """A DICOM keyword from a keyword or an 8-digit tag; QueryError for anything else."""
    name = key.split(".")[0]  # sequence paths (a.b) are matched on their first keyword only
    if _TAG.match(name):
        found = keyword_for_tag(int(name, 16))
        if found:
            return str(found)
    elif tag_for_keyword(name) is not None:
        return name
    raise QueryError(f"{key!r} is not a DICOM attribute keyword or tag")


def _non_negative(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise QueryError(f"{name} must be a non-negative integer, got {value!r}")
    return number


def query_parse(params: Iterable[tuple[str, str]], *, supported: set[str]) -> Query:
    """Parse the query string; keys outside ``supported`` are ignored with a warning (§8.3.4.1)."""
    query = Query()
    for key, value in params:
        if key == "limit":
            query.limit = _non_negative(key, value)
        elif key == "offset":
            query.offset = _non_negative(key, value)
        elif key == "includefield":
            for item in (v.strip() for v in value.split(",")):
                if item == "all":
                    query.include_all = True
                elif item:
                    query.include.add(keyword_of(item))
        elif key in RESERVED:
            continue
        else:
            keyword = keyword_of(key)
            if keyword not in supported:
                query.warnings.append(f"the query key {key} is not supported and was ignored")
                continue
            query.filters[keyword] = value
    return query


def _value_match(keyword: str, wanted: str, value: Any) -> bool:
    if wanted == "":
        return True
    vr = dictionary_VR(keyword)
    values = value if isinstance(value, (list, tuple)) else [value]
    texts = ["" if v is None else str(v) for v in values]
    if vr == "UI":
        allowed = {u.strip() for u in re.split(r"[,\\]", wanted) if u.strip()}
        return any(t in allowed for t in texts)
    if vr in ("DA", "TM", "DT") and "-" in wanted:
        lo, _, hi = wanted.partition("-")
        return any(t and (not lo or t >= lo) and (not hi or t <= hi + "\uffff") for t in texts)
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return any(t == wanted.strip() for t in texts)
    options = [w for w in re.split(r"[\\]", wanted) if w] if vr == "CS" else [wanted]
    if vr == "CS" and "," in wanted:
        options = [w.strip() for w in wanted.split(",") if w.strip()]
    fold = vr == "PN"
    for option in options:
        pattern = option.lower() if fold else option
        for t in texts:
            candidate = t.lower() if fold else t
            if ("*" in pattern or "?" in pattern) and fnmatch.fnmatchcase(candidate, pattern):
                return True
            if candidate == pattern:
                return True
    return False


def records_filter(
    records: list[dict[str, Any]], query: Query
) -> tuple[list[dict[str, Any]], bool]:
    """Matching records after offset and limit, and whether more remain."""
    matched = [
        r for r in records if all(_value_match(k, v, r.get(k)) for k, v in query.filters.items())
    ]
    page = matched[query.offset :]
    more = query.limit is not None and len(page) > query.limit
    if query.limit is not None:
        page = page[: query.limit]
    return page, more


def _json_value(vr: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"vr": vr}
    values = value if isinstance(value, (list, tuple)) else [value]
    values = [v for v in values if v not in (None, "")]
    if not values:
        return out
    if vr == "PN":
        out["Value"] = [{"Alphabetic": str(v)} for v in values]
    elif vr in ("IS", "US", "UL", "SS", "SL"):
        out["Value"] = [int(v) for v in values]
    elif vr in ("DS", "FL", "FD"):
        out["Value"] = [float(v) for v in values]
    else:
        out["Value"] = [str(v) for v in values]
    return out


@functools.lru_cache(maxsize=4096)
def _attribute(keyword: str) -> tuple[str, str] | None:
    """(tag as 8 hex digits, VR) of a keyword; None for our own record keys (``_header``)."""
    tag = tag_for_keyword(keyword)
    return None if tag is None else (f"{tag:08X}", str(dictionary_VR(keyword)))


def records_json(
    records: list[dict[str, Any]], *, level: str, query: Query
) -> list[dict[str, Any]]:
    """DICOM JSON of records (all with the same keys): the level's default attributes, the query
    keys and the includefields, in tag order. The columns are worked out once per answer."""
    if not records:
        return []
    first = records[0]
    wanted = (
        set(first)
        if query.include_all
        else set(LEVEL_FIELDS[level]) | set(query.filters) | query.include
    )
    columns = sorted(
        (attr[0], attr[1], keyword)
        for keyword in wanted
        if keyword in first and (attr := _attribute(keyword)) is not None
    )
    return [{tag: _json_value(vr, r[keyword]) for tag, vr, keyword in columns} for r in records]
