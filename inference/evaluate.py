"""Evaluate registration methods on a paired folder and print the paper's Table 3 layout.

    python -m inference.evaluate --data DIR [--methods initial rern rern+io io localnet sitk-bspline]
        [--labels given|segmented|both] [--out DIR/evaluation] [--limit N] [--threads 2]

``DIR`` is a µ-RegPro / DeepReg paired folder (``moving_images``, ``fixed_images``, ``moving_labels``,
``fixed_labels``; 4-D labels with channel 0 gland and channels 1.. landmarks), e.g. one written by
``python -m inference.simulate dataset``. The files' affines are trusted (each image in its own
frame; the registration aligns them); ``--geometry resize`` is only for files whose affines mean
nothing, and ignores orientation.

``--labels given``: the registration uses the folder's gland labels (ground truth).
``--labels segmented``: the registration never sees them; the segmenters provide its labels.
Either way every figure is measured against the folder's ground truth (gland labels, landmarks).
Columns: the initial alignment (shared by all methods of a label mode), then each method. Means
state ``n``: a pair whose registration failed its quality checks, or whose metric is undefined
(e.g. HD95 of an empty gland), is counted and named, never silently dropped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.baselines import sitk_available, sitk_bspline_register
from inference.case_metrics import case_metrics
from inference.data import RawPair, deepreg_pairs
from inference.eval_tables import FIELDS, results_write, summary, table_format
from inference.geometry import mr_sample
from inference.methods import EVAL_ONLY_METHODS, method_get, method_names
from inference.pipeline import RegistrationConfig, RegistrationFailed, register_case
from inference.preprocess import intensity_normalise
from inference.registry import CheckpointError, checkpoint_resolve

__all__ = ["ALL_METHODS", "FIELDS", "evaluate_pairs", "main", "summary", "table_format"]

ALL_METHODS: tuple[str, ...] = (*method_names(), *EVAL_ONLY_METHODS)
# Table 3's column order (the paper's layout), not the web form's: every method, once.
DEFAULT_METHODS: tuple[str, ...] = ("initial", "rern", "rern+io", "io", "localnet", "sitk-bspline")
if sorted(DEFAULT_METHODS) != sorted(ALL_METHODS):
    raise ImportError(f"Table 3's columns {DEFAULT_METHODS} differ from the methods {ALL_METHODS}")
LABEL_MODES = ("given", "segmented")


def _available(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    keep, notes = [], []
    for m in methods:
        if m not in ALL_METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {ALL_METHODS}")
        kind = None if m in EVAL_ONLY_METHODS else method_get(m).network
        if kind:
            try:
                checkpoint_resolve(kind=kind)
            except CheckpointError as exc:
                notes.append(f"{m} skipped: {exc}")
                continue
        if m == "sitk-bspline" and not sitk_available():
            notes.append(
                "sitk-bspline skipped: SimpleITK is not installed (pip install '.[bench]')"
            )
            continue
        keep.append(m)
    return keep, notes


def _sitk_deformable(pair: RawPair, threads: int | None) -> Any:
    spacing = [float(v) for v in np.linalg.norm(pair.us_affine[:3, :3], axis=0)]

    def run(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        return sitk_bspline_register(
            fixed=intensity_normalise(fixed),
            moving=intensity_normalise(moving),
            spacing=spacing,
            threads=threads,
        )

    return run


def _gt_metrics(pair: RawPair, world: np.ndarray, disp: np.ndarray) -> dict[str, float]:
    """Metrics of a transform against the pair's ground truth (labels, landmarks)."""
    geo: dict[str, Any] = {
        "mr_affine": pair.mr_affine,
        "us_shape": pair.us.shape,
        "us_affine": pair.us_affine,
    }
    lab = pair.mr_label
    initial = None if lab is None else mr_sample(lab, **geo, world=world) > 0.5
    after = None if lab is None else mr_sample(lab, **geo, world=world, displacement=disp) > 0.5
    return case_metrics(
        world=world,
        displacement=disp,
        mr_label_initial=initial,
        warped_mr_label=after,
        us_label=pair.us_label,
        mr_landmarks=pair.mr_landmarks,
        us_landmarks=pair.us_landmarks,
        mr_affine=pair.mr_affine,
        us_affine=pair.us_affine,
    )


