"""Evaluate registration methods on a paired folder and print the paper's Table 3 layout.

    python -m inference.evaluate --data DIR [--methods initial rern rern+io localnet sitk-bspline]
        [--out DIR/evaluation] [--limit N] [--threads 2]

``DIR`` is a µ-RegPro / DeepReg paired folder (``moving_images``, ``fixed_images``, ``moving_labels``,
``fixed_labels``; 4-D labels with channel 0 gland and channels 1.. landmarks), e.g. one written by
``python -m inference.simulate dataset``. When the folder has a ``dataset.json`` (written by the
simulator) the files' affines are trusted; otherwise images are resized onto the fixed grid (the
DeepReg convention). "Before" is the MR resampled by the affines alone; each method column is after
registration. Per case and mean ± SD of DSC, HD95 (mm) and TRE (mm); folding and seconds go to the
CSV/JSON. Methods without a registered checkpoint, or SimpleITK when absent, are skipped with a note.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.baselines import sitk_available, sitk_bspline_register
from inference.data import RawPair, deepreg_pairs
from inference.pipeline import (
    RegistrationConfig,
    case_metrics,
    displacement_compose,
    register_case,
)
from inference.preprocess import intensity_normalise, volume_warp
from inference.registry import CheckpointError, checkpoint_resolve

__all__ = ["ALL_METHODS", "evaluate_pairs", "main", "table_format"]

ALL_METHODS = ("initial", "rern", "rern+io", "localnet", "io", "sitk-bspline")
DEFAULT_METHODS = ("initial", "rern", "rern+io", "localnet", "sitk-bspline")
FIELDS = (
    "case",
    "method",
    "model",
    "dsc_before",
    "dsc_after",
    "hd95_before",
    "hd95_after",
    "tre_before",
    "tre_after",
    "folding_fraction",
    "seconds",
)


def _available(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    keep, notes = [], []
    for m in methods:
        if m not in ALL_METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {ALL_METHODS}")
        kind = {"rern": "rern", "rern+io": "rern", "localnet": "localnet"}.get(m)
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


def _sitk_case(pair: RawPair, threads: int | None) -> tuple[dict[str, float], str]:
    init = register_case(
        mr=pair.mr,
        mr_affine=pair.mr_affine,
        us=pair.us,
        us_affine=pair.us_affine,
        mr_label=pair.mr_label,
        us_label=pair.us_label,
        config=RegistrationConfig(method="initial"),
    )
    spacing = [float(v) for v in np.linalg.norm(pair.us_affine[:3, :3], axis=0)]
    v = sitk_bspline_register(
        fixed=intensity_normalise(pair.us),
        moving=intensity_normalise(init.warped_mr),
        spacing=spacing,
        threads=threads,
    )
    disp = displacement_compose(init.displacement, v)
    warped_lab = None
    if init.mr_label_on_us is not None:
        warped_lab = (volume_warp(init.mr_label_on_us.astype(np.float32), disp) > 0.5).astype(
            np.uint8
        )
    met = case_metrics(
        displacement=disp,
        mr_label_on_us=init.mr_label_on_us,
        warped_mr_label=warped_lab,
        us_label=init.us_label,
        mr_landmarks=pair.mr_landmarks,
        us_landmarks=pair.us_landmarks,
        mr_affine=pair.mr_affine,
        us_affine=pair.us_affine,
    )
    return met, "SimpleITK B-spline (Mattes MI) after initial alignment"


def evaluate_pairs(
    pairs: Iterable[RawPair],
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    threads: int | None = None,
    io_steps: int | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run each available method on each pair; returns ``(rows, notes)`` with one row per pair×method."""
    use, notes = _available(methods)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        for m in use:
            t = time.perf_counter()
            if m == "sitk-bspline":
                met, model = _sitk_case(pair, threads)
            else:
                kw: dict[str, Any] = {"method": m, "num_threads": threads}
                if io_steps is not None:
                    kw["io_steps"] = io_steps
                res = register_case(
                    mr=pair.mr,
                    mr_affine=pair.mr_affine,
                    us=pair.us,
                    us_affine=pair.us_affine,
                    mr_label=pair.mr_label,
                    us_label=pair.us_label,
                    mr_landmarks=pair.mr_landmarks,
                    us_landmarks=pair.us_landmarks,
                    config=RegistrationConfig(**kw),
                )
                met, model = (
                    res.metrics,
                    f"{res.model['name']} {res.model.get('checkpoint', '')}".strip(),
                )
            row = {
                "case": pair.name,
                "method": m,
                "model": model,
                "dsc_before": met.get("dsc_before", math.nan),
                "dsc_after": met.get("dsc_after", math.nan),
                "hd95_before": met.get("hd95_before", math.nan),
                "hd95_after": met.get("hd95_after", math.nan),
                "tre_before": met.get("tre_before_mean", math.nan),
                "tre_after": met.get("tre_after_mean", math.nan),
                "folding_fraction": met.get("folding_fraction", math.nan),
                "seconds": time.perf_counter() - t,
            }
            rows.append(row)
            if progress:
                print(
                    f"{pair.name:>24} {m:>12}: DSC {row['dsc_after']:.3f} HD95 {row['hd95_after']:.2f} "
                    f"TRE {row['tre_after']:.2f} ({row['seconds']:.1f}s)",
                    file=sys.stderr,
                )
    return rows, notes


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and SD per method of each metric; ``before`` is taken from the initial-method rows."""
    out: dict[str, dict[str, float]] = {}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    first = methods[0] if methods else ""
    groups: dict[str, list[dict[str, Any]]] = {"before": [r for r in rows if r["method"] == first]}
    for m in methods:
        groups[m] = [r for r in rows if r["method"] == m]
    for name, rs in groups.items():
        suffix = "before" if name == "before" else "after"
        stats: dict[str, float] = {"n": float(len(rs))}
        for metric in ("dsc", "hd95", "tre"):
            mean, sd = _mean_sd([r[f"{metric}_{suffix}"] for r in rs])
            stats[f"{metric}_mean"], stats[f"{metric}_sd"] = mean, sd
        if name != "before":
            stats["folding_mean"] = _mean_sd([r["folding_fraction"] for r in rs])[0]
            stats["folding_max"] = float(np.nanmax([r["folding_fraction"] for r in rs]))
            stats["seconds_mean"] = _mean_sd([r["seconds"] for r in rs])[0]
        out[name] = stats
    return out


def table_format(rows: Sequence[dict[str, Any]]) -> str:
    """Table 3 layout: one line per case, DSC / HD95 / TRE before and after each method; mean ± SD."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    cols = ["before", *methods]
    head = f"{'case':>24} | " + " | ".join(f"{c:^26}" for c in cols)
    sub = f"{'':>24} | " + " | ".join(f"{'DSC':>6} {'HD95':>8} {'TRE':>8}  " for _ in cols)
    lines = [head, sub, "-" * len(head)]
    by = {(r["case"], r["method"]): r for r in rows}
    for c in cases:
        cells = []
        first = by.get((c, methods[0]))
        cells.append(
            f"{first['dsc_before']:6.3f} {first['hd95_before']:8.2f} {first['tre_before']:8.2f}  "
            if first
            else " " * 26
        )
        for m in methods:
            r = by.get((c, m))
            cells.append(
                f"{r['dsc_after']:6.3f} {r['hd95_after']:8.2f} {r['tre_after']:8.2f}  "
                if r
                else " " * 26
            )
        lines.append(f"{c:>24} | " + " | ".join(cells))
    lines.append("-" * len(head))
    s = summary(rows)
    for metric, label, fmt in (
        ("dsc", "DSC", ".3f"),
        ("hd95", "HD95 mm", ".2f"),
        ("tre", "TRE mm", ".2f"),
    ):
        cells = [
            f"{format(s[c][f'{metric}_mean'], fmt)} ± {format(s[c][f'{metric}_sd'], fmt)}".center(
                26
            )
            for c in cols
        ]
        lines.append(f"{'mean ± SD ' + label:>24} | " + " | ".join(cells))
    return "\n".join(lines)


