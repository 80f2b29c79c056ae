"""Analysis reads: which study and snapshot a request is about, and whether analysis may run."""

from __future__ import annotations

import pandas as pd
from django.http import Http404
from django.shortcuts import get_object_or_404

from readerstudy.analysis.frames import reads_frame
from readerstudy.models import ReaderStudy, Snapshot


def analysis_study_get(*, pk: int) -> ReaderStudy:
    return get_object_or_404(ReaderStudy.objects.select_related("cohort"), pk=pk)


def analysis_is_available(*, study: ReaderStudy) -> bool:
    """Results exist only for frozen data: a locked study, or an explicit snapshot of an open one."""
    return study.snapshots.exists()


def analysis_snapshots(*, study: ReaderStudy) -> list[Snapshot]:
    return list(study.snapshots.select_related("created_by").order_by("-created_at", "-pk"))


def analysis_snapshot_get(*, study: ReaderStudy, snapshot_pk: int | None = None) -> Snapshot:
    """The requested snapshot of this study, or its latest; 404 when there is none."""
    qs = study.snapshots.select_related("study__cohort", "created_by")
    if snapshot_pk is not None:
        return get_object_or_404(qs, pk=snapshot_pk)
    snapshot = qs.order_by("-created_at", "-pk").first()
    if snapshot is None:
        raise Http404("This study has no snapshot yet: lock it or take a snapshot first.")
    return snapshot


def analysis_reads(*, snapshot: Snapshot) -> pd.DataFrame:
    return reads_frame(snapshot.payload)
