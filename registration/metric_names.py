"""Registration metrics in words and units for people ("TRE after, landmark 3: 2.1 mm").

The job stores the keys of ``inference.pipeline.RegistrationResult.metrics``; "initial" there
means after the frame alignment, before the deformable registration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_STAGES = {"initial": "after frame alignment", "after": "after registration"}
_GLAND = {
    "dsc": ("Gland Dice", ""),
    "hd95": ("Gland Hausdorff distance (95th percentile)", "mm"),
    "accuracy": ("Gland accuracy", ""),
    "precision": ("Gland precision", ""),
    "recall": ("Gland recall", ""),
}
_KEY = re.compile(r"^(?P<kind>[a-z0-9]+)_(?P<stage>initial|after)(?:_(?P<which>\d+|mean))?$")


def metric_label(name: str, value: Any) -> tuple[str, str]:
    """(words, value with unit) of one stored metric."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return name, "—" if value is None else str(value)
    if name == "folding_fraction":
        return "Folding (voxels with a negative Jacobian)", f"{100 * value:.2f} %"
    match = _KEY.match(name)
    if not match:
        return name, f"{value:.3g}"
    kind, stage, which = match["kind"], _STAGES[match["stage"]], match["which"]
    if kind == "tre":
        where = "mean over landmarks" if which == "mean" else f"landmark {which}"
        return f"Target registration error {stage}, {where}", f"{value:.1f} mm"
    words, unit = _GLAND.get(kind, (kind, ""))
    return f"{words} {stage}", f"{value:.1f} mm" if unit == "mm" else f"{value:.3f}"


def _order(name: str) -> tuple[int, str, int]:
    match = _KEY.match(name)
    if not match:
        return (9, name, 0)
    kinds = ["dsc", "hd95", "tre", "accuracy", "precision", "recall"]
    kind = kinds.index(match["kind"]) if match["kind"] in kinds else 8
    which = match["which"] or ""
    return (
        kind,
        which.zfill(4) if which.isdigit() else which,
        0 if match["stage"] == "initial" else 1,
    )


def metric_rows(metrics: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Every metric as (words, value with unit): gland overlap, distances, landmarks, folding."""
    given = metrics or {}
    return [metric_label(name, given[name]) for name in sorted(given, key=_order)]