def results_write(
    out: Path, rows: Sequence[dict[str, Any]], notes: Sequence[str], meta: dict[str, Any]
) -> None:
    """Write ``results.csv`` (one row per case × method) and ``results.json`` (rows, summary, notes)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp_csv = out / ".results.csv.tmp"
    with tmp_csv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(FIELDS))
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in FIELDS})
    tmp_csv.replace(out / "results.csv")

    def clean(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    doc = {"meta": meta, "notes": list(notes), "summary": summary(rows), "rows": list(rows)}
    tmp_json = out / ".results.json.tmp"
    tmp_json.write_text(json.dumps(clean(doc), indent=2), encoding="utf-8")
    tmp_json.replace(out / "results.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate registration methods (Table 3 layout).")
    parser.add_argument("--data", required=True, help="DeepReg / µ-RegPro paired folder")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=ALL_METHODS)
    parser.add_argument("--out", help="output folder (default DATA/evaluation)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N pairs")
    parser.add_argument("--threads", type=int, help="CPU threads for torch/SimpleITK")
    parser.add_argument("--io-steps", type=int, help="instance-optimisation steps")
    parser.add_argument("--geometry", choices=("auto", "affine", "resize"), default="auto")
    args = parser.parse_args(argv)
    data = Path(args.data)
    geometry = args.geometry
    if geometry == "auto":
        geometry = "affine" if (data / "dataset.json").exists() else "resize"
    synthetic = None
    if (data / "dataset.json").exists():
        synthetic = bool(json.loads((data / "dataset.json").read_text()).get("synthetic", False))
    try:
        pairs = list(deepreg_pairs(data, geometry=geometry))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        print(f"error: no pairs in {data}", file=sys.stderr)
        return 2
    rows, notes = evaluate_pairs(
        pairs, methods=args.methods, threads=args.threads, io_steps=args.io_steps
    )
    if not rows:
        print("error: no method could run: " + "; ".join(notes), file=sys.stderr)
        return 2
    if synthetic:
        notes.append(
            "all pairs are SIMULATED (dataset.json synthetic=true): not evidence on real TRUS"
        )
    print(table_format(rows))
    for n in notes:
        print(f"note: {n}")
    out = Path(args.out) if args.out else data / "evaluation"
    results_write(
        out, rows, notes, {"data": str(data), "geometry": geometry, "synthetic": synthetic}
    )
    print(f"wrote {out / 'results.csv'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
