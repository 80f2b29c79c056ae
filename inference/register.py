"""Register one MR/TRUS pair from NIfTI files.

    python -m inference.register --mr MR.nii.gz --us US.nii.gz [--mr-label L] [--us-label L]
        [--mr-landmarks L] [--us-landmarks L] [--method rern+io] --out DIR

The MR and the TRUS may come from different machines (no shared frame): the initial alignment is
found from the gland labels (given, or segmented when a model is installed). Writes into DIR (all on
the TRUS grid): ``mr_initial.nii.gz`` (the MR through the initial frame alignment),
``warped_mr.nii.gz``, ``warped_mr_label.nii.gz``, ``displacement.nii.gz`` (X, Y, Z, 3) in TRUS voxels,
``result.json`` (metrics and what they were measured against, the frame alignment matrix ``W``,
seconds per stage, model, notes, warnings) and ``qc.png``. Every output is one sampling of the
original MR through ``A_mr⁻¹ · W · A_us · (p + u(p))`` (docs/architecture.md). Files are written to
a temporary folder first and moved in at the end, so a failure leaves nothing half-written; a
registration that fails its quality checks exits 3 with the reason and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.io import label_load, landmarks_load, volume_load, volume_save
from inference.methods import DEFAULT_METHOD, method_names
from inference.pipeline import (
    RegistrationConfig,
    RegistrationFailed,
    RegistrationResult,
    register_case,
)
from inference.preprocess import ENHANCEMENTS
from inference.qc import qc_figure_save
from inference.registry import CheckpointError

__all__ = ["main", "outputs_write"]


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def outputs_write(
    out: Path, result: RegistrationResult, us: np.ndarray, *, title: str = ""
) -> Path:
    """Write the result files into ``out`` atomically (temporary sibling folder, then moves)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".register-", dir=out.parent))
    try:
        aff = result.affine
        volume_save(tmp / "mr_initial.nii.gz", result.mr_initial, aff)
        volume_save(tmp / "warped_mr.nii.gz", result.warped_mr, aff)
        if result.warped_mr_label is not None:
            volume_save(tmp / "warped_mr_label.nii.gz", result.warped_mr_label, aff)
        volume_save(tmp / "displacement.nii.gz", np.moveaxis(result.displacement, 0, -1), aff)
        doc = {
            "metrics": result.metrics,
            "metrics_basis": result.metrics_basis,
            "label_source": result.label_source,
            "world": np.asarray(result.world).tolist(),
            "stage_seconds": result.stage_seconds,
            "model": result.model,
            "notes": result.notes,
            "warnings": result.warnings,
            "displacement_convention": "(X,Y,Z,3) in TRUS voxels u: "
            "warped(p) = MR(inv(A_mr) @ world @ A_us @ (p + u(p)))",
        }
        (tmp / "result.json").write_text(json.dumps(_json_safe(doc), indent=2), encoding="utf-8")
        qc_figure_save(
            tmp / "qc.png",
            us=us,
            mr_on_us=result.mr_initial,
            warped_mr=result.warped_mr,
            us_label=result.us_label,
            mr_label_on_us=result.mr_label_initial,
            warped_mr_label=result.warped_mr_label,
            title=title,
        )
        out.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Register an MR T2 volume to a TRUS volume.")
    parser.add_argument("--mr", required=True, help="MR T2 NIfTI (moving)")
    parser.add_argument("--us", required=True, help="TRUS NIfTI (fixed)")
    parser.add_argument("--mr-label", help="MR gland label NIfTI")
    parser.add_argument("--us-label", help="TRUS gland label NIfTI")
    parser.add_argument("--mr-landmarks", help="MR landmark label NIfTI (value k = landmark k)")
    parser.add_argument("--us-landmarks", help="TRUS landmark label NIfTI")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=method_names())
    parser.add_argument("--checkpoint", help="registry key or .pt path (default: registry default)")
    parser.add_argument("--io-steps", type=int, default=RegistrationConfig.io_steps)
    parser.add_argument("--enhance", nargs="*", default=[], choices=ENHANCEMENTS)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    try:
        mr, a_mr = volume_load(args.mr)
        us, a_us = volume_load(args.us)
        mr_label = label_load(args.mr_label)[0] if args.mr_label else None
        us_label = label_load(args.us_label)[0] if args.us_label else None
        mr_lm = landmarks_load(args.mr_landmarks)[0] if args.mr_landmarks else None
        us_lm = landmarks_load(args.us_landmarks)[0] if args.us_landmarks else None
        cfg = RegistrationConfig(
            method=args.method,
            checkpoint=args.checkpoint,
            io_steps=args.io_steps,
            enhance=tuple(args.enhance),
            num_threads=args.threads,
            device=args.device,
        )
        result = register_case(
            mr=mr,
            mr_affine=a_mr,
            us=us,
            us_affine=a_us,
            mr_label=mr_label,
            us_label=us_label,
            mr_landmarks=mr_lm,
            us_landmarks=us_lm,
            config=cfg,
            progress=lambda stage, fraction: print(
                f"[{fraction * 100:5.1f}%] {stage}", file=sys.stderr
            ),
        )
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RegistrationFailed as exc:
        print(f"registration failed: {exc}", file=sys.stderr)
        return 3
    outputs_write(Path(args.out), result, us, title=f"{Path(args.mr).name} → {Path(args.us).name}")
    print(
        json.dumps(
            _json_safe(
                {
                    "metrics": result.metrics,
                    "metrics_basis": result.metrics_basis,
                    "model": result.model["name"],
                    "warnings": result.warnings,
                    "stage_seconds": result.stage_seconds,
                }
            ),
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
