"""Prepare every display grid of a study before readers open it.

Built lazily, the first open of a case would be slower in the arm whose stored series is larger
(a load-time cue, and a slow first image). Opening a study queues this, so every grid is on disk,
in every arm, before a reader asks for it; the lazy path remains as the fallback.
"""

from __future__ import annotations

from readerstudy.models import AssignmentSeries, ReaderStudy
from readerstudy.serving import view_grid


def study_display_prepare(*, study: ReaderStudy) -> int:
    """Build (or find) the display grid of every series view of ``study``; returns how many."""
    views = (
        AssignmentSeries.objects.filter(assignment__study=study)
        .select_related("series", "assignment")
        .order_by("role", "pk")  # "primary" before "underlay": the centre comes from the primary
    )
    done: set[tuple[int, int]] = set()
    for view in views:
        # One grid per (series, primary series): views of the same pair share it.
        primary_series = (
            view.series_id
            if view.role == AssignmentSeries.Role.PRIMARY
            else view.assignment.views.get(role=AssignmentSeries.Role.PRIMARY).series_id
        )
        key = (view.series_id, primary_series)
        if key not in done:
            view_grid(view=view)
            done.add(key)
    return len(done)