def evaluate_case(
    pair: RawPair,
    *,
    method: str,
    labels: str = "given",
    threads: int | None = None,
    io_steps: int | None = None,
) -> dict[str, Any]:
    """One row: ``method`` on ``pair`` with ``labels`` given or segmented, measured against the
    pair's ground truth. A registration that fails its checks gives a row with ``status`` failed."""
    if labels not in LABEL_MODES:
        raise ValueError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    t = time.perf_counter()
    kw: dict[str, Any] = {"method": "initial" if method == "sitk-bspline" else method}
    kw["num_threads"] = threads
    if io_steps is not None:
        kw["io_steps"] = io_steps
    row: dict[str, Any] = {"case": pair.name, "method": method, "labels": labels}
    give = labels == "given"
    try:
        res = register_case(
            mr=pair.mr,
            mr_affine=pair.mr_affine,
            us=pair.us,
            us_affine=pair.us_affine,
            mr_label=pair.mr_label if give else None,
            us_label=pair.us_label if give else None,
            config=RegistrationConfig(**kw),
            deformable=_sitk_deformable(pair, threads) if method == "sitk-bspline" else None,
        )
    except RegistrationFailed as exc:
        row.update(status="failed", note=str(exc), model="", seconds=time.perf_counter() - t)
        return row
    met = _gt_metrics(pair, res.world, res.displacement)
    model = res.model["name"] if method != "sitk-bspline" else "SimpleITK B-spline (Mattes MI)"
    row.update(
        status="reverted" if res.model.get("guard_reverted") else "ok",
        note="; ".join(res.notes + res.warnings),
        model=f"{model} {res.model.get('checkpoint', '')}".strip(),
        seconds=time.perf_counter() - t,
    )
    for stage in ("initial", "after"):
        for metric in ("dsc", "hd95"):
            row[f"{metric}_{stage}"] = met.get(f"{metric}_{stage}", math.nan)
        row[f"tre_{stage}"] = met.get(f"tre_{stage}_mean", math.nan)
    row["folding_fraction"] = met.get("folding_fraction", math.nan)
    return row


def evaluate_pairs(
    pairs: Iterable[RawPair],
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    labels: Sequence[str] = ("given",),
    threads: int | None = None,
    io_steps: int | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run each available method on each pair, per label mode; ``(rows, notes)``."""
    use, notes = _available(methods)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        for mode in labels:
            for m in use:
                row = evaluate_case(pair, method=m, labels=mode, threads=threads, io_steps=io_steps)
                rows.append(row)
                if progress:
                    msg = (
                        f"DSC {row['dsc_initial']:.3f}→{row['dsc_after']:.3f} "
                        f"TRE {row['tre_initial']:.2f}→{row['tre_after']:.2f}"
                        if row["status"] != "failed"
                        else f"FAILED: {row['note']}"
                    )
                    print(
                        f"{pair.name:>28} {mode:>9} {m:>12}: {msg} ({row['seconds']:.1f}s)",
                        file=sys.stderr,
                    )
    return rows, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate registration methods (Table 3 layout).")
    parser.add_argument("--data", required=True, help="DeepReg / µ-RegPro paired folder")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=ALL_METHODS)
    parser.add_argument(
        "--labels",
        choices=("given", "segmented", "both"),
        default="given",
        help="labels the registration uses: the folder's (ground truth) or the segmenters'",
    )
    parser.add_argument("--out", help="output folder (default DATA/evaluation)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N pairs")
    parser.add_argument("--threads", type=int, help="CPU threads for torch/SimpleITK")
    parser.add_argument("--io-steps", type=int, help="instance-optimisation steps")
    parser.add_argument("--geometry", choices=("affine", "resize"), default="affine")
    args = parser.parse_args(argv)
    data = Path(args.data)
    synthetic = None
    if (data / "dataset.json").exists():
        synthetic = bool(json.loads((data / "dataset.json").read_text()).get("synthetic", False))
    try:
        pairs = list(deepreg_pairs(data, geometry=args.geometry))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        print(f"error: no pairs in {data}", file=sys.stderr)
        return 2
    modes = list(LABEL_MODES) if args.labels == "both" else [args.labels]
    rows, notes = evaluate_pairs(
        pairs, methods=args.methods, labels=modes, threads=args.threads, io_steps=args.io_steps
    )
    if not rows:
        print("error: no method could run: " + "; ".join(notes), file=sys.stderr)
        return 2
    if synthetic:
        notes.append(
            "all pairs are SIMULATED (dataset.json synthetic=true): not evidence on real TRUS"
        )
    if args.geometry == "resize":
        notes.append("geometry=resize ignores the images' orientation (the MR may be mirrored)")
    for mode in modes:
        print(table_format([r for r in rows if r["labels"] == mode], labels=mode))
        print()
    for n in notes:
        print(f"note: {n}")
    out = Path(args.out) if args.out else data / "evaluation"
    results_write(
        out, rows, notes, {"data": str(data), "geometry": args.geometry, "synthetic": synthetic}
    )
    print(f"wrote {out / 'results.csv'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
