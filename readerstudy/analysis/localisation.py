"""Localisation of the index lesion from the readers' marks (snapshot payload → plain dicts).

A mark is in served patient mm relative to the gland centre of the display grid
(readerstudy/display.py): +x is the patient's left. So the side of a mark is the sign of x (within
``MIDLINE_MM`` of the centre: midline), compared with the biopsy side; and two readers' marks on
the same case and arm share a frame (the same series, the same centre), so their distance is
meaningful. Marks of different arms are never compared: their frames differ (MR vs TRUS).
No Django: exports and tests call this on a payload alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from itertools import combinations
from typing import Any

MIDLINE_MM = 2.0
CLOSE_MM = 10.0


def mark_side(mark: Mapping[str, Any] | None) -> str:
    """left / right / midline of a mark, or "" without one."""
    if not mark:
        return ""
    x = float(mark["x"])
    if abs(x) < MIDLINE_MM:
        return "midline"
    return "left" if x > 0 else "right"


def _agrees(side: str, biopsy: str) -> bool:
    return side == biopsy or (biopsy == "bilateral" and side in ("left", "right"))


def localisation_build(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Per arm: how many reads carry a mark, side of the mark vs the biopsy side, zone counts of
    marked lesions, and the distances between readers' marks of one case."""
    arms = list(payload["study"].get("arms", []))
    per_arm: list[dict[str, Any]] = []
    for arm in arms:
        reads = [r for r in payload["reads"] if r["arm"] == arm]
        marked = [r for r in reads if r.get("mark")]
        sided = [r for r in marked if r.get("lesion_side") in ("left", "right", "bilateral")]
        agree = sum(_agrees(mark_side(r["mark"]), r["lesion_side"]) for r in sided)
        consistent = [r for r in marked if r.get("side") in ("left", "right")]
        by_case: dict[Any, list[Mapping[str, Any]]] = {}
        for r in marked:
            by_case.setdefault(r["case_code"], []).append(r)
        distances = [
            math.dist(
                [a["mark"][k] for k in ("x", "y", "z")], [b["mark"][k] for k in ("x", "y", "z")]
            )
            for rows in by_case.values()
            for a, b in combinations(rows, 2)
        ]
        diameters = [
            float(r["mark"]["diameter_mm"]) for r in marked if r["mark"].get("diameter_mm")
        ]
        zones: dict[str, int] = {}
        for r in marked:
            zones[r.get("zone") or "none"] = zones.get(r.get("zone") or "none", 0) + 1
        per_arm.append(
            {
                "arm": arm,
                "n_reads": len(reads),
                "n_marked": len(marked),
                "n_with_biopsy_side": len(sided),
                "side_agrees_with_biopsy": agree,
                "side_agreement": agree / len(sided) if sided else None,
                "mark_matches_stated_side": sum(
                    mark_side(r["mark"]) == r["side"] for r in consistent
                ),
                "n_stated_side": len(consistent),
                "zones": zones,
                "n_diameters": len(diameters),
                "diameter_median_mm": statistics.median(diameters) if diameters else None,
                "n_reader_pairs": len(distances),
                "distance_median_mm": statistics.median(distances) if distances else None,
                "distance_mean_mm": statistics.fmean(distances) if distances else None,
                "within_10mm": (
                    sum(d <= CLOSE_MM for d in distances) / len(distances) if distances else None
                ),
            }
        )
    return {
        "method": (
            "Side of a mark = sign of its left-right position relative to the gland centre "
            f"(|x| < {MIDLINE_MM:g} mm: midline); agreement with the biopsy side counts either "
            "side for a bilateral biopsy. Distances are between two readers' marks of the same "
            "case in the same arm (one frame), in mm."
        ),
        "per_arm": per_arm,
    }
