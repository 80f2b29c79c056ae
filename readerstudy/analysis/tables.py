"""The analysis results as tables: one DataFrame per table (raw numbers, for the XLSX workbook).
The same tables formatted for the page are in ``page_tables``. No Django here.

The results dict is the one ``readerstudy.analysis.services.analysis_run`` returns (format
``mritrus.analysis/1``); see ``readerstudy.analysis.results`` for its keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def ci_bound(value: Any, i: int) -> float | None:
    if not isinstance(value, Sequence) or len(value) != 2:
        return None
    v = value[i]
    return None if v is None else float(v)


def entry_get(entry: Any, key: str) -> Any:
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
            "auc_ci_low": ci_bound(r["auc_ci"], 0),
            "auc_ci_high": ci_bound(r["auc_ci"], 1),
            "auc_ci_low_unclipped": ci_bound(r["auc_ci_unclipped"], 0),
            "auc_ci_high_unclipped": ci_bound(r["auc_ci_unclipped"], 1),
        }
        for cut in ("ge3", "ge4"):
            for kind in ("sens", "spec"):
                entry = r.get(f"{kind}_{cut}")
                row[f"{kind}_{cut}"] = entry_get(entry, "value")
                row[f"{kind}_{cut}_ci_low"] = ci_bound(entry_get(entry, "ci"), 0)
                row[f"{kind}_{cut}_ci_high"] = ci_bound(entry_get(entry, "ci"), 1)
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
            "ci_low": ci_bound(k.get("ci"), 0),
            "ci_high": ci_bound(k.get("ci"), 1),
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
                "ci_low": ci_bound(m.get("ci"), 0),
                "ci_high": ci_bound(m.get("ci"), 1),
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
            "ci_low": ci_bound(s.get("ci"), 0),
            "ci_high": ci_bound(s.get("ci"), 1),
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
