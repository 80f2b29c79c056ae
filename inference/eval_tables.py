"""Tables of :mod:`inference.evaluate`: summary with ``n``, the Table 3 layout, CSV/JSON files.

Every figure is measured against the pairs' ground truth. A mean is over the pairs where the metric
is defined; ``n`` says how many that is, and failed registrations are counted in ``failed``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIELDS", "results_write", "summary", "table_format"]

FIELDS = (
    "case",
    "method",
    "labels",
    "status",
    "model",
    "dsc_initial",
    "dsc_after",
    "hd95_initial",
    "hd95_after",
    "tre_initial",
    "tre_after",
    "folding_fraction",
    "seconds",
    "note",
)
METRICS = ("dsc", "hd95", "tre")


def _finite(values: Sequence[Any]) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return v[np.isfinite(v)]


def _stats(values: Sequence[Any]) -> tuple[float, float, int]:
    v = _finite(values)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per column (``initial`` = the initial alignment, then each method): mean, SD and n of each
    metric, pairs in all, failed, reverted by the guard, folding and seconds. Keys are
    ``<labels>/<column>`` when rows mix label modes, else the column name."""
    out: dict[str, dict[str, float]] = {}
    modes = list(dict.fromkeys(r.get("labels", "given") for r in rows))
    for mode in modes:
        rs_mode = [r for r in rows if r.get("labels", "given") == mode]
        methods = list(dict.fromkeys(r["method"] for r in rs_mode))
        prefix = f"{mode}/" if len(modes) > 1 else ""
        initial_rows = [r for r in rs_mode if r["method"] == methods[0]] if methods else []
        groups = {"initial alignment": (initial_rows, "initial")}
        for m in methods:
            groups[m] = ([r for r in rs_mode if r["method"] == m], "after")
        for name, (rs, stage) in groups.items():
            st: dict[str, float] = {
                "pairs": float(len(rs)),
                "failed": float(sum(r["status"] == "failed" for r in rs)),
                "reverted": float(sum(r["status"] == "reverted" for r in rs)),
            }
            for metric in METRICS:
                mean, sd, n = _stats([r.get(f"{metric}_{stage}") for r in rs])
                st[f"{metric}_mean"], st[f"{metric}_sd"], st[f"{metric}_n"] = mean, sd, float(n)
            if stage == "after":
                st["folding_mean"] = _stats([r.get("folding_fraction") for r in rs])[0]
                fold = _finite([r.get("folding_fraction") for r in rs])
                st["folding_max"] = float(fold.max()) if fold.size else math.nan
                st["seconds_mean"] = _stats([r.get("seconds") for r in rs])[0]
                worse = [
                    r
                    for r in rs
                    if r["status"] != "failed"
                    and (r.get("dsc_after", 0) or 0) < (r.get("dsc_initial", 0) or 0) - 1e-9
                ]
                st["worse_than_initial"] = float(len(worse))
            out[prefix + name] = st
    return out


def _cell(values: tuple[Any, Any, Any]) -> str:
    d, h, t = (math.nan if v is None else float(v) for v in values)
    return f"{d:6.3f} {h:8.2f} {t:8.2f}  "


def table_format(rows: Sequence[dict[str, Any]], *, labels: str = "") -> str:
    """Table 3 layout: one line per case, DSC / HD95 (mm) / TRE (mm) at the initial alignment and
    after each method (a failed registration reads FAILED); then mean ± SD (n) per column."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    cols = ["initial alignment", *methods]
    title = {
        "given": "registration used the given (ground-truth) gland labels",
        "segmented": "registration used SEGMENTED gland labels (the segmenters'; no ground truth)",
    }.get(labels, "")
    head = f"{'case':>28} | " + " | ".join(f"{c:^26}" for c in cols)
    sub = f"{'':>28} | " + " | ".join(f"{'DSC':>6} {'HD95':>8} {'TRE':>8}  " for _ in cols)
    lines = [f"{title}; all figures against ground truth" if title else "", head, sub]
    lines.append("-" * len(head))
    by = {(r["case"], r["method"]): r for r in rows}
    for c in cases:
        first = next((by[(c, m)] for m in methods if (c, m) in by), None)
        cells = [
            _cell((first.get("dsc_initial"), first.get("hd95_initial"), first.get("tre_initial")))
            if first and first["status"] != "failed"
            else f"{'FAILED':^26}"
        ]
        for m in methods:
            r = by.get((c, m))
            if r is None:
                cells.append(" " * 26)
            elif r["status"] == "failed":
                cells.append(f"{'FAILED':^26}")
            else:
                mark = "*" if r["status"] == "reverted" else " "
                cells.append(_cell((r["dsc_after"], r["hd95_after"], r["tre_after"]))[:-1] + mark)
        lines.append(f"{c[-28:]:>28} | " + " | ".join(cells))
    lines.append("-" * len(head))
    s = summary(rows)
    for metric, label, fmt in (
        ("dsc", "DSC", ".3f"),
        ("hd95", "HD95 mm", ".2f"),
        ("tre", "TRE mm", ".2f"),
    ):
        cells = []
        for c in cols:
            st = s[c]
            text = f"{format(st[f'{metric}_mean'], fmt)} ± {format(st[f'{metric}_sd'], fmt)}"
            cells.append(f"{text} (n={int(st[f'{metric}_n'])})".center(26))
        lines.append(f"{'mean ± SD ' + label:>28} | " + " | ".join(cells))
    fails = [
        f"{m}: {int(s[m]['failed'])} failed, {int(s[m]['reverted'])} reverted to the initial "
        f"alignment (*), {int(s[m]['worse_than_initial'])} worse than initial, folding max "
        f"{s[m]['folding_max']:.4f}"
        for m in methods
    ]
    lines.append(f"{len(cases)} pairs. " + "; ".join(fails))
    return "\n".join(lines)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def results_write(
    out: Path, rows: Sequence[dict[str, Any]], notes: Sequence[str], meta: dict[str, Any]
) -> None:
    """Write ``results.csv`` (one row per case × labels × method) and ``results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp_csv = out / ".results.csv.tmp"
    with tmp_csv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(FIELDS))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    tmp_csv.replace(out / "results.csv")
    doc = {"meta": meta, "notes": list(notes), "summary": summary(rows), "rows": list(rows)}
    tmp_json = out / ".results.json.tmp"
    tmp_json.write_text(json.dumps(_clean(doc), indent=2), encoding="utf-8")
    tmp_json.replace(out / "results.json")
