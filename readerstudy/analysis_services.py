"""Analysis writes and computations: freezing the reads into a snapshot, running the analysis on it.

The analysis itself (``analysis_results_build``) is pure and lives in ``analysis_results``; this
module adds the Django side: permissions, the snapshot row, the integrity check, caching.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import User
from readerstudy.analysis_frames import payload_sha256
from readerstudy.analysis_results import RESULTS_FORMAT, analysis_results_build
from readerstudy.models import ReaderStudy, Snapshot
from readerstudy.services import snapshot_create


class SnapshotIntegrityError(Exception):
    """The stored payload no longer hashes to the stored sha256: refuse to analyse it."""


def analysis_snapshot_build(*, study: ReaderStudy, user: User) -> Snapshot:
    """Freeze the study's submitted reads (canonical JSON → sha256) as a new snapshot.

    An open study may be snapshotted (an interim analysis, audited); a draft one has no reads.
    A study with no submitted read is refused: there would be nothing to analyse.
    """
    if not user.is_coordinator:
        raise PermissionDenied("coordinators only")
    if study.status == ReaderStudy.Status.DRAFT:
        raise ValidationError("A draft study has no reads to snapshot.")
    if not study.assignments.filter(read__status="submitted").exists():
        raise ValidationError("No read has been submitted yet: there is nothing to snapshot.")
    return snapshot_create(study=study, user=user)


def analysis_cohort_synthetic(*, snapshot: Snapshot) -> bool:
    """Synthetic when the cohort is flagged so or any frozen read is of a simulated case."""
    if snapshot.study.cohort.synthetic:
        return True
    return any(bool(r.get("synthetic")) for r in snapshot.payload.get("reads", []))


def analysis_run(*, snapshot: Snapshot) -> dict[str, Any]:
    """The results dict (format ``mritrus.analysis/1``) of one snapshot; cached by its hash.

    The payload is re-hashed first: a payload edited after freezing is refused, not analysed.
    """
    actual = payload_sha256(snapshot.payload)
    if actual != snapshot.sha256:
        raise SnapshotIntegrityError(
            f"snapshot {snapshot.pk} payload hashes to {actual}, not its recorded {snapshot.sha256}"
        )
    synthetic = analysis_cohort_synthetic(snapshot=snapshot)
    key = f"readerstudy:analysis:{RESULTS_FORMAT}:{snapshot.sha256}:{int(synthetic)}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    results = analysis_results_build(
        payload=snapshot.payload,
        sha256=snapshot.sha256,
        created_at=snapshot.created_at.isoformat(),
        synthetic=synthetic,
    )
    cache.set(key, results, timeout=3600)
    return results
