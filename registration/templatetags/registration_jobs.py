"""Template tags for the registration-job panels that other pages include."""

from __future__ import annotations

from django import template

from inference.methods import method_names
from registration.jobs import selectors
from registration.jobs.services import job_method_default
from registration.models import Case, RegistrationJob

register = template.Library()


@register.simple_tag
def case_jobs(case: Case) -> list[RegistrationJob]:
    """The latest job of each method for ``case`` (for the case page's registration panel)."""
    return selectors.case_latest_jobs(case=case)


@register.inclusion_tag("registration/job_method_select.html")
def job_method_select() -> dict[str, object]:
    """The method picker of the Register / Register all forms, preset to the site default."""
    return {"methods": method_names(), "default": job_method_default()}


@register.filter
def metric_rows(metrics: dict[str, object] | None) -> list[tuple[str, str]]:
    """A job's metrics in words and units, for the case and job pages."""
    from registration.metric_names import metric_rows as rows

    return rows(metrics)
