"""What a registration job writes: the output folder (displacement, registered MR, metrics, QC
images), then, in one transaction, the registered series and the job's success.

The folder is written under ``MEDIA_ROOT/tmp`` and moved in with one rename; the outputs of the run
it replaces are removed only once the new ones are committed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from registration import storage
from registration.jobs.inputs import JobInputs
from registration.jobs.state import JobInputError, JobLost, Status, job_transition
from registration.models import Case, ImageSeries, RegistrationJob
from registration.services import series_create_from_array


def json_number(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN/inf as None (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_number(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_check(*, case: Case, result: Any) -> None:
    """Refuse a registration whose displacement or registered MR holds NaN or infinite values."""
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


def job_outputs_write_tmp(
    *, job: RegistrationJob, inputs: JobInputs, result: Any, tmp: Path
) -> dict[str, Any]:
    """Write the output folder into ``tmp``; returns what the job row records."""
    from inference.io import volume_save
    from inference.qc import qc_images_write

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
    metrics = json_number(dict(getattr(result, "metrics", {}) or {}))
    model = json_number(dict(getattr(result, "model", {}) or {}))
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
        "stage_seconds": json_number(dict(getattr(result, "stage_seconds", {}) or {})),
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


def _series_store(
    *,
    job: RegistrationJob,
    inputs: JobInputs,
    result: Any,
    written: dict[str, Any],
    created: list[ImageSeries],
) -> ImageSeries:
    """The registered MR series (and its warped gland label) on the TRUS frame of reference;
    each series is appended to ``created`` as soon as it exists (the caller cleans up on failure)."""
    us_s = inputs.us_series
    common: dict[str, Any] = {
        "case": job.case,
        "modality": ImageSeries.Modality.MR_T2,
        "affine": np.asarray(result.affine, dtype=np.float64),
        "frame_of_reference_uid": us_s.frame_of_reference_uid,
        "source": f"registration job {job.pk} ({job.method})",
        "model_key": job.method,
    }
    registered = series_create_from_array(
        kind=ImageSeries.Kind.REGISTERED,
        array=np.asarray(result.warped_mr, dtype=np.float32),
        series_description="T2 axial",
        replace_existing=True,
        **common,
    )
    created.append(registered)
    if written["warped_label"] is not None:
        created.append(
            series_create_from_array(
                kind=ImageSeries.Kind.LABEL,
                array=written["warped_label"],
                series_description="Gland label",
                label_of=registered,
                **common,
            )
        )
    return registered


def _model_fields(*, job: RegistrationJob, model: dict[str, Any]) -> dict[str, Any]:
    segmentation = model.get("segmentation", {}).values()
    return {
        "model_name": str(model.get("name", job.method))[:100],
        "model_checkpoint": str(model.get("checkpoint", ""))[:200],
        "model_sha256": str(model.get("sha256", ""))[:64],
        "model_synthetic_training": bool(
            model.get("synthetic_training")
            or any(s.get("synthetic_training") for s in segmentation)
        ),
        "code_version": str(model.get("code_version", ""))[:64],
    }


def job_outputs_commit(
    *,
    job: RegistrationJob,
    worker_id: str,
    inputs: JobInputs,
    result: Any,
    tmp: Path,
    written: dict[str, Any],
    stage_seconds: dict[str, float],
) -> None:
    """One rename of the output folder, then the series and the job row in one transaction."""
    case = job.case
    rel = storage.job_output_dir(job, tmp.name.rsplit("-", 1)[-1])
    final = storage.media_path(rel)
    previous = list(
        ImageSeries.objects.filter(
            case=case, kind=ImageSeries.Kind.REGISTERED, model_key=job.method
        )
    )
    previous_folders = storage.series_folders(
        previous + list(ImageSeries.objects.filter(label_of__in=previous))
    )
    previous_job_dirs = list(
        RegistrationJob.objects.filter(case=case, method=job.method)
        .exclude(output_dir="")
        .values_list("pk", "output_dir")
    )
    t0 = time.monotonic()
    storage.folder_move(tmp, final)
    created: list[ImageSeries] = []
    try:
        with transaction.atomic():
            registered = _series_store(
                job=job, inputs=inputs, result=result, written=written, created=created
            )
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
                stage_seconds=json_number(stage_seconds),
                error="",
                traceback="",
                **_model_fields(job=job, model=written["model"]),
            )
            if not ok:
                raise JobLost()
            for pk, _ in previous_job_dirs:
                if pk != job.pk:  # this job's own earlier run is replaced by output_dir=rel
                    RegistrationJob.objects.filter(pk=pk).update(output_dir="")
    except BaseException:
        storage.tree_remove(final)
        for s in created:
            storage.tree_remove(storage.media_path(s.nifti_path).parent)
        raise
    _replaced_remove(
        case=case,
        folders=previous_folders,
        job_dirs=[old for _, old in previous_job_dirs if old and old != rel],
    )


def _replaced_remove(*, case: Case, folders: list[Path], job_dirs: list[str]) -> None:
    """Committed: remove what the replaced outputs used and nothing references any more."""
    still_used = {
        storage.media_path(p).parent
        for p in ImageSeries.objects.filter(case=case).values_list("nifti_path", flat=True)
    }
    for folder in folders:
        if folder not in still_used:
            storage.tree_remove(folder)
    for old_rel in job_dirs:
        storage.tree_remove(storage.media_path(old_rel))
