"""Analysis writes and computations: freezing the reads into a snapshot, running the analysis on it.

The analysis itself (``analysis_results_build``) is pure and lives in ``analysis.results``; this
module adds the Django side: permissions, the snapshot row and its payload (the format
``analysis.frames`` documents), the integrity check, and the results cache keyed by the hash.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from readerstudy.analysis.frames import payload_sha256
from readerstudy.analysis.results import RESULTS_FORMAT, analysis_results_build
from readerstudy.models import AuditEvent, Read, ReaderStudy, Snapshot
from readerstudy.read_services import audit_event_create, coordinator_require


class SnapshotIntegrityError(Exception):
    """The stored payload no longer hashes to the stored sha256: refuse to analyse it."""


def _snapshot_payload(study: ReaderStudy) -> dict[str, Any]:
    reads = (
        Read.objects.filter(assignment__study=study, status=Read.Status.SUBMITTED)
        .select_related("assignment__reader__user", "assignment__arm", "assignment__case")
        .order_by("assignment__reader__pseudonym", "assignment__arm__index", "assignment__case_id")
    )
    rows = []
    for read in reads:
        a = read.assignment
        case = a.case
        rows.append(
            {
                "reader": a.reader.pseudonym,
                "reader_level": a.reader.user.reader_level,
                "years_experience": a.reader.user.years_experience,
                "arm": a.arm.kind,
                "session": a.session,
                "position": a.position,
                "reading_code": a.reading_code,
                "case_id": case.pk,
                "case_code": case.case_code,
                "synthetic": case.synthetic,
                "reference_pirads": case.reference_pirads,
                "cspca": case.cspca,
                "isup_grade": case.isup_grade,
                "gleason": case.gleason,
                "lesion_side": case.lesion_side,
                "pirads": read.pirads,
                "zone": read.zone,
                "side": read.side,
                "likert": read.likert,
                "comment": read.comment,
                "mark": (
                    None
                    if read.mark_slice is None
                    else {
                        "x": read.mark_x,
                        "y": read.mark_y,
                        "z": read.mark_z,
                        "slice": read.mark_slice,
                        "diameter_mm": (read.mark_diameter or {}).get("mm"),
                    }
                ),
                "active_seconds": round(read.active_seconds, 3),
                "started_at": read.started_at.isoformat(),
                "submitted_at": read.submitted_at.isoformat() if read.submitted_at else None,
            }
        )
    return {
        "study": {
            "id": study.pk,
            "name": study.name,
            "status": study.status,
            "reference_standard": study.reference_standard,
            "seed": study.seed,
            "washout_days": study.washout_days,
            "arms": [arm.kind for arm in study.arms.order_by("index")],
            "mark_required_from": study.mark_required_from,
        },
        "reads": rows,
    }


def snapshot_create(*, study: ReaderStudy, user: User) -> Snapshot:
    """Freeze the submitted reads; the hash covers the canonical JSON of the payload."""
    coordinator_require(user)
    if study.status == ReaderStudy.Status.DRAFT:
        raise ValidationError("A draft study has no reads to snapshot.")
    with transaction.atomic():
        payload = _snapshot_payload(study)
        digest = payload_sha256(payload)
        snapshot = Snapshot.objects.create(
            study=study, created_by=user, sha256=digest, payload=payload
        )
        audit_event_create(
            study=study,
            user=user,
            action=AuditEvent.Action.SNAPSHOT,
            details={"sha256": digest, "reads": len(payload["reads"])},
        )
    return snapshot


def analysis_snapshot_build(*, study: ReaderStudy, user: User) -> Snapshot:
    """Freeze the study's submitted reads (canonical JSON → sha256) as a new snapshot.

    An open study may be snapshotted (an interim analysis, audited); a draft one has no reads.
    A study with no submitted read is refused: there would be nothing to analyse.
    """
    coordinator_require(user)
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
