"""The reference standard of cases (clinical PI-RADS, biopsy): what is missing, and its edits.

A DICOM-only import has no clinical data; reader studies refuse such cases (readerstudy
``study_create``), and coordinators fill them in here instead of the Django admin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import User
from registration.models import Case, Cohort

GLEASON = re.compile(r"^[1-5]\+[1-5]$")
# What each reader-study reference standard needs of a case.
NEEDED_FIELD = {"pirads": "reference_pirads", "biopsy": "cspca"}
NEEDED_WORDS = {"pirads": "clinical PI-RADS", "biopsy": "biopsy result (csPCa yes/no)"}


def cohort_cases_missing_reference(*, cohort: Cohort, standard: str) -> list[Case]:
    """Cases of ``cohort`` without the field that the ``standard`` (pirads/biopsy) needs."""
    field = NEEDED_FIELD[standard]
    return list(cohort.cases.filter(**{f"{field}__isnull": True}).order_by("case_code"))


def gleason_isup(gleason: str) -> int:
    """ISUP grade group of a Gleason score "p+s" (Epstein et al. 2016)."""
    primary, secondary = (int(v) for v in gleason.split("+"))
    total = primary + secondary
    if total <= 6:
        return 1
    if total == 7:
        return 2 if primary == 3 else 3
    return 4 if total == 8 else 5


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    raw = str(data.get("reference_pirads") or "").strip()
    if raw and raw not in {"1", "2", "3", "4", "5"}:
        errors["reference_pirads"] = ["Choose a PI-RADS score from 1 to 5."]
    cleaned["reference_pirads"] = int(raw) if raw in {"1", "2", "3", "4", "5"} else None
    cspca = str(data.get("cspca") or "").strip()
    if cspca not in {"", "yes", "no"}:
        errors["cspca"] = ["Say whether biopsy found clinically significant cancer: yes or no."]
    cleaned["cspca"] = {"yes": True, "no": False}.get(cspca)
    isup = str(data.get("isup_grade") or "").strip()
    if isup and isup not in {"0", "1", "2", "3", "4", "5"}:
        errors["isup_grade"] = ["The ISUP grade group is 0 (no cancer) to 5."]
    cleaned["isup_grade"] = int(isup) if isup in {"0", "1", "2", "3", "4", "5"} else None
    gleason = str(data.get("gleason") or "").strip().replace(" ", "")
    if gleason and not GLEASON.match(gleason):
        errors["gleason"] = ["Write the Gleason score as primary+secondary, e.g. 3+4."]
    cleaned["gleason"] = gleason
    side = str(data.get("lesion_side") or "").strip()
    if side not in {"", *Case.Side.values}:
        errors["lesion_side"] = ["The lesion side is left, right, bilateral or none."]
    cleaned["lesion_side"] = side
    if gleason and cleaned["isup_grade"] is not None and GLEASON.match(gleason):
        expected = gleason_isup(gleason)
        if expected != cleaned["isup_grade"]:
            errors["isup_grade"] = [
                f"Gleason {gleason} is ISUP grade group {expected}, not {cleaned['isup_grade']}."
            ]
    isup_cspca = cleaned["isup_grade"], cleaned["cspca"]
    # ISUP ≥ 2 is the usual definition of clinically significant cancer.
    if None not in isup_cspca and isup_cspca[1] != (isup_cspca[0] >= 2):
        errors["cspca"] = [
            f"ISUP grade group {isup_cspca[0]} and csPCa '{cspca}' disagree"
            " (csPCa means ISUP 2 or more)."
        ]
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def case_reference_update(*, case: Case, user: User, data: Mapping[str, Any]) -> Case:
    """Set a case's reference standard fields (coordinators); empty values clear them."""
    if not user.is_coordinator:
        raise PermissionDenied("coordinators only")
    cleaned = _clean(data)
    case = Case.objects.select_for_update().get(pk=case.pk)
    for name, value in cleaned.items():
        setattr(case, name, value)
    case.save(update_fields=list(cleaned))
    return case
