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

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from readerstudy.analysis.frames import REFERENCE_STANDARDS, reads_frame, stats_frame
from readerstudy.analysis.localisation import localisation_build
from readerstudy.stats import study_analyse
from readerstudy.stats._base import jsonable

RESULTS_FORMAT = "mritrus.analysis/1"


def _natural(text: str) -> list[Any]:
    """Sort key that puts R2 before R10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _pair(low: Any, high: Any) -> list[float | None]:
    return [_finite(low), _finite(high)]


def _proportion(p: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if p is None:
        return None
    defined = p.get("defined", True)
    return {
        "value": _finite(p["estimate"]) if defined else None,
        "ci": _pair(p["ci_low"], p["ci_high"]) if defined else [None, None],
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
            "auc": _finite(auc["auc"]) if auc else None,
            "auc_se": _finite(auc["se"]) if auc else None,
            "auc_ci": _pair(auc["ci_low_clipped"], auc["ci_high_clipped"]) if auc else [None, None],
            "auc_ci_unclipped": _pair(auc["ci_low"], auc["ci_high"]) if auc else [None, None],
            "auc_method": auc["method"] if auc else "",
            "auc_note": ra["auc_note"],
            "roc": {"fpr": roc["fpr"], "tpr": roc["tpr"]} if roc else None,
            "likert_mean": _finite(ra["likert"]["mean"]),
            "likert_sd": _finite(ra["likert"]["sd"]),
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


def _rank_test(entry: Mapping[str, Any], *, family: str, comparison: str) -> dict[str, Any]:
    res = entry["result"]
    notes = []
    if res.get("n_zeros_dropped"):
        notes.append(f"{res['n_zeros_dropped']} zero differences dropped")
    if res.get("p_exact_conditional") is not None:
        notes.append(f"exact p given ties (permutation) = {res['p_exact_conditional']:.4g}")
    if not res.get("defined", True):
        notes.append(f"undefined: {res.get('reason', '')}")
    if entry.get("note"):
        notes.append(entry["note"])
    return {
        "family": family,
        "comparison": comparison,
        "reader": entry.get("reader") or None,
        "arm": entry.get("arm") or None,
        "statistic_name": res["statistic_name"],
        "statistic": _finite(res["statistic"]),
        "df": None,
        "p": _finite(res["p_value"]),
        "method": f"{res['method']}; p: {res['p_method']}",
        "n": res["n"],
        "n_dropped": res["n_incomplete_dropped"],
        "note": "; ".join(notes),
    }


def _tests(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for d in stats["delong_paired"]:
        t = d["test"]
        note = d["note"]
        if t is not None:
            note = (
                f"AUC {t['auc_a']:.3f} vs {t['auc_b']:.3f}, difference {t['difference']:.3f} "
                f"[{t['ci_low']:.3f}, {t['ci_high']:.3f}]"
                if t.get("defined", True)
                else f"undefined: {t.get('reason', '')}"
            )
        tests.append(
            {
                "family": "DeLong (paired AUC)",
                "comparison": f"{d['reader']}: {d['arm_a']} vs {d['arm_b']}",
                "reader": d["reader"],
                "arm": None,
                "statistic_name": "Z",
                "statistic": _finite(t["z"]) if t else None,
                "df": None,
                "p": _finite(t["p_value"]) if t else None,
                "method": t["method"] if t else "DeLong paired test",
                "n": d["n_pairs"],
                "n_dropped": d["n_incomplete_dropped"],
                "note": note,
            }
        )
    for w in stats["wilcoxon"]:
        tests.append(
            _rank_test(
                w,
                family="Wilcoxon signed-rank",
                comparison=f"{w['reader']}: Likert {w['group_a']} vs {w['group_b']}",
            )
        )
    for m in stats["mann_whitney"]:
        tests.append(
            _rank_test(
                m,
                family="Mann–Whitney U",
                comparison=f"Likert {m['group_a']} vs {m['group_b']} readers",
            )
        )
    for mc in stats["side_mcnemar"]:
        res = mc["result"]
        tests.append(
            {
                "family": "McNemar (lesion side)",
                "comparison": f"side correct: {mc['arm_a']} vs {mc['arm_b']}",
                "reader": None,
                "arm": None,
                "statistic_name": "χ²",
                "statistic": _finite(res["chi2"]),
                "df": 1.0 if res.get("defined", True) else None,
                "p": _finite(res["p_value"]),
                "method": res["method"],
                "n": res["n_pairs"],
                "n_dropped": res["n_incomplete_dropped"],
                "note": (
                    f"exact p = {res['p_exact']:.4g}" if res.get("p_exact") is not None else ""
                )
                + ("" if res.get("defined", True) else f"undefined: {res.get('reason', '')}"),
            }
        )
    for sp in stats["spearman"]:
        res = sp["result"]
        tests.append(
            {
                "family": "Spearman",
                "comparison": f"{sp['variable_x']} vs {sp['variable_y']}",
                "reader": None,
                "arm": sp["arm"],
                "statistic_name": "ρ",
                "statistic": _finite(res["rho"]),
                "df": None,
                "p": _finite(res["p_value"]),
                "method": res["method"],
                "n": res["n"],
                "n_dropped": res["n_incomplete_dropped"],
                "note": "; ".join(
                    x
                    for x in (
                        sp.get("note", ""),
                        "" if res.get("defined", True) else f"undefined: {res.get('reason', '')}",
                    )
                    if x
                ),
            }
        )
    for entry in _mrmc(stats):
        tests.append(
            {
                "family": "MRMC (Obuchowski–Rockette)",
                "comparison": f"{entry['arms'][1]} − {entry['arms'][0]}: {entry['analysis']}, "
                f"{entry['covariance']} covariance",
                "reader": None,
                "arm": None,
                "statistic_name": entry["statistic_name"],
                "statistic": entry["statistic"],
                "df": entry["df_den"],
                "p": entry["p"],
                "method": entry["method"],
                "n": entry["n_cases"],
                "n_dropped": stats["mrmc_n_cases_dropped"],
                "note": f"{entry['n_readers']} readers",
            }
        )
    return tests


def _kappa(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k in stats["kappa"]:
        res = k["result"]
        defined = res.get("defined", True)
        if k["kind"] == "within_reader":
            comparison, arm = f"{k['rater_a']}: {k['arm_a']} vs {k['arm_b']}", None
        else:
            comparison, arm = f"{k['rater_a']} vs {k['rater_b']}", k["arm_a"]
        out.append(
            {
                "kind": k["kind"].replace("_", " "),
                "comparison": comparison,
                "arm": arm,
                "weighting": k["scale"],
                "kappa": _finite(res["kappa"]) if defined else None,
                "ci": _pair(res["ci_low"], res["ci_high"]) if defined else [None, None],
                "n": res["n"],
                "n_dropped": res["n_incomplete_dropped"],
                "method": res["method"],
                "note": "" if defined else f"undefined: {res.get('reason', '')}",
            }
        )
    for f in stats["fleiss"]:
        res = f["result"]
        defined = res.get("defined", True)
        out.append(
            {
                "kind": "Fleiss (all readers)",
                "comparison": f"{res['n_raters']} readers",
                "arm": f["arm"],
                "weighting": f["scale"],
                "kappa": _finite(res["kappa"]) if defined else None,
                "ci": [None, None],
                "n": res["n_subjects"],
                "n_dropped": res["n_incomplete_dropped"],
                "method": res["method"],
                "note": (
                    f"z = {res['z']:.3f}, p = {res['p_value']:.3g} (H0: κ = 0)"
                    if defined and res.get("z") is not None and res.get("p_value") is not None
                    else ("" if defined else f"undefined: {res.get('reason', '')}")
                ),
            }
        )
    return out


def _mrmc(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in stats["mrmc"]:
        treatments = list(m["treatments"])
        averaged = dict(zip(treatments, m["reader_averaged_auc"]))
        for key in (
            "random_readers_random_cases",
            "fixed_readers_random_cases",
            "random_readers_fixed_cases",
        ):
            analysis = m[key]
            single = len(analysis["differences"]) == 1
            for d in analysis["differences"]:
                a, b = d["treatment_a"], d["treatment_b"]
                if single:
                    name, stat = analysis["statistic_name"], _finite(analysis["statistic"])
                    df_num, df_den = (
                        _finite(analysis["df_numerator"]),
                        _finite(analysis["df_denominator"]),
                    )
                    p = _finite(analysis["p_value"])
                else:
                    df = _finite(d["df"])
                    name, stat, df_num, df_den = (
                        ("t" if df else "z"),
                        _finite(d["statistic"]),
                        None,
                        df,
                    )
                    p = _finite(d["p_value"])
                out.append(
                    {
                        "analysis": analysis["name"],
                        "covariance": m["covariance_method"],
                        "arms": [b, a],
                        "auc": [_finite(averaged[b]), _finite(averaged[a])],
                        "difference": _finite(d["difference"]),
                        "ci": _pair(d["ci_low"], d["ci_high"]),
                        "statistic_name": name,
                        "statistic": stat,
                        "df_num": df_num,
                        "df_den": df_den,
                        "p": p,
                        "method": m["method"],
                        "n_readers": len(m["readers"]),
                        "n_cases": m["n_cases"],
                    }
                )
    return out


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
    analysis = study_analyse(stats_frame(reads), reference=reference, arms=arms_present)
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
        "tests": _tests(stats),
        "kappa": _kappa(stats),
        "mrmc": _mrmc(stats),
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
