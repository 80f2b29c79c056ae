"""The rows of the results' ``tests``, ``kappa`` and ``mrmc`` lists, from ``StudyAnalysis.to_dict()``
(see ``readerstudy.analysis.results`` for the layout). No Django here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def finite(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def pair(low: Any, high: Any) -> list[float | None]:
    return [finite(low), finite(high)]


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
        "statistic": finite(res["statistic"]),
        "df": None,
        "p": finite(res["p_value"]),
        "method": f"{res['method']}; p: {res['p_method']}",
        "n": res["n"],
        "n_dropped": res["n_incomplete_dropped"],
        "note": "; ".join(notes),
    }


def kappa_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
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
                "kappa": finite(res["kappa"]) if defined else None,
                "ci": pair(res["ci_low"], res["ci_high"]) if defined else [None, None],
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
                "kappa": finite(res["kappa"]) if defined else None,
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


def mrmc_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
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
                    name, stat = analysis["statistic_name"], finite(analysis["statistic"])
                    df_num, df_den = (
                        finite(analysis["df_numerator"]),
                        finite(analysis["df_denominator"]),
                    )
                    p = finite(analysis["p_value"])
                else:
                    df = finite(d["df"])
                    name, stat, df_num, df_den = (
                        ("t" if df else "z"),
                        finite(d["statistic"]),
                        None,
                        df,
                    )
                    p = finite(d["p_value"])
                out.append(
                    {
                        "analysis": analysis["name"],
                        "covariance": m["covariance_method"],
                        "arms": [b, a],
                        "auc": [finite(averaged[b]), finite(averaged[a])],
                        "difference": finite(d["difference"]),
                        "ci": pair(d["ci_low"], d["ci_high"]),
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


def _delong_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """DeLong paired AUC tests, with the two AUCs and the difference in the note."""
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
                "statistic": finite(t["z"]) if t else None,
                "df": None,
                "p": finite(t["p_value"]) if t else None,
                "method": t["method"] if t else "DeLong paired test",
                "n": d["n_pairs"],
                "n_dropped": d["n_incomplete_dropped"],
                "note": note,
            }
        )
    return tests


def _rank_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Wilcoxon (per reader, arm vs baseline) and Mann–Whitney (junior vs senior) on Likert."""
    tests: list[dict[str, Any]] = []
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
    return tests


def _mcnemar_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """McNemar of lesion side correct, arm vs baseline."""
    tests: list[dict[str, Any]] = []
    for mc in stats["side_mcnemar"]:
        res = mc["result"]
        tests.append(
            {
                "family": "McNemar (lesion side)",
                "comparison": f"side correct: {mc['arm_a']} vs {mc['arm_b']}",
                "reader": None,
                "arm": None,
                "statistic_name": "χ²",
                "statistic": finite(res["chi2"]),
                "df": 1.0 if res.get("defined", True) else None,
                "p": finite(res["p_value"]),
                "method": res["method"],
                "n": res["n_pairs"],
                "n_dropped": res["n_incomplete_dropped"],
                "note": (
                    f"exact p = {res['p_exact']:.4g}" if res.get("p_exact") is not None else ""
                )
                + ("" if res.get("defined", True) else f"undefined: {res.get('reason', '')}"),
            }
        )
    return tests


def _spearman_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Spearman of PI-RADS with ISUP per arm."""
    tests: list[dict[str, Any]] = []
    for sp in stats["spearman"]:
        res = sp["result"]
        tests.append(
            {
                "family": "Spearman",
                "comparison": f"{sp['variable_x']} vs {sp['variable_y']}",
                "reader": None,
                "arm": sp["arm"],
                "statistic_name": "ρ",
                "statistic": finite(res["rho"]),
                "df": None,
                "p": finite(res["p_value"]),
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
    return tests


def _mrmc_test_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The MRMC differences as test rows (the MRMC table has the full detail)."""
    tests: list[dict[str, Any]] = []
    for entry in mrmc_rows(stats):
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


def test_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every test in the page's order: DeLong, Wilcoxon, Mann–Whitney, McNemar, Spearman, MRMC."""
    return [
        *_delong_rows(stats),
        *_rank_rows(stats),
        *_mcnemar_rows(stats),
        *_spearman_rows(stats),
        *_mrmc_test_rows(stats),
    ]
