"""The analysis tables formatted for the page: estimates with CIs in one cell, p-values rounded,
"—" for undefined. No Django here; the raw numbers are in ``tables``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from readerstudy.analysis.tables import ci_bound, entry_get


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


def fmt_estci_bound(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    if value is None:
        return "undefined"
    if low is None or high is None:
        return fmt_num(value, digits)
    return f"{fmt_num(value, digits)} [{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def fmt_pctci_bound(entry: Any) -> str:
    value = entry_get(entry, "value")
    if value is None:
        return "—"
    ci = entry_get(entry, "ci")
    text = f"{100 * float(value):.0f}%"
    lo, hi = ci_bound(ci, 0), ci_bound(ci, 1)
    if lo is not None and hi is not None:
        text += f" [{100 * lo:.0f}, {100 * hi:.0f}]"
    n = entry_get(entry, "n")
    k = entry_get(entry, "k")
    if n is not None and k is not None:
        text += f" ({k}/{n})"
    return text


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


@dataclass(frozen=True)
class DisplayTable:
    title: str
    headers: list[str]
    rows: list[list[str]]
    slug: str


def _display_per_reader_arm(results: Mapping[str, Any]) -> list[list[str]]:
    """Per reader and arm: AUC with CI, sensitivity/specificity, Likert."""
    return [
        [
            r["reader"],
            r["reader_level"],
            r["arm"],
            f"{r['n']} ({r['n_positive']}+/{r['n_negative']}−)",
            fmt_estci_bound(r["auc"], ci_bound(r["auc_ci"], 0), ci_bound(r["auc_ci"], 1)),
            fmt_num(r["auc_se"]),
            fmt_pctci_bound(r.get("sens_ge3")),
            fmt_pctci_bound(r.get("spec_ge3")),
            fmt_pctci_bound(r.get("sens_ge4")),
            fmt_pctci_bound(r.get("spec_ge4")),
            "—"
            if r["likert_mean"] is None
            else f"{fmt_num(r['likert_mean'], 2)} ± {fmt_num(r['likert_sd'], 2)} (n={r['likert_n']})",
        ]
        for r in results["per_reader_arm"]
    ]


def _display_tests(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per test: statistic with df, p, n with drops."""
    return [
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


def _display_kappa(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per kappa with its CI."""
    return [
        [
            k["kind"],
            k["comparison"],
            k.get("arm") or "",
            k["weighting"],
            fmt_estci_bound(k["kappa"], ci_bound(k.get("ci"), 0), ci_bound(k.get("ci"), 1)),
            str(k["n"]) + (f" ({k['n_dropped']} dropped)" if k.get("n_dropped") else ""),
            k.get("note") or "",
        ]
        for k in results["kappa"]
    ]


def _display_mrmc(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per MRMC difference: arm AUCs, difference with CI, statistic with df."""
    return [
        [
            m["analysis"],
            m["covariance"],
            " vs ".join(f"{a} {fmt_num(v)}" for a, v in zip(m["arms"], m["auc"])),
            fmt_estci_bound(
                m["difference"], ci_bound(m.get("ci"), 0), ci_bound(m.get("ci"), 1), digits=4
            ),
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


def display_tables(results: Mapping[str, Any]) -> list[DisplayTable]:
    """The tables as strings for the page: estimates with CIs in one cell, p-values rounded."""
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
            _display_per_reader_arm(results),
            "per-reader-arm",
        ),
        DisplayTable(
            "Tests",
            ["Test", "Comparison", "Arm", "Statistic", "p", "Method", "n", "Note"],
            _display_tests(results),
            "tests",
        ),
        DisplayTable(
            "Agreement (Cohen's / Fleiss' kappa)",
            ["Kind", "Comparison", "Arm", "Weighting", "κ [95% CI]", "n", "Note"],
            _display_kappa(results),
            "kappa",
        ),
        DisplayTable(
            "MRMC (Obuchowski–Rockette, Hillis df) — reader-averaged AUC difference",
            ["Analysis", "Covariance", "AUC", "Difference [95% CI]", "Statistic", "p", "Method"],
            _display_mrmc(results),
            "mrmc",
        ),
        DisplayTable(
            "Lesion side agreement with the biopsy side (reads pooled over readers)",
            ["Arm", "Agreement [95% CI] (k/n)"],
            [[sd["arm"], fmt_pctci_bound(sd)] for sd in results["side_agreement"]],
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
