"""Services for registration jobs: create, cancel, retry, the one status-transition function, the job
body the queue task calls (`job_run`), and stale-job recovery.

Job state lives in `RegistrationJob`, never in the queue: the queue only carries a primary key, and
every status change is a conditional UPDATE through `job_transition`, so two workers holding the same
key (a duplicate enqueue, or a requeue after a worker was presumed dead) cannot both run or both
write outputs.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import traceback as tb
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from numpy.typing import NDArray

from registration.models import Case, Cohort, ImageSeries, RegistrationJob

logger = logging.getLogger(__name__)

Status = RegistrationJob.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

METHODS = ("rern+io", "rern", "localnet", "io", "initial")

# Every allowed status change. running -> queued is stale-heartbeat recovery; terminal -> queued is
# retry / re-run.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.SUCCEEDED: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset({Status.QUEUED}),
}

# Where each stage sits on the progress bar (percent at its start).
PROGRESS_LOAD = 2.0
PROGRESS_INFER_START = 5.0
PROGRESS_INFER_END = 85.0
PROGRESS_WRITE = 88.0


class JobError(Exception):
    """A request the coordinator made that cannot be done (message is shown to them)."""


class InvalidTransition(JobError):
    pass


class JobInputError(Exception):
    """The case's inputs or the registration output are unusable; the message names the problem."""


class JobLost(Exception):
    """This worker no longer owns the job (it was requeued to another worker); write nothing."""


class JobCancelled(Exception):
    pass


# --- status changes ------------------------------------------------------------------------------


