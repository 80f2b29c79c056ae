"""Reader-study writes of reads: drafts, submission, reopening, and the view audit.

Also the audit trail and the coordinator check that every reader-study write uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.permissions import user_is_coordinator
from readerstudy.display import MATRIX, PIXEL_MM, SLICE_MM, SLICES, display_offset
from readerstudy.models import Assignment, AuditEvent, Read, ReaderStudy
from readerstudy.selectors import assignment_is_available

# One save can credit at most this much active time: a stuck tab must not inflate reading time.
MAX_ACTIVE_SECONDS_PER_SAVE = 1800.0


def audit_event_create(
    *,
    study: ReaderStudy,
    user: User,
    action: str,
    assignment: Assignment | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        study=study, user=user, action=action, assignment=assignment, details=dict(details or {})
    )


def coordinator_require(user: User) -> None:
    """The service-level role check (views and the API check first; this guards every caller)."""
    if not user_is_coordinator(user):
        raise PermissionDenied("coordinators only")


# What each field is called in the messages a reader sees (they are shown as written).
FIELD_WORDS = {
    "pirads": ("Choose a PI-RADS score", "The PI-RADS score is a whole number from 1 to 5."),
    "zone": ("Choose the zone of the lesion", "The zone is peripheral, transition or none."),
    "side": ("Choose the side of the lesion", "The side is left, right, bilateral or none."),
    "likert": (
        "Choose your confidence (1–7)",
        "The confidence is a whole number from 1 to 7.",
    ),
}


def _clean_mark(value: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The lesion mark ``{"x", "y", "z", "slice"}`` (display mm, 0-based slice) or none."""

    empty = {
        "mark_x": None,
        "mark_y": None,
        "mark_z": None,
        "mark_slice": None,
        "mark_diameter": None,
    }
    if value in (None, "", {}):
        return empty
    wrong = "The lesion mark must be a point on the image: click the lesion again."
    try:
        x, y, z = (float(value[k]) for k in ("x", "y", "z"))
        index = int(value["slice"])
    except (TypeError, ValueError, KeyError):
        errors.setdefault("mark", []).append(wrong)
        return empty
    half = (MATRIX / 2) * PIXEL_MM
    on_slice = abs(z - float(display_offset(slice_index=index)[2])) <= SLICE_MM / 2 + 1e-6
    if not (0 <= index < SLICES and abs(x) <= half and abs(y) <= half and on_slice):
        errors.setdefault("mark", []).append(wrong)
        return empty
    diameter = None
    if value.get("diameter"):
        diameter = _clean_diameter(value["diameter"], z=z, half=half, errors=errors)
    return {
        "mark_x": round(x, 2),
        "mark_y": round(y, 2),
        "mark_z": round(z, 2),
        "mark_slice": index,
        "mark_diameter": diameter,
    }


def _clean_diameter(
    value: Any, *, z: float, half: float, errors: dict[str, list[str]]
) -> dict[str, Any] | None:
    """The longest diameter ``{"a": [x, y, z], "b": [x, y, z]}`` on the mark's slice, with its
    length in mm (computed here, never taken from the browser)."""
    wrong = "The diameter must join two points on the lesion's slice: measure it again."
    try:
        a, b = ([float(v) for v in value[k]] for k in ("a", "b"))
    except (TypeError, ValueError, KeyError):
        errors.setdefault("mark", []).append(wrong)
        return None
    ok = len(a) == len(b) == 3 and all(
        abs(p[0]) <= half and abs(p[1]) <= half and abs(p[2] - z) <= 1e-3 for p in (a, b)
    )
    length = math.dist(a, b)
    if not ok or not 0 < length <= 2 * half:
        errors.setdefault("mark", []).append(wrong)
        return None
    return {
        "a": [round(v, 2) for v in a],
        "b": [round(v, 2) for v in b],
        "mm": round(length, 1),
    }


