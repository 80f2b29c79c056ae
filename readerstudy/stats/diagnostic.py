"""Diagnostic accuracy and descriptive statistics: sensitivity/specificity with Wilson CIs, Likert
summaries, lesion-side agreement with McNemar's test between arms, Spearman correlation.

References
----------
Wilson EB. Probable inference, the law of succession, and statistical inference. JASA 1927;22:209-212.
Newcombe RG. Two-sided confidence intervals for the single proportion. Stat Med 1998;17:857-872.
McNemar Q. Note on the sampling error of the difference between correlated proportions or percentages.
Psychometrika 1947;12:153-157.
Bonett DG, Wright TA. Sample size requirements for estimating Pearson, Kendall and Spearman
correlations. Psychometrika 2000;65:23-28.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from readerstudy.stats._base import ResultMixin, as_binary_vector, z_critical

SIDES: tuple[str, ...] = ("left", "right", "bilateral", "none")


@dataclass(frozen=True)
class Proportion(ResultMixin):
    """A proportion ``k/n`` with the Wilson score interval:
    ``(p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` (Wilson 1927; R ``prop.test(correct=FALSE)``).
    With ``n = 0`` the estimate and CI are NaN and ``defined`` is False."""

    estimate: float
    successes: int
    n: int
    ci_low: float
    ci_high: float
    confidence: float
    defined: bool
    method: str = "Wilson score interval"


@dataclass(frozen=True)
class DiagnosticAccuracy(ResultMixin):
    """Sensitivity ``TP/(TP+FN)`` and specificity ``TN/(TN+FP)`` of "positive when score >= threshold"."""

    threshold: float
    tp: int
    fn: int
    tn: int
    fp: int
    sensitivity: Proportion
    specificity: Proportion
    n_missing_dropped: int


@dataclass(frozen=True)
class LikertSummary(ResultMixin):
    """Mean and sample SD (``ddof=1``) of Likert scores, with the median and the count per category."""

    n: int
    mean: float
    sd: float
    median: float
    counts: dict[str, int]
    n_missing_dropped: int


@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """McNemar's test of paired binary outcomes (e.g. side correct in arm A vs arm B, same reads).

    ``b`` = correct in A only, ``c`` = correct in B only. ``chi2 = (|b - c| - 1)^2 / (b + c)`` with 1 df
    (continuity corrected, R ``mcnemar.test`` default) and ``p_exact`` the two-sided exact binomial
    p of ``b`` out of ``b + c`` at 1/2. No discordant pairs: undefined.
    """

    b: int
    c: int
    n_pairs: int
    n_incomplete_dropped: int
    chi2: float
    p_value: float
    p_exact: float
    proportion_a: float
    proportion_b: float
    defined: bool
    reason: str
    method: str = "McNemar chi-square with continuity correction (p_exact: exact binomial)"


@dataclass(frozen=True)
class CorrelationResult(ResultMixin):
    """Spearman's rank correlation with the t-approximation p (``t = rho sqrt((n-2)/(1-rho^2))``, as
    ``scipy.stats.spearmanr``) and a Fisher-z CI with the Bonett-Wright SE ``sqrt((1 + rho^2/2)/(n-3))``."""

    rho: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    n_incomplete_dropped: int
    defined: bool
    reason: str
    method: str = "Spearman rank correlation (t p-value; Fisher z CI, Bonett-Wright SE)"


def proportion_wilson(successes: int, n: int, *, confidence: float = 0.95) -> Proportion:
    """``successes/n`` with the Wilson score interval (see :class:`Proportion`)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        nan = float("nan")
        return Proportion(nan, 0, 0, nan, nan, confidence, False)
    z = z_critical(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Proportion(
        float(p),
        int(successes),
        int(n),
        float(max(centre - half, 0.0)),
        float(min(centre + half, 1.0)),
        confidence,
        True,
    )


def sensitivity_specificity(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float,
    confidence: float = 0.95,
) -> DiagnosticAccuracy:
    """Sensitivity and specificity at ``score >= threshold`` (unscored cases, NaN, are dropped and counted)."""
    truth = as_binary_vector(y_true, name="y_true")
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != truth.shape:
        raise ValueError("y_true and scores must have the same length")
    scored = np.isfinite(values)
    truth, values = truth[scored], values[scored]
    called = values >= threshold
    tp = int((called & truth).sum())
    fn = int((~called & truth).sum())
    tn = int((~called & ~truth).sum())
    fp = int((called & ~truth).sum())
    return DiagnosticAccuracy(
        threshold=float(threshold),
        tp=tp,
        fn=fn,
        tn=tn,
        fp=fp,
        sensitivity=proportion_wilson(tp, tp + fn, confidence=confidence),
        specificity=proportion_wilson(tn, tn + fp, confidence=confidence),
        n_missing_dropped=int((~scored).sum()),
    )


def likert_summary(
    scores: ArrayLike, *, categories: Sequence[int] = (1, 2, 3, 4, 5)
) -> LikertSummary:
    """Mean +/- SD, median and counts per category of Likert scores (NaN = missing, dropped)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    missing = ~np.isfinite(values)
    values = values[~missing]
    n = int(values.size)
    counts = {str(c): int((values == c).sum()) for c in categories}
    nan = float("nan")
    return LikertSummary(
        n=n,
        mean=float(values.mean()) if n else nan,
        sd=float(values.std(ddof=1)) if n > 1 else nan,
        median=float(np.median(values)) if n else nan,
        counts=counts,
        n_missing_dropped=int(missing.sum()),
    )


def _side_array(values: ArrayLike | Sequence[str | None]) -> NDArray[np.object_]:
    """Normalised side names (lower case, stripped) with ``None`` for missing; unknown names refused."""
    # normalise the few distinct values, not every read
    codes, uniques = pd.factorize(np.asarray(values, dtype=object).ravel())
    names: list[str | None] = []
    for value in uniques:
        text = str(value).strip().lower()
        if text == "":
            names.append(None)
        elif text in SIDES:
            names.append(text)
        else:
            raise ValueError(f"lesion side must be one of {SIDES} or missing, got {value!r}")
    lookup = np.array([*names, None], dtype=object)
    return lookup[codes]  # code -1 (missing) picks the trailing None


def side_correct(
    predicted: ArrayLike | Sequence[str | None], reference: ArrayLike | Sequence[str | None]
) -> NDArray[np.float64]:
    """1.0 where the read's lesion side equals the biopsy side, 0.0 where not, NaN where either is missing."""
    pred = _side_array(predicted)
    ref = _side_array(reference)
    if pred.shape != ref.shape:
        raise ValueError("predicted and reference sides must have the same length")
    known = pd.notna(pred) & pd.notna(ref)
    out = np.full(pred.shape, np.nan)
    out[known] = (pred[known] == ref[known]).astype(np.float64)
    return out


def side_agreement(
    predicted: ArrayLike | Sequence[str | None],
    reference: ArrayLike | Sequence[str | None],
    *,
    confidence: float = 0.95,
) -> Proportion:
    """Share of reads whose lesion side equals the biopsy side, with a Wilson CI (missing dropped)."""
    correct = side_correct(predicted, reference)
    known = np.isfinite(correct)
    return proportion_wilson(int(correct[known].sum()), int(known.sum()), confidence=confidence)


def mcnemar_test(correct_a: ArrayLike, correct_b: ArrayLike) -> McNemarResult:
    """McNemar's test on paired 0/1 outcomes; pairs with a missing value (NaN) are dropped and counted."""
    a = np.asarray(correct_a, dtype=np.float64)
    b_arr = np.asarray(correct_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b_arr.shape:
        raise ValueError("correct_a and correct_b must be 1-D and of the same length")
    keep = np.isfinite(a) & np.isfinite(b_arr)
    a, b_arr = a[keep] == 1, b_arr[keep] == 1
    b = int((a & ~b_arr).sum())
    c = int((~a & b_arr).sum())
    n = int(a.size)
    nan = float("nan")
    pa = float(a.mean()) if n else nan
    pb = float(b_arr.mean()) if n else nan
    if b + c == 0:
        return McNemarResult(
            b, c, n, int((~keep).sum()), nan, nan, nan, pa, pb, False,
            "no discordant pairs: the arms agree on every paired read",
        )  # fmt: skip
    chi2 = (abs(b - c) - 1.0) ** 2 / (b + c)
    p = float(sps.chi2.sf(chi2, 1))
    p_exact = float(sps.binomtest(b, b + c, 0.5).pvalue)
    return McNemarResult(b, c, n, int((~keep).sum()), float(chi2), p, p_exact, pa, pb, True, "")


def spearman_correlation(
    x: ArrayLike, y: ArrayLike, *, confidence: float = 0.95
) -> CorrelationResult:
    """Spearman's rho of x and y over complete pairs (see :class:`CorrelationResult`)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError("x and y must be 1-D and of the same length")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    dropped = int((~keep).sum())
    nan = float("nan")
    if n < 3:
        return CorrelationResult(
            nan, nan, nan, nan, confidence, n, dropped, False, "fewer than 3 pairs"
        )
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return CorrelationResult(
            nan, nan, nan, nan, confidence, n, dropped, False,
            "one variable is constant: the correlation is 0/0",
        )  # fmt: skip
    res = sps.spearmanr(a, b)
    rho = float(res.statistic)
    p = float(res.pvalue)
    if n > 3 and abs(rho) < 1:
        z = z_critical(confidence)
        se = np.sqrt((1 + rho * rho / 2) / (n - 3))
        lo, hi = np.tanh(np.arctanh(rho) - z * se), np.tanh(np.arctanh(rho) + z * se)
    else:
        lo = hi = nan
    return CorrelationResult(rho, p, float(lo), float(hi), confidence, n, dropped, True, "")
