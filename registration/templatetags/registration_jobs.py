"""Template tags for the registration-job panels that other pages include."""

from __future__ import annotations

from django import template

from registration import job_selectors
from registration.models import Case, RegistrationJob

register = template.Library()


@register.simple_tag
def case_jobs(case: Case) -> list[RegistrationJob]:
    """The latest job of each method for ``case`` (for the case page's registration panel)."""
    return job_selectors.case_latest_jobs(case=case)