def _clean_scores(data: Mapping[str, Any], *, complete: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}

    def integer(name: str, low: int, high: int) -> None:
        value = data.get(name)
        if value in (None, ""):
            cleaned[name] = None
            return
        try:
            number = int(value)
        except (TypeError, ValueError):
            errors.setdefault(name, []).append(FIELD_WORDS[name][1])
            return
        if not low <= number <= high or str(value).strip() not in (str(number), f"{number}.0"):
            errors.setdefault(name, []).append(FIELD_WORDS[name][1])
            return
        cleaned[name] = number

    def choice(name: str, allowed: Iterable[str]) -> None:
        value = data.get(name) or ""
        if value not in ["", *allowed]:
            errors.setdefault(name, []).append(FIELD_WORDS[name][1])
            return
        cleaned[name] = value

    integer("pirads", 1, 5)
    integer("likert", 1, 7)
    cleaned.update(_clean_mark(data.get("mark"), errors))
    choice("zone", Read.Zone.values)
    choice("side", Read.Side.values)
    comment = str(data.get("comment") or "")
    if len(comment) > 4000:
        errors.setdefault("comment", []).append("The comment is limited to 4000 characters.")
    cleaned["comment"] = comment
    if complete and not errors:
        for name in ("pirads", "zone", "side", "likert"):
            if cleaned.get(name) in (None, ""):
                errors.setdefault(name, []).append(f"{FIELD_WORDS[name][0]}.")
    if errors:
        raise ValidationError(errors)
    return cleaned


def _credit(seconds: float | int | str | None) -> float:
    try:
        value = float(seconds or 0)
    except (TypeError, ValueError):
        return 0.0
    if value != value or value < 0:  # NaN or negative
        return 0.0
    return min(value, MAX_ACTIVE_SECONDS_PER_SAVE)


def _editable_read(*, assignment: Assignment, user: User) -> Read:

    if assignment.reader.user_id != user.pk:
        raise PermissionDenied("not your assignment")
    if not assignment_is_available(assignment=assignment):
        raise ValidationError("This case is not open for reading.")
    read, _ = Read.objects.select_for_update().get_or_create(assignment=assignment)
    if read.status == Read.Status.SUBMITTED:
        raise ValidationError("This read is submitted; only a coordinator can reopen it.")
    return read


@transaction.atomic
def read_draft_save(
    *, assignment: Assignment, user: User, data: Mapping[str, Any], active_seconds: float = 0.0
) -> Read:
    """Save whatever the reader has entered so far and credit the active time since last save."""
    read = _editable_read(assignment=assignment, user=user)
    cleaned = _clean_scores(data, complete=False)
    for name, value in cleaned.items():
        setattr(read, name, value)
    credit = _credit(active_seconds)
    read.active_seconds += credit
    read.save()
    audit_event_create(
        study=assignment.study,
        user=user,
        action=AuditEvent.Action.DRAFT_SAVE,
        assignment=assignment,
        details={"active_seconds": round(credit, 3)},
    )
    return read


@transaction.atomic
def read_submit(
    *, assignment: Assignment, user: User, data: Mapping[str, Any], active_seconds: float = 0.0
) -> Read:
    read = _editable_read(assignment=assignment, user=user)
    cleaned = _clean_scores(data, complete=True)
    threshold = assignment.study.mark_required_from
    if threshold is not None and cleaned["pirads"] >= threshold and cleaned["mark_slice"] is None:
        raise ValidationError(
            {
                "mark": [
                    f"Mark the lesion on the image (press M, then click it): a score of "
                    f"{threshold} or more needs its location."
                ]
            }
        )
    for name, value in cleaned.items():
        setattr(read, name, value)
    credit = _credit(active_seconds)
    read.active_seconds += credit
    read.status = Read.Status.SUBMITTED
    read.submitted_at = timezone.now()
    read.save()
    audit_event_create(
        study=assignment.study,
        user=user,
        action=AuditEvent.Action.SUBMIT,
        assignment=assignment,
        details={
            "active_seconds": round(credit, 3),
            "total_seconds": round(read.active_seconds, 3),
        },
    )
    return read


@transaction.atomic
def read_reopen(*, read: Read, user: User, reason: str) -> Read:
    """Let the reader change a submitted read again (coordinator only, audited with the reason)."""
    coordinator_require(user)
    read = Read.objects.select_for_update().select_related("assignment__study").get(pk=read.pk)
    study = read.assignment.study
    if study.status != ReaderStudy.Status.OPEN:
        raise ValidationError("Reads can only be reopened while the study is open.")
    if read.status != Read.Status.SUBMITTED:
        raise ValidationError("Only a submitted read can be reopened.")
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["Give the reason for reopening (it is audited)."]})
    read.status = Read.Status.DRAFT
    read.save(update_fields=["status", "updated_at"])
    audit_event_create(
        study=study,
        user=user,
        action=AuditEvent.Action.REOPEN,
        assignment=read.assignment,
        details={"reason": reason[:500]},
    )
    return read


def assignment_view_record(*, assignment: Assignment, user: User) -> AuditEvent:
    return audit_event_create(
        study=assignment.study, user=user, action=AuditEvent.Action.VIEW, assignment=assignment
    )
