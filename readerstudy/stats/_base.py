"""Shared plumbing for the statistics results: JSON conversion and input validation.

No Django here: this package is imported by the web process, by exports and by bench scripts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _sps


def jsonable(value: Any) -> Any:
    """Convert results to plain JSON types; NaN and infinities become ``None`` (strict JSON has no NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, (str, type(None))):
        return value
    if isinstance(value, Sequence):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


class ResultMixin:
    """``to_dict()`` for the frozen result dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        out = jsonable(self)
        assert isinstance(out, dict)
        return out


@lru_cache(maxsize=64)
def z_critical(confidence: float) -> float:
    """Two-sided standard-normal quantile for a ``confidence`` interval (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(_sps.norm.ppf(0.5 + confidence / 2.0))


def as_float_vector(values: ArrayLike, *, name: str) -> NDArray[np.float64]:
    """A 1-D float array with finite values only (missing data is dropped by the caller, on purpose)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} contains NaN or infinite values; drop missing reads before calling "
            "(study_analyse does this and reports how many were dropped)"
        )
    return arr


def as_binary_vector(values: ArrayLike, *, name: str) -> NDArray[np.bool_]:
    """A 1-D boolean truth vector from 0/1 or bool input; anything else is refused."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    try:
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold 0/1 or booleans") from exc
    if not np.all((as_float == 0.0) | (as_float == 1.0)):
        raise ValueError(f"{name} must hold only 0/1 or booleans (1 = positive / diseased)")
    return as_float == 1.0


def check_same_length(**arrays: NDArray[Any]) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"inputs must have the same length: {described}")
    return next(iter(lengths.values()))
