"""Coordinator page to fill in the reference standard of a cohort's cases (no admin needed)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts.models import User
from accounts.permissions import coordinator_required
from inference.manifest import REFERENCE_COLUMNS
from registration.models import Case, Cohort
from registration.reference import case_reference_update, cohort_cases_missing_reference

FIELDS = REFERENCE_COLUMNS


def _row(case: Case, data: dict[str, Any] | None = None, errors: Any = None) -> dict[str, Any]:
    values = data or {
        "reference_pirads": case.reference_pirads or "",
        "cspca": {True: "yes", False: "no"}.get(case.cspca, ""),  # type: ignore[arg-type]
        "isup_grade": "" if case.isup_grade is None else case.isup_grade,
        "gleason": case.gleason,
        "lesion_side": case.lesion_side,
    }
    return {"case": case, "values": values, "errors": errors or {}}


@coordinator_required
def cohort_reference_view(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = get_object_or_404(Cohort, pk=pk)
    cases = list(cohort.cases.order_by("case_code"))
    failed: dict[int, dict[str, Any]] = {}
    if request.method == "POST":
        case = get_object_or_404(Case, pk=request.POST.get("case"), cohort=cohort)
        data = {name: request.POST.get(name, "") for name in FIELDS}
        try:
            case_reference_update(case=case, user=cast(User, request.user), data=data)
        except ValidationError as exc:
            failed[case.pk] = _row(case, data, exc.message_dict)
            messages.error(request, f"Case {case.case_code} was not saved: see the row below.")
        else:
            messages.success(request, f"Case {case.case_code} saved.")
            return redirect(f"{request.path}#case-{case.pk}")
    rows = [failed.get(case.pk) or _row(case) for case in cases]
    missing = {
        standard: cohort_cases_missing_reference(cohort=cohort, standard=standard)
        for standard in ("pirads", "biopsy")
    }
    return render(
        request,
        "registration/cohort_reference.html",
        {"cohort": cohort, "rows": rows, "missing": missing, "sides": Case.Side.choices},
    )
