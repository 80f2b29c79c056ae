"""The analysis results as tables: one DataFrame per table (raw numbers, for the XLSX workbook),
and the same tables formatted for the page. No Django here.

The results dict is the one ``readerstudy.analysis.services.analysis_run`` returns (format
``mritrus.analysis/1``); see ``readerstudy.analysis.results`` for its keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


def _ci(value: Any, i: int) -> float | None:
    if not isinstance(value, Sequence) or len(value) != 2:
        return None
    v = value[i]
    return None if v is None else float(v)


def _prop(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, Mapping) else None


def table_per_reader_arm(results: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for r in results["per_reader_arm"]:
        row: dict[str, Any] = {
            "reader": r["reader"],
            "reader_level": r["reader_level"],
            "arm": r["arm"],
            "n_cases": r["n"],
            "n_positive": r["n_positive"],
            "n_negative": r["n_negative"],
            "auc": r["auc"],
            "auc_se": r["auc_se"],
            "auc_ci_low": _ci(r["auc_ci"], 0),
            "auc_ci_high": _ci(r["auc_ci"], 1),
            "auc_ci_low_unclipped": _ci(r["auc_ci_unclipped"], 0),
            "auc_ci_high_unclipped": _ci(r["auc_ci_unclipped"], 1),
        }
        for cut in ("ge3", "ge4"):
            for kind in ("sens", "spec"):
                entry = r.get(f"{kind}_{cut}")
                row[f"{kind}_{cut}"] = _prop(entry, "value")
                row[f"{kind}_{cut}_ci_low"] = _ci(_prop(entry, "ci"), 0)
                row[f"{kind}_{cut}_ci_high"] = _ci(_prop(entry, "ci"), 1)
        row["likert_mean"] = r["likert_mean"]
        row["likert_sd"] = r["likert_sd"]
        row["likert_n"] = r["likert_n"]
        rows.append(row)
    return pd.DataFrame(rows)


_TEST_COLUMNS = [
    "family",
    "comparison",
    "arm",
    "statistic_name",
    "statistic",
    "df",
    "p",
    "method",
    "n",
    "n_dropped",
    "note",
]


def table_tests(results: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [{c: t.get(c) for c in _TEST_COLUMNS} for t in results["tests"]], columns=_TEST_COLUMNS
    )


def table_kappa(results: Mapping[str, Any]) -> pd.DataFrame:
    rows = [
        {
            "kind": k["kind"],
            "comparison": k["comparison"],
            "arm": k.get("arm"),
            "weighting": k["weighting"],
            "kappa": k["kappa"],
            "ci_low": _ci(k.get("ci"), 0),
            "ci_high": _ci(k.get("ci"), 1),
            "n": k["n"],
            "n_dropped": k.get("n_dropped"),
            "method": k.get("method"),
            "note": k.get("note", ""),
        }
        for k in results["kappa"]
    ]
    return pd.DataFrame(rows)


def table_mrmc(results: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for m in results["mrmc"]:
        arms = m["arms"]
        rows.append(
            {
                "analysis": m["analysis"],
                # With three arms a sheet holds several comparisons: each row names its own.
                "comparison": f"{arms[1]} − {arms[0]}",
                "arm_a": arms[0],
                "arm_b": arms[1],
                "covariance": m["covariance"],
                "auc_a": m["auc"][0],
                "auc_b": m["auc"][1],
                "difference": m["difference"],
                "ci_low": _ci(m.get("ci"), 0),
                "ci_high": _ci(m.get("ci"), 1),
                "statistic_name": m["statistic_name"],
                "statistic": m["statistic"],
                "df_num": m.get("df_num"),
                "df_den": m.get("df_den"),
                "p": m["p"],
                "method": m["method"],
                "n_readers": m.get("n_readers"),
                "n_cases": m.get("n_cases"),
            }
        )
    return pd.DataFrame(rows)


def table_side_agreement(results: Mapping[str, Any]) -> pd.DataFrame:
    rows = [
        {
            "arm": s["arm"],
            "agreement": s.get("value"),
            "ci_low": _ci(s.get("ci"), 0),
            "ci_high": _ci(s.get("ci"), 1),
            "k": s.get("k"),
            "n": s.get("n"),
        }
        for s in results["side_agreement"]
    ]
    return pd.DataFrame(rows, columns=["arm", "agreement", "ci_low", "ci_high", "k", "n"])


LOCALISATION_COLUMNS = [
    "arm",
    "n_reads",
    "n_marked",
    "n_with_biopsy_side",
    "side_agrees_with_biopsy",
    "side_agreement",
    "mark_matches_stated_side",
    "n_stated_side",
    "n_diameters",
    "diameter_median_mm",
    "n_reader_pairs",
    "distance_median_mm",
    "distance_mean_mm",
    "within_10mm",
]


def table_localisation(results: Mapping[str, Any]) -> pd.DataFrame:
    rows = (results.get("localisation") or {}).get("per_arm", [])
    return pd.DataFrame(
        [{k: r.get(k) for k in LOCALISATION_COLUMNS} for r in rows], columns=LOCALISATION_COLUMNS
    )


def _localisation_rows(results: Mapping[str, Any]) -> list[list[str]]:
    out = []
    for r in (results.get("localisation") or {}).get("per_arm", []):
        agree = (
            f"{r['side_agrees_with_biopsy']}/{r['n_with_biopsy_side']}"
            f" ({fmt_num(r['side_agreement'] * 100, 1)} %)"
            if r["side_agreement"] is not None
            else "—"
        )
        distance = (
            f"{fmt_num(r['distance_median_mm'], 1)} mm (mean {fmt_num(r['distance_mean_mm'], 1)};"
            f" {r['n_reader_pairs']} pairs; {fmt_num(r['within_10mm'] * 100, 0)} % ≤ 10 mm)"
            if r["distance_median_mm"] is not None
            else "—"
        )
        zones = ", ".join(f"{k} {v}" for k, v in sorted(r["zones"].items())) or "—"
        diameter = (
            f"{fmt_num(r['diameter_median_mm'], 1)} mm (n={r['n_diameters']})"
            if r.get("diameter_median_mm") is not None
            else "—"
        )
        out.append([r["arm"], f"{r['n_marked']}/{r['n_reads']}", agree, zones, diameter, distance])
    return out


def table_missing(results: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"note": list(results["missing"])}, columns=["note"])


def analysis_tables(results: Mapping[str, Any]) -> list[tuple[str, pd.DataFrame]]:
    """Every table of the analysis, titled, in page order (the XLSX has one sheet per table)."""
    return [
        ("Per reader and arm", table_per_reader_arm(results)),
        ("Tests", table_tests(results)),
        ("Kappa", table_kappa(results)),
        ("MRMC", table_mrmc(results)),
        ("Lesion side", table_side_agreement(results)),
        ("Localisation", table_localisation(results)),
        ("Missing data", table_missing(results)),
    ]


# --- page formatting ------------------------------------------------------------------------------


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(f):
        return "—"
    return f"{f:.{digits}f}"


def fmt_p(value: Any) -> str:
    if value is None:
        return "—"
    f = float(value)
    if not math.isfinite(f):
        return "—"
    return "< 0.001" if f < 0.001 else f"{f:.3f}"


def fmt_est_ci(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    if value is None:
        return "undefined"
    if low is None or high is None:
        return fmt_num(value, digits)
    return f"{fmt_num(value, digits)} [{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def fmt_pct_ci(entry: Any) -> str:
    value = _prop(entry, "value")
    if value is None:
        return "—"
    ci = _prop(entry, "ci")
    text = f"{100 * float(value):.0f}%"
    lo, hi = _ci(ci, 0), _ci(ci, 1)
    if lo is not None and hi is not None:
        text += f" [{100 * lo:.0f}, {100 * hi:.0f}]"
    n = _prop(entry, "n")
    k = _prop(entry, "k")
    if n is not None and k is not None:
        text += f" ({k}/{n})"
    return text


@dataclass(frozen=True)
class DisplayTable:
    title: str
    headers: list[str]
    rows: list[list[str]]
    slug: str


def display_tables(results: Mapping[str, Any]) -> list[DisplayTable]:
    """The tables as strings for the page: estimates with CIs in one cell, p-values rounded."""
    per = [
        [
            r["reader"],
            r["reader_level"],
            r["arm"],
            f"{r['n']} ({r['n_positive']}+/{r['n_negative']}−)",
            fmt_est_ci(r["auc"], _ci(r["auc_ci"], 0), _ci(r["auc_ci"], 1)),
            fmt_num(r["auc_se"]),
            fmt_pct_ci(r.get("sens_ge3")),
            fmt_pct_ci(r.get("spec_ge3")),
            fmt_pct_ci(r.get("sens_ge4")),
            fmt_pct_ci(r.get("spec_ge4")),
            "—"
            if r["likert_mean"] is None
            else f"{fmt_num(r['likert_mean'], 2)} ± {fmt_num(r['likert_sd'], 2)} (n={r['likert_n']})",
        ]
        for r in results["per_reader_arm"]
    ]
    tests = [
        [
            t["family"],
            t["comparison"],
            t.get("arm") or "",
            f"{t['statistic_name']} = {fmt_num(t['statistic'])}"
            + (f" (df {fmt_num(t['df'], 2)})" if t.get("df") is not None else ""),
            fmt_p(t["p"]),
            t["method"],
            str(t["n"]) + (f" ({t['n_dropped']} dropped)" if t.get("n_dropped") else ""),
            t.get("note") or "",
        ]
        for t in results["tests"]
    ]
    kappa = [
        [
            k["kind"],
            k["comparison"],
            k.get("arm") or "",
            k["weighting"],
            fmt_est_ci(k["kappa"], _ci(k.get("ci"), 0), _ci(k.get("ci"), 1)),
            str(k["n"]) + (f" ({k['n_dropped']} dropped)" if k.get("n_dropped") else ""),
            k.get("note") or "",
        ]
        for k in results["kappa"]
    ]
    mrmc = [
        [
            m["analysis"],
            m["covariance"],
            " vs ".join(f"{a} {fmt_num(v)}" for a, v in zip(m["arms"], m["auc"])),
            fmt_est_ci(m["difference"], _ci(m.get("ci"), 0), _ci(m.get("ci"), 1), digits=4),
            f"{m['statistic_name']} = {fmt_num(m['statistic'])}"
            + (
                f" (df {fmt_num(m['df_num'], 0)}, {fmt_num(m['df_den'], 2)})"
                if m.get("df_den") is not None
                else (f" (df {fmt_num(m['df_num'], 0)})" if m.get("df_num") is not None else "")
            ),
            fmt_p(m["p"]),
            m["method"],
        ]
        for m in results["mrmc"]
    ]
    return [
        DisplayTable(
            "AUC, sensitivity and specificity, Likert — per reader and arm",
            [
                "Reader",
                "Level",
                "Arm",
                "Cases",
                "AUC [95% CI]",
                "SE",
                "Sens ≥3",
                "Spec ≥3",
                "Sens ≥4",
                "Spec ≥4",
                "Likert mean ± SD",
            ],
            per,
            "per-reader-arm",
        ),
        DisplayTable(
            "Tests",
            ["Test", "Comparison", "Arm", "Statistic", "p", "Method", "n", "Note"],
            tests,
            "tests",
        ),
        DisplayTable(
            "Agreement (Cohen's / Fleiss' kappa)",
            ["Kind", "Comparison", "Arm", "Weighting", "κ [95% CI]", "n", "Note"],
            kappa,
            "kappa",
        ),
        DisplayTable(
            "MRMC (Obuchowski–Rockette, Hillis df) — reader-averaged AUC difference",
            ["Analysis", "Covariance", "AUC", "Difference [95% CI]", "Statistic", "p", "Method"],
            mrmc,
            "mrmc",
        ),
        DisplayTable(
            "Lesion side agreement with the biopsy side (reads pooled over readers)",
            ["Arm", "Agreement [95% CI] (k/n)"],
            [[sd["arm"], fmt_pct_ci(sd)] for sd in results["side_agreement"]],
            "side",
        ),
        DisplayTable(
            "Lesion localisation from the readers' marks",
            [
                "Arm",
                "Reads with a mark",
                "Side of the mark = biopsy side",
                "Zone (reader's) of marked lesions",
                "Longest diameter, median",
                "Distance between readers' marks, median",
            ],
            _localisation_rows(results),
            "localisation",
        ),
    ]