def job_transition(
    *,
    job: RegistrationJob,
    to: str,
    expect: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move ``job`` from its current status to ``to`` with one conditional UPDATE.

    The UPDATE only matches if the row still has the status ``job.status`` (and the ``expect``
    lookups), so concurrent callers cannot both win. Returns whether this call made the change;
    ``job`` is refreshed either way. Terminal states get ``finished_at``.
    """
    frm = job.status
    if to not in ALLOWED_TRANSITIONS[frm]:
        raise InvalidTransition(f"A {frm} job cannot become {to}.")
    now = timezone.now()
    if to in TERMINAL:
        fields.setdefault("finished_at", now)
    if to == Status.SUCCEEDED:
        fields.setdefault("progress", 100.0)
    rows = RegistrationJob.objects.filter(pk=job.pk, status=frm, **dict(expect or {}))
    try:
        with transaction.atomic():
            changed = rows.update(status=to, **fields) == 1
    except IntegrityError as exc:
        # Only the "one active job per case and method" constraint can fire here.
        raise JobError(
            f"Case {job.case.case_code} already has a queued or running {job.method} job."
        ) from exc
    job.refresh_from_db()
    if changed:
        logger.info("job %s: %s -> %s", job.pk, frm, to)
    return changed


def _enqueue_on_commit(job: RegistrationJob) -> None:
    pk = job.pk

    def enqueue() -> None:
        from registration.tasks import registration_job_run

        result = registration_job_run.enqueue(job_pk=pk)
        RegistrationJob.objects.filter(pk=pk).update(
            task_result_id=str(result.id)[:64], enqueued_at=timezone.now()
        )

    transaction.on_commit(enqueue)


# --- create, cancel, retry -----------------------------------------------------------------------


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise JobError(
            f"Unknown registration method {method!r}; choose one of {', '.join(METHODS)}."
        )


def _missing_inputs(case: Case) -> str:
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


def job_create(*, case: Case, method: str, user: Any = None) -> RegistrationJob:
    """Queue one registration of ``case`` with ``method``; the task is sent when the transaction
    commits."""
    _check_method(method)
    missing = _missing_inputs(case)
    if missing:
        raise JobError(
            f"Case {case.case_code} has no {missing} image; registration needs both the MR T2 "
            "and the TRUS."
        )
    try:
        with transaction.atomic():
            job = RegistrationJob.objects.create(
                case=case,
                method=method,
                created_by=user if getattr(user, "pk", None) else None,
                max_attempts=int(settings.MRITRUS_JOB_MAX_ATTEMPTS),
            )
    except IntegrityError as exc:
        raise JobError(
            f"Case {case.case_code} already has a queued or running {method} job."
        ) from exc
    _enqueue_on_commit(job)
    return job


def jobs_create_for_cohort(
    *, cohort: Cohort, method: str, user: Any = None
) -> list[RegistrationJob]:
    """Queue a job for every case of ``cohort`` that has both images, no registered series for this
    method and no active job. Returns the new jobs (possibly none)."""
    _check_method(method)
    cases = (
        cohort.cases.filter(
            series__kind=ImageSeries.Kind.ORIGINAL, series__modality=ImageSeries.Modality.US
        )
        .filter(series__kind=ImageSeries.Kind.ORIGINAL, series__modality=ImageSeries.Modality.MR_T2)
        .exclude(
            pk__in=ImageSeries.objects.filter(
                kind=ImageSeries.Kind.REGISTERED, model_key=method
            ).values("case_id")
        )
        .exclude(
            pk__in=RegistrationJob.objects.filter(method=method, status__in=ACTIVE).values(
                "case_id"
            )
        )
        .distinct()
        .order_by("case_code")
    )
    jobs = []
    for case in cases:
        try:
            jobs.append(job_create(case=case, method=method, user=user))
        except JobError:
            # Another request queued this case between our query and the insert: nothing to do.
            continue
    return jobs


def job_cancel(*, job: RegistrationJob, user: Any = None) -> RegistrationJob:
    """Cancel a queued job at once; ask a running job to stop at its next stage boundary."""
    if job.status == Status.QUEUED and job_transition(
        job=job, to=Status.CANCELLED, error="Cancelled before it started."
    ):
        return job
    if job.status == Status.RUNNING:
        RegistrationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            cancel_requested=True
        )
        job.refresh_from_db()
        return job
    raise JobError(f"Job {job.pk} is {job.status}; there is nothing to cancel.")


def job_retry(*, job: RegistrationJob, user: Any = None) -> RegistrationJob:
    """Queue a finished job again (failed, cancelled, or succeeded to re-run); its outputs are
    replaced whole when it succeeds."""
    if job.status not in TERMINAL:
        raise JobError(f"Job {job.pk} is still {job.status}; cancel it first or wait.")
    with transaction.atomic():
        job_transition(
            job=job,
            to=Status.QUEUED,
            attempt=0,
            cancel_requested=False,
            stage="",
            progress=0.0,
            error="",
            traceback="",
            heartbeat_at=None,
            started_at=None,
            finished_at=None,
            max_attempts=int(settings.MRITRUS_JOB_MAX_ATTEMPTS),
        )
        _enqueue_on_commit(job)
    return job


# --- the job body --------------------------------------------------------------------------------


@dataclass
class _Inputs:
    mr: NDArray[np.float32]
    mr_affine: NDArray[np.float64]
    us: NDArray[np.float32]
    us_affine: NDArray[np.float64]
    us_series: ImageSeries
    mr_label: NDArray[np.uint8] | None = None
    us_label: NDArray[np.uint8] | None = None
    mr_landmarks: NDArray[np.uint8] | None = None
    us_landmarks: NDArray[np.uint8] | None = None


_MODALITY_NAME: dict[str, str] = {"MR_T2": "MR T2", "US": "TRUS"}


def _series_path(series: ImageSeries) -> Path:
    return Path(settings.MEDIA_ROOT) / series.nifti_path


def _load_image(case: Case, series: ImageSeries) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    from inference.io import volume_load

    name = _MODALITY_NAME.get(series.modality, series.modality)
    try:
        array, affine = volume_load(_series_path(series))
    except (OSError, ValueError, EOFError) as exc:
        raise JobInputError(
            f"The {name} image of case {case.case_code} could not be read ({exc}). "
            "Re-import the case."
        ) from exc
    if not np.all(np.isfinite(array)):
        raise JobInputError(
            f"The {name} image of case {case.case_code} contains NaN or infinite voxels."
        )
    if float(array.max()) == float(array.min()):
        raise JobInputError(
            f"The {name} image of case {case.case_code} is blank (one constant value)."
        )
    return array, affine


def _load_label(
    case: Case, series: ImageSeries, image: NDArray[np.float32], what: str
) -> NDArray[np.uint8]:
    from inference.io import label_load, landmarks_load

    name = f"{_MODALITY_NAME.get(series.modality, series.modality)} {what}"
    loader = landmarks_load if series.kind == ImageSeries.Kind.LANDMARKS else label_load
    try:
        label, _ = loader(_series_path(series))
    except (OSError, ValueError, EOFError) as exc:
        raise JobInputError(
            f"The {name} of case {case.case_code} could not be read ({exc}). Re-import the case."
        ) from exc
    if label.shape != image.shape:
        raise JobInputError(
            f"The {name} of case {case.case_code} has grid {label.shape}, but its image has "
            f"{image.shape}."
        )
    if not np.any(label):
        raise JobInputError(
            f"The {name} of case {case.case_code} is empty: it does not overlap the image."
        )
    return label


def _inputs_load(case: Case) -> _Inputs:
    originals = {s.modality: s for s in case.series.filter(kind=ImageSeries.Kind.ORIGINAL)}
    mr_s = originals.get(ImageSeries.Modality.MR_T2)
    us_s = originals.get(ImageSeries.Modality.US)
    if mr_s is None or us_s is None:
        raise JobInputError(
            f"Case {case.case_code} has no {_missing_inputs(case)} image; registration needs both "
            "the MR T2 and the TRUS."
        )
    mr, mr_aff = _load_image(case, mr_s)
    us, us_aff = _load_image(case, us_s)
    inputs = _Inputs(mr=mr, mr_affine=mr_aff, us=us, us_affine=us_aff, us_series=us_s)
    for attached in ImageSeries.objects.filter(
        label_of__in=[mr_s, us_s], kind__in=[ImageSeries.Kind.LABEL, ImageSeries.Kind.LANDMARKS]
    ).order_by("pk"):
        on_mr = attached.label_of_id == mr_s.pk
        image = mr if on_mr else us
        if attached.kind == ImageSeries.Kind.LABEL:
            label = _load_label(case, attached, image, "gland label")
            if on_mr:
                inputs.mr_label = label
            else:
                inputs.us_label = label
        else:
            lm = _load_label(case, attached, image, "landmark label")
            if on_mr:
                inputs.mr_landmarks = lm
            else:
                inputs.us_landmarks = lm
    # No check of the MR label against the TRUS field of view: the two share no frame of reference
    # (the registration aligns them from the glands, and says so when it cannot).
    return inputs


def _json_number(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_number(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Progress:
    """Stage/percent reporter that also enforces ownership and cancellation between stages."""

    def __init__(self, *, job: RegistrationJob, worker_id: str, heartbeat: Any) -> None:
        self.job_pk = job.pk
        self.worker_id = worker_id
        self.attempt = job.attempt
        self.heartbeat = heartbeat
        self.stage = ""
        self._last_write = 0.0
        self.stage_started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}

    def owned(self) -> Any:
        return RegistrationJob.objects.filter(
            pk=self.job_pk, status=Status.RUNNING, worker_id=self.worker_id, attempt=self.attempt
        )

    def check(self) -> None:
        if self.heartbeat.lost.is_set():
            raise JobLost()
        row = self.owned().values_list("cancel_requested", flat=True).first()
        if row is None:
            raise JobLost()
        if row or self.heartbeat.cancel_requested.is_set():
            raise JobCancelled()

    def set(self, stage: str, percent: float, *, force: bool = False) -> None:
        now = time.monotonic()
        new_stage = stage != self.stage
        if new_stage:
            if self.stage:
                self.stage_seconds[self.stage] = round(now - self.stage_started, 3)
            self.stage, self.stage_started = stage, now
        if not (new_stage or force or now - self._last_write >= 0.5):
            return
        self._last_write = now
        percent = float(min(100.0, max(0.0, percent)))
        if (
            self.owned().update(stage=stage[:40], progress=percent, heartbeat_at=timezone.now())
            == 0
        ):
            raise JobLost()

    def finish_stage(self) -> None:
        if self.stage:
            self.stage_seconds[self.stage] = round(time.monotonic() - self.stage_started, 3)
            self.stage = ""


def job_output_dir(job: RegistrationJob, token: str) -> str:
    """Relative (to MEDIA_ROOT) folder of one run's outputs. The token keeps a re-run (whose
    attempt counter starts again) from ever landing on the folder of the run it replaces."""
    case = job.case
    return f"cohorts/{case.cohort_id}/{case.pk}/registrations/job{job.pk}-a{job.attempt}-{token}"


def _tmp_prefix(job: RegistrationJob) -> str:
    return f"job{job.pk}-a{job.attempt}-"


def _check_result(case: Case, result: Any) -> None:
    for name, label in (
        ("displacement", "displacement field"),
        ("warped_mr", "registered MR image"),
    ):
        arr = np.asarray(getattr(result, name))
        if not np.all(np.isfinite(arr)):
            raise JobInputError(
                f"Registration of case {case.case_code} produced invalid values (NaN or infinite) "
                f"in the {label}; nothing was saved. Check the case's images or try another method."
            )


def _outputs_write_tmp(
    *,
    job: RegistrationJob,
    inputs: _Inputs,
    result: Any,
    tmp: Path,
    stage_seconds: dict[str, float],
) -> dict[str, Any]:
    from inference.io import volume_save
    from registration.worker import qc_images_write

    affine = np.asarray(result.affine, dtype=np.float64)
    disp = np.asarray(result.displacement, dtype=np.float32)
    # NIfTI vector convention: (X, Y, Z, 3) on the TRUS grid, in TRUS voxels (architecture.md).
    volume_save(tmp / "displacement.nii.gz", np.moveaxis(disp, 0, -1), affine)
    volume_save(
        tmp / "registered_mr.nii.gz", np.asarray(result.warped_mr, dtype=np.float32), affine
    )
    warped_label = getattr(result, "warped_mr_label", None)
    if warped_label is not None:
        warped_label = (np.asarray(warped_label) > 0.5).astype(np.uint8)
        volume_save(tmp / "warped_gland_label.nii.gz", warped_label, affine)
    qc = qc_images_write(
        folder=tmp,
        fixed=inputs.us,
        warped=np.asarray(result.warped_mr),
        warped_label=warped_label,
        fixed_label=inputs.us_label,
    )
    metrics = _json_number(dict(getattr(result, "metrics", {}) or {}))
    model = _json_number(dict(getattr(result, "model", {}) or {}))
    basis = str(getattr(result, "metrics_basis", "") or "")
    warnings = [str(w) for w in (getattr(result, "warnings", []) or [])]
    summary = {
        "job": job.pk,
        "attempt": job.attempt,
        "case_code": job.case.case_code,
        "method": job.method,
        "metrics": metrics,
        "metrics_basis": basis,
        "warnings": warnings,
        "world": np.asarray(getattr(result, "world", np.eye(4))).tolist(),
        "displacement_convention": "(X,Y,Z,3) TRUS voxels u: "
        "registered(p) = MR(inv(A_mr) @ world @ A_us @ (p + u(p)))",
        "model": model,
        "stage_seconds": _json_number(dict(getattr(result, "stage_seconds", {}) or {})),
        "qc": qc,
        "synthetic": job.case.synthetic,
    }
    (tmp / "metrics.json").write_text(json.dumps(summary, indent=2))
    return {
        "metrics": metrics,
        "metrics_basis": basis,
        "warnings": warnings,
        "model": model,
        "warped_label": warped_label,
        "qc": qc,
    }


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _partial_outputs_remove(job: RegistrationJob, *, attempt: int | None = None) -> list[str]:
    """Remove what an interrupted attempt may have left: its temp folder and a moved-in output
    folder that no committed job row points at."""
    media = Path(settings.MEDIA_ROOT)
    removed: list[str] = []
    attempts = [attempt] if attempt is not None else list(range(0, job.attempt + 1))
    tmp_root = media / "tmp"
    for a in attempts:
        prefix = f"job{job.pk}-a{a}-"
        if tmp_root.is_dir():
            for p in tmp_root.iterdir():
                if p.name.startswith(prefix):
                    _remove_tree(p)
                    removed.append(str(p.relative_to(media)))
        reg_root = media / f"cohorts/{job.case.cohort_id}/{job.case_id}/registrations"
        if reg_root.is_dir():
            for p in reg_root.iterdir():
                rel = str(p.relative_to(media))
                if p.name.startswith(prefix) and rel != job.output_dir:
                    _remove_tree(p)
                    removed.append(rel)
    return removed


def _tree_mtime(path: Path) -> float:
    latest = path.stat().st_mtime
    for p in path.rglob("*"):
        try:
            latest = max(latest, p.stat().st_mtime)
        except OSError:  # removed while we walk
            continue
    return latest


def _stale_series_tmp_remove(*, since: datetime | None, older_than: datetime) -> list[str]:
    """Temp folders of series writes (``tmp/series-*``) that a killed worker left behind.

    The storage service names them without an owner, so they are recognised by time: created
    after the dead attempt started and untouched for longer than the heartbeat limit. A live
    write touches its folder with every slice, so it is never taken for garbage.
    """
    tmp_root = Path(settings.MEDIA_ROOT) / "tmp"
    if not tmp_root.is_dir():
        return []
    start = (since.timestamp() - 1.0) if since else 0.0
    cutoff = older_than.timestamp()
    removed = []
    for p in tmp_root.iterdir():
        if not (p.is_dir() and p.name.startswith("series-")):
            continue
        try:
            created = p.stat().st_ctime
            if created >= start and _tree_mtime(p) < cutoff:
                _remove_tree(p)
                removed.append(p.name)
        except FileNotFoundError:
            continue
    return removed


def _orphan_series_folders_remove(case: Case, *, older_than: datetime) -> list[str]:
    """Series folders of ``case`` with no ImageSeries row (a series write killed between its move
    and its DB commit). Only folders older than ``older_than`` are touched, so a write in
    progress elsewhere is never removed."""
    media = Path(settings.MEDIA_ROOT)
    folder = media / "cohorts" / str(case.cohort_id) / str(case.pk)
    if not folder.is_dir():
        return []
    known = {
        Path(p).parts[3] if len(Path(p).parts) > 3 else ""
        for p in case.series.values_list("nifti_path", flat=True)
    }
    cutoff = older_than.timestamp()
    removed = []
    for p in folder.iterdir():
        if p.name == "registrations" or not p.is_dir() or p.name in known:
            continue
        if p.stat().st_mtime < cutoff:
            _remove_tree(p)
            removed.append(str(p.relative_to(media)))
    return removed


def _series_folders(series: Iterable[ImageSeries]) -> list[Path]:
    media = Path(settings.MEDIA_ROOT)
    return [(media / s.nifti_path).parent for s in series if s.nifti_path]


def _outputs_commit(
    *,
    job: RegistrationJob,
    worker_id: str,
    inputs: _Inputs,
    result: Any,
    tmp: Path,
    written: dict[str, Any],
    stage_seconds: dict[str, float],
) -> None:
    """One rename of the output folder, then the series and the job row in one transaction."""
    from registration.services import series_create_from_array

    media = Path(settings.MEDIA_ROOT)
    case = job.case
    rel = job_output_dir(job, tmp.name.rsplit("-", 1)[-1])
    final = media / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    previous = list(
        ImageSeries.objects.filter(
            case=case, kind=ImageSeries.Kind.REGISTERED, model_key=job.method
        )
    )
    previous_all = previous + list(ImageSeries.objects.filter(label_of__in=previous))
    previous_folders = _series_folders(previous_all)
    previous_job_dirs = list(
        RegistrationJob.objects.filter(case=case, method=job.method)
        .exclude(output_dir="")
        .values_list("pk", "output_dir")
    )
    t0 = time.monotonic()
    os_replace(tmp, final)
    created: list[ImageSeries] = []
    try:
        with transaction.atomic():
            us_s = inputs.us_series
            registered = series_create_from_array(
                case=case,
                modality=ImageSeries.Modality.MR_T2,
                kind=ImageSeries.Kind.REGISTERED,
                array=np.asarray(result.warped_mr, dtype=np.float32),
                affine=np.asarray(result.affine, dtype=np.float64),
                frame_of_reference_uid=us_s.frame_of_reference_uid,
                series_description="T2 axial",
                source=f"registration job {job.pk} ({job.method})",
                model_key=job.method,
                replace_existing=True,
            )
            created.append(registered)
            if written["warped_label"] is not None:
                label = series_create_from_array(
                    case=case,
                    modality=ImageSeries.Modality.MR_T2,
                    kind=ImageSeries.Kind.LABEL,
                    array=written["warped_label"],
                    affine=np.asarray(result.affine, dtype=np.float64),
                    frame_of_reference_uid=us_s.frame_of_reference_uid,
                    series_description="Gland label",
                    source=f"registration job {job.pk} ({job.method})",
                    model_key=job.method,
                    label_of=registered,
                )
                created.append(label)
            model = written["model"]
            # DICOM + rows of the registered series: the rest of "finish -> visible".
            stage_seconds["storing"] = round(time.monotonic() - t0, 3)
            ok = job_transition(
                job=job,
                to=Status.SUCCEEDED,
                expect={"worker_id": worker_id, "attempt": job.attempt},
                stage="done",
                registered_series=registered,
                output_dir=rel,
                metrics=written["metrics"],
                metrics_basis=written["metrics_basis"][:300],
                warnings=written["warnings"],
                stage_seconds=_json_number(stage_seconds),
                model_name=str(model.get("name", job.method))[:100],
                model_checkpoint=str(model.get("checkpoint", ""))[:200],
                model_sha256=str(model.get("sha256", ""))[:64],
                model_synthetic_training=bool(
                    model.get("synthetic_training")
                    or any(
                        s.get("synthetic_training") for s in model.get("segmentation", {}).values()
                    )
                ),
                code_version=str(model.get("code_version", ""))[:64],
                error="",
                traceback="",
            )
            if not ok:
                raise JobLost()
            for pk, _ in previous_job_dirs:
                if pk != job.pk:  # this job's own earlier run is replaced by output_dir=rel
                    RegistrationJob.objects.filter(pk=pk).update(output_dir="")
    except BaseException:
        _remove_tree(final)
        for s in created:
            _remove_tree((media / s.nifti_path).parent)
        raise
    # Committed: what the replaced outputs used is now unreferenced.
    still_used = {
        (media / p).parent
        for p in ImageSeries.objects.filter(case=case).values_list("nifti_path", flat=True)
    }
    for folder in previous_folders:
        if folder not in still_used:
            _remove_tree(folder)
    for _, old_rel in previous_job_dirs:
        if old_rel and old_rel != rel:
            _remove_tree(media / old_rel)


def os_replace(src: Path, dst: Path) -> None:
    import os

    os.replace(src, dst)


def _fail(job: RegistrationJob, worker_id: str, message: str, trace: str) -> None:
    job_transition(
        job=job,
        to=Status.FAILED,
        expect={"worker_id": worker_id, "attempt": job.attempt},
        error=message[:2000],
        traceback=trace,
    )


def job_claim(*, job_pk: int, worker_id: str, device: str = "") -> RegistrationJob | None:
    """Take a queued job for this worker: exactly one concurrent caller gets it."""
    job = RegistrationJob.objects.select_related("case").filter(pk=job_pk).first()
    if job is None or job.status != Status.QUEUED:
        return None
    if job.cancel_requested:
        job_transition(job=job, to=Status.CANCELLED, error="Cancelled before it started.")
        return None
    now = timezone.now()
    won = job_transition(
        job=job,
        to=Status.RUNNING,
        expect={"attempt": job.attempt, "cancel_requested": False},
        attempt=F("attempt") + 1,
        worker_id=worker_id[:200],
        device=device[:16],
        started_at=now,
        heartbeat_at=now,
        stage="starting",
        progress=0.0,
        error="",
        traceback="",
    )
    return job if won else None


def job_run(*, job_pk: int, worker_id: str) -> str:
    """The task body: claim, register, write outputs atomically, record the outcome.

    Returns the final status (or ``skipped`` when another worker had the job). Never raises for a
    job-level problem: those end the job failed with a message, and the queue moves on.
    """
    from registration import worker as worker_mod

    claimed = job_claim(job_pk=job_pk, worker_id=worker_id)
    if claimed is None:
        return "skipped"
    job = claimed
    case = job.case
    heartbeat = worker_mod.Heartbeat(
        job_pk=job.pk,
        worker_id=worker_id,
        attempt=job.attempt,
        interval=float(settings.MRITRUS_HEARTBEAT_SECONDS),
    )
    heartbeat.start()
    progress = _Progress(job=job, worker_id=worker_id, heartbeat=heartbeat)
    media = Path(settings.MEDIA_ROOT)
    tmp_root = media / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = tmp_root / f"{_tmp_prefix(job)}{uuid.uuid4().hex[:8]}"
    try:
        progress.set("loading images", PROGRESS_LOAD, force=True)
        worker_mod.stage_delay()
        progress.check()
        inputs = _inputs_load(case)
        progress.set("loading model", PROGRESS_INFER_START, force=True)
        # After the claim, so the first job's torch import counts as run time, not queue time.
        try:
            device = worker_mod.device_for(job.method)
        except Exception:  # no usable torch/CUDA: run on CPU rather than not at all
            device = "cpu"
        progress.owned().update(device=device[:16])
        config = worker_mod.registration_config(job.method, device)
        progress.check()

        from inference.pipeline import RegistrationCancelled, RegistrationFailed, register_case
        from inference.registry import CheckpointError

        def on_progress(stage: str, fraction: float) -> None:
            span = PROGRESS_INFER_END - PROGRESS_INFER_START
            progress.set(stage, PROGRESS_INFER_START + span * float(fraction))

        def should_cancel() -> bool:
            worker_mod.stage_delay()
            try:
                progress.check()
            except JobCancelled:
                return True
            return False

        t0 = time.monotonic()
        try:
            result = register_case(
                mr=inputs.mr,
                mr_affine=inputs.mr_affine,
                us=inputs.us,
                us_affine=inputs.us_affine,
                mr_label=inputs.mr_label,
                us_label=inputs.us_label,
                mr_landmarks=inputs.mr_landmarks,
                us_landmarks=inputs.us_landmarks,
                config=config,
                progress=on_progress,
                should_cancel=should_cancel,
            )
        except RegistrationCancelled as exc:
            progress.check()  # JobLost takes precedence over a cancel
            raise JobCancelled() from exc
        except CheckpointError as exc:
            raise JobInputError(
                f"No usable trained model for method {job.method!r} is installed on worker "
                f"{worker_id} ({exc}). Choose another method or install the checkpoint."
            ) from exc
        except RegistrationFailed as exc:
            raise JobInputError(f"Registration of case {case.case_code} failed: {exc}") from exc
        except ValueError as exc:
            raise JobInputError(
                f"The images of case {case.case_code} cannot be registered: {exc}"
            ) from exc
        progress.finish_stage()
        stage_seconds = dict(_json_number(dict(getattr(result, "stage_seconds", {}) or {})))
        stage_seconds.setdefault("registration", round(time.monotonic() - t0, 3))
        _check_result(case, result)

        progress.set("writing outputs", PROGRESS_WRITE, force=True)
        t1 = time.monotonic()
        tmp.mkdir(parents=True)
        written = _outputs_write_tmp(
            job=job, inputs=inputs, result=result, tmp=tmp, stage_seconds=stage_seconds
        )
        worker_mod.stage_delay()
        progress.check()
        stage_seconds["writing outputs"] = round(time.monotonic() - t1, 3)
        for k, v in progress.stage_seconds.items():
            stage_seconds.setdefault(k, v)
        _outputs_commit(
            job=job,
            worker_id=worker_id,
            inputs=inputs,
            result=result,
            tmp=tmp,
            written=written,
            stage_seconds=stage_seconds,
        )
        return str(Status.SUCCEEDED)
    except JobLost:
        logger.warning("job %s was taken over by another worker; %s stops", job.pk, worker_id)
        return "lost"
    except JobCancelled:
        job_transition(
            job=job,
            to=Status.CANCELLED,
            expect={"worker_id": worker_id, "attempt": job.attempt},
            error="Cancelled by a coordinator.",
        )
        return str(Status.CANCELLED)
    except JobInputError as exc:
        _fail(job, worker_id, str(exc), tb.format_exc())
        return str(Status.FAILED)
    except Exception as exc:
        logger.exception("job %s failed", job.pk)
        stage = progress.stage or "start-up"
        _fail(
            job,
            worker_id,
            f"Registration of case {case.case_code} failed while {stage}: "
            f"{type(exc).__name__}: {exc}",
            tb.format_exc(),
        )
        return str(Status.FAILED)
    finally:
        heartbeat.stop()
        _remove_tree(tmp)


# --- crash recovery ------------------------------------------------------------------------------


def _abandoned_task_mark(job: RegistrationJob) -> None:
    """With the database queue, mark the dead worker's queue entry failed; otherwise it would show
    as running forever in the queue's admin. (Redis/RQ moves abandoned jobs aside by itself.)"""
    from django.apps import apps
    from django.core.exceptions import ValidationError

    if not job.task_result_id or not apps.is_installed("django_tasks_db"):
        return
    from django_tasks_db.models import DBTaskResult

    from mritrus_site.tasks_compat import TaskResultStatus

    try:
        DBTaskResult.objects.filter(id=job.task_result_id, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path="registration.jobs.WorkerLost",
            traceback=f"worker {job.worker_id} stopped responding; job {job.pk} re-queued",
        )
    except (ValidationError, ValueError):  # an id from another backend
        return


