"""Numpy-only image helpers shared by the web process and the worker: the one 8-bit display scaling
and the one checkerboard. Importing this module never imports torch or matplotlib.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["checkerboard", "percentile_window", "to_uint8"]


def percentile_window(
    values: NDArray[Any], *, low: float = 1.0, high: float = 99.0
) -> tuple[float, float]:
    """``(lo, hi)``: the ``low``-th and ``high``-th percentiles of the finite values, ``hi > lo``.

    An empty or all-NaN input gives ``(0, 1)``; a constant one gives ``(v, v + 1)`` so that callers
    can divide by ``hi - lo`` without a guard.
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [low, high]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_uint8(
    values: NDArray[Any],
    *,
    low: float = 1.0,
    high: float = 99.0,
    window: tuple[float, float] | None = None,
) -> NDArray[np.uint8]:
    """Scale any array to 0–255 for display: clip to a percentile window, NaN shown as the window's low.

    Args:
        values: an array of any shape and real dtype.
        low, high: percentiles of the finite values that map to 0 and 255.
        window: an explicit ``(lo, hi)`` instead of the percentiles.
    Returns:
        ``uint8`` array of the same shape.
    """
    arr = np.asarray(values, dtype=np.float64)
    lo, hi = window if window is not None else percentile_window(arr, low=low, high=high)
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(scaled * 255.0).astype(np.uint8)


def checkerboard(a: NDArray[Any], b: NDArray[Any], *, tiles: int = 8) -> NDArray[Any]:
    """Alternate square tiles of two equally shaped 2-D images, ``tiles`` along the shorter side.

    Args:
        a, b: images of shape ``(rows, cols)``; ``a`` fills the top-left tile.
    Returns:
        An array of ``a``'s shape and the common dtype of ``a`` and ``b``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"checkerboard needs two equal 2-D images, got {a.shape} and {b.shape}")
    tile = max(1, min(a.shape) // max(1, tiles))
    rows, cols = np.indices(a.shape)
    return np.where(((rows // tile) + (cols // tile)) % 2 == 0, a, b)
