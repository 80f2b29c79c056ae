"""Read-side queries for registration jobs (views and the API call these; no writes here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from inference.qc import QC_IMAGES
from registration.models import Case, Cohort, ImageSeries, RegistrationJob
from registration.storage import media_path


def job_list(
    *, cohort: Cohort | None = None, case: Case | None = None, status: str | None = None
) -> QuerySet[RegistrationJob]:
    jobs = RegistrationJob.objects.select_related("case", "case__cohort", "created_by")
    if cohort is not None:
        jobs = jobs.filter(case__cohort=cohort)
    if case is not None:
        jobs = jobs.filter(case=case)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-pk")


def job_get(*, pk: int) -> RegistrationJob:
    """The job, or RegistrationJob.DoesNotExist."""
    return RegistrationJob.objects.select_related("case", "case__cohort").get(pk=pk)


def case_missing_inputs(*, case: Case) -> str:
    """The images a registration of ``case`` still needs, in words ("" when it has both)."""
    kinds = set(
        case.series.filter(kind=ImageSeries.Kind.ORIGINAL).values_list("modality", flat=True)
    )
    missing = [
        name
        for modality, name in (
            (ImageSeries.Modality.MR_T2, "MR T2"),
            (ImageSeries.Modality.US, "TRUS"),
        )
        if modality not in kinds
    ]
    return " and ".join(missing)


def job_is_active(job: RegistrationJob) -> bool:
    return job.status in RegistrationJob.ACTIVE_STATUSES


def job_qc_path(*, job: RegistrationJob, name: str) -> Path | None:
    """Absolute path of one QC image of a finished job, or None when there is none."""
    filename = QC_IMAGES.get(name)
    if filename is None or not job.output_dir:
        return None
    path = media_path(job.output_dir) / filename
    return path if path.is_file() else None


def job_status_dict(job: RegistrationJob) -> dict[str, Any]:
    """What the progress bars poll: small, and with nothing a coordinator may not see."""
    qc = {}
    if job.status == RegistrationJob.Status.SUCCEEDED and job.output_dir:
        qc = {
            name: reverse("registration:job-qc", kwargs={"pk": job.pk, "name": name})
            for name in QC_IMAGES
        }
    return {
        "id": job.pk,
        "case": job.case_id,
        "case_code": job.case.case_code,
        "method": job.method,
        "status": job.status,
        "active": job_is_active(job),
        "stage": job.stage,
        "progress": round(float(job.progress), 1),
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "worker_id": job.worker_id,
        "device": job.device,
        "error": job.error,
        "metrics": job.metrics,
        "metrics_basis": job.metrics_basis,
        "warnings": job.warnings,
        "stage_seconds": job.stage_seconds,
        "registered_series": job.registered_series_id,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "url": reverse("registration:job-detail", kwargs={"pk": job.pk}),
        "qc": qc,
    }


def case_latest_jobs(*, case: Case) -> list[RegistrationJob]:
    """The most recent job of each method for one case."""
    seen: dict[str, RegistrationJob] = {}
    for job in job_list(case=case):
        seen.setdefault(job.method, job)
    return list(seen.values())


def cohort_jobs_status(*, cohort: Cohort) -> dict[str, Any]:
    """Per case, the latest job of each method, plus counts by status (the cohort progress bar)."""
    cases: dict[int, dict[str, Any]] = {
        c.pk: {"case": c.pk, "case_code": c.case_code, "jobs": []}
        for c in cohort.cases.order_by("case_code")
    }
    seen: set[tuple[int, str]] = set()
    counts = dict.fromkeys(RegistrationJob.Status.values, 0)
    for job in job_list(cohort=cohort):
        key = (job.case_id, job.method)
        if key in seen:
            continue
        seen.add(key)
        counts[job.status] += 1
        cases[job.case_id]["jobs"].append(job_status_dict(job))
    latest = sum(counts.values())
    done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
    running_progress = sum(
        j["progress"] for c in cases.values() for j in c["jobs"] if j["status"] == "running"
    )
    overall = 0.0 if latest == 0 else (100.0 * done + running_progress) / latest
    return {
        "cohort": cohort.pk,
        "counts": counts,
        "jobs": latest,
        "progress": round(overall, 1),
        "active": counts["queued"] + counts["running"] > 0,
        "cases": list(cases.values()),
    }