def jobs_requeue_stale(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Put back every running job whose heartbeat is older than MRITRUS_HEARTBEAT_STALE_SECONDS.

    Its partial outputs are removed first. A job that has used all its attempts ends failed.
    Returns ``[(job_pk, new_status), ...]``. Safe to run from several workers at once: each job
    moves only once (conditional UPDATE on the stale heartbeat and attempt).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=float(settings.MRITRUS_HEARTBEAT_STALE_SECONDS))
    stale = RegistrationJob.objects.select_related("case").filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff),
        status=Status.RUNNING,
    )
    changed: list[tuple[int, str]] = []
    for job in stale:
        expect = {
            "attempt": job.attempt,
            "worker_id": job.worker_id,
            "heartbeat_at": job.heartbeat_at,
        }
        attempt, started = job.attempt, job.started_at
        last = f"worker {job.worker_id or '?'}"
        # Move the job first: from then on the old worker, should it still be alive, can no
        # longer commit (its conditional UPDATEs stop matching), so its files are safe to remove.
        if attempt >= job.max_attempts:
            message = (
                f"The worker running this job stopped responding {attempt} time(s) "
                f"(last: {last}); gave up after {job.max_attempts} attempts. Check the worker "
                "logs (out of memory?) and press Retry."
            )
            moved = job_transition(job=job, to=Status.FAILED, expect=expect, error=message)
            new_status = Status.FAILED
        else:
            with transaction.atomic():
                moved = job_transition(
                    job=job,
                    to=Status.QUEUED,
                    expect=expect,
                    stage="re-queued",
                    progress=0.0,
                    heartbeat_at=None,
                    error=f"Attempt {attempt} was interrupted ({last} stopped responding); "
                    "re-queued.",
                )
                if moved:
                    _abandoned_task_mark(job)
                    _enqueue_on_commit(job)
            new_status = Status.QUEUED
        if not moved:
            continue
        _partial_outputs_remove(job, attempt=attempt)
        _stale_series_tmp_remove(since=started, older_than=cutoff)
        _orphan_series_folders_remove(job.case, older_than=cutoff)
        if new_status == Status.FAILED:
            _abandoned_task_mark(job)
        changed.append((job.pk, str(new_status)))
    return changed


WorkerCallable = Callable[..., Any]
