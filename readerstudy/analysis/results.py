"""Build the results dict of a snapshot: run ``readerstudy.stats.study_analyse`` on its reads and
lay the answer out for the page, the figures and the exports. No Django here.

Results (format ``mritrus.analysis/1``), all strict JSON (NaN → null)::

    snapshot        {sha256, created_at, study: {...payload study}, n_reads}
    computed_at     ISO 8601 UTC
    reference_standard, reference_label, synthetic, arms, baseline_arm
    readers         [{reader, level}]
    per_reader_arm  [{reader, reader_level, arm, n, n_positive, n_negative, auc, auc_se, auc_ci,
                      auc_ci_unclipped, auc_note, sens_ge3, spec_ge3, sens_ge4, spec_ge4 (each
                      {value, ci, k, n}), likert_mean, likert_sd, likert_n, side_agreement, roc}]
    tests           [{family, comparison, reader, arm, statistic_name, statistic, df, p, method, n,
                      n_dropped, note}]   DeLong, Wilcoxon, Mann–Whitney, McNemar, Spearman, MRMC
    kappa           [{kind, comparison, arm, weighting, kappa, ci, n, n_dropped, method, note}]
    mrmc            [{analysis, covariance, arms, auc, difference, ci, statistic_name, statistic,
                      df_num, df_den, p, method, n_readers, n_cases}]
    side_agreement  [{arm, value, ci, k, n}]
    likert_pairs    {arms: [baseline, other], rows: [{reader, case, <arm>: likert, ...}]}
    missing         [str]
    stats           the StudyAnalysis as ``to_dict()`` gives it (everything, unabridged)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from readerstudy.analysis.frames import REFERENCE_STANDARDS, reads_frame
from readerstudy.analysis.localisation import localisation_build
from readerstudy.analysis.result_rows import finite, kappa_rows, mrmc_rows, pair, test_rows
from readerstudy.stats import study_analyse
from readerstudy.stats._base import jsonable

RESULTS_FORMAT = "mritrus.analysis/1"


def _natural(text: str) -> list[Any]:
    """Sort key that puts R2 before R10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _proportion(p: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if p is None:
        return None
    defined = p.get("defined", True)
    return {
        "value": finite(p["estimate"]) if defined else None,
        "ci": pair(p["ci_low"], p["ci_high"]) if defined else [None, None],
        "k": p["successes"],
        "n": p["n"],
    }


def _per_reader_arm(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for ra in stats["reader_arms"]:
        auc = ra["auc"]
        roc = ra["roc"]
        row: dict[str, Any] = {
            "reader": ra["reader"],
            "reader_level": ra["reader_level"],
            "arm": ra["arm"],
            "n": ra["n_scored_with_reference"],
            "n_scored": ra["n_scored"],
            "auc": finite(auc["auc"]) if auc else None,
            "auc_se": finite(auc["se"]) if auc else None,
            "auc_ci": pair(auc["ci_low_clipped"], auc["ci_high_clipped"]) if auc else [None, None],
            "auc_ci_unclipped": pair(auc["ci_low"], auc["ci_high"]) if auc else [None, None],
            "auc_method": auc["method"] if auc else "",
            "auc_note": ra["auc_note"],
            "roc": {"fpr": roc["fpr"], "tpr": roc["tpr"]} if roc else None,
            "likert_mean": finite(ra["likert"]["mean"]),
            "likert_sd": finite(ra["likert"]["sd"]),
            "likert_n": ra["likert"]["n"],
            "side_agreement": _proportion(ra["side_agreement"]),
        }
        n_pos = n_neg = 0
        for acc in ra["accuracy"]:
            cut = f"ge{int(acc['threshold'])}"
            row[f"sens_{cut}"] = _proportion(acc["sensitivity"])
            row[f"spec_{cut}"] = _proportion(acc["specificity"])
            n_pos, n_neg = acc["tp"] + acc["fn"], acc["tn"] + acc["fp"]
        row["n_positive"], row["n_negative"] = n_pos, n_neg
        rows.append(row)
    return rows


def _likert_pairs(reads: pd.DataFrame, *, arms: list[str], baseline: str) -> dict[str, Any]:
    others = [a for a in arms if a != baseline]
    if not others:
        return {"arms": [baseline], "rows": []}
    # Every arm, baseline first: a three-arm study shows all three, not the first two.
    pair = [baseline, *others]
    sub = reads[reads["arm"].isin(pair)][["reader", "case", "arm", "likert"]]
    wide = sub.pivot_table(
        index=["reader", "case"], columns="arm", values="likert", aggfunc="first", observed=True
    )
    rows = []
    for (reader, case), values in wide.iterrows():
        row: dict[str, Any] = {"reader": str(reader), "case": str(case)}
        for arm in pair:
            v = values.get(arm) if arm in values.index else None
            row[arm] = None if v is None or pd.isna(v) else int(v)
        rows.append(row)
    return {"arms": pair, "rows": rows}


def analysis_results_build(
    *, payload: Mapping[str, Any], sha256: str, created_at: str, synthetic: bool
) -> dict[str, Any]:
    """Everything the page, the figures and the exports show, from one snapshot payload."""
    reads = reads_frame(payload)
    study = payload["study"]
    reference = study["reference_standard"]
    if reads.empty:
        raise ValueError("the snapshot holds no submitted read: there is nothing to analyse")
    arms_present = [a for a in study["arms"] if a in set(reads["arm"])]
    analysis = study_analyse(reads, reference=reference, arms=arms_present)
    stats = analysis.to_dict()
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "snapshot": {
            "sha256": sha256,
            "created_at": created_at,
            "study": dict(study),
            "n_reads": len(reads),
        },
        "computed_at": datetime.now(UTC).isoformat(),
        "reference_standard": reference,
        "reference_label": REFERENCE_STANDARDS[reference],
        "synthetic": bool(synthetic),
        "arms": list(stats["arms"]),
        "baseline_arm": stats["baseline_arm"],
        "readers": [
            {"reader": r, "level": stats["reader_levels"].get(r, "")}
            for r in sorted(stats["readers"], key=_natural)
        ],
        "per_reader_arm": sorted(
            _per_reader_arm(stats),
            key=lambda row: (list(stats["arms"]).index(row["arm"]), _natural(row["reader"])),
        ),
        "tests": test_rows(stats),
        "kappa": kappa_rows(stats),
        "mrmc": mrmc_rows(stats),
        "side_agreement": [
            {"arm": s["arm"], **(_proportion(s["agreement"]) or {})}
            for s in stats["side_agreement"]
        ],
        "likert_pairs": _likert_pairs(
            reads, arms=list(stats["arms"]), baseline=stats["baseline_arm"]
        ),
        "localisation": localisation_build(payload),
        "missing": list(stats["notes"]),
        "stats": stats,
    }
    out = jsonable(results)
    assert isinstance(out, dict)
    return out
