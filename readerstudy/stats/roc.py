"""ROC curves, AUC with the DeLong variance, and DeLong tests of two AUCs.

Direction is fixed: a higher score means more suspicious (positive). It is never chosen from the data,
so an inverted reader gets an AUC below 0.5 rather than being silently flipped.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated receiver
operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837-845.
Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under correlated receiver
operating characteristic curves. IEEE Signal Processing Letters 2014;21:1389-1393.
Robin X et al. pROC: an open-source package for R and S+ to analyze and compare ROC curves.
BMC Bioinformatics 2011;12:77 (the unpaired test with Welch-Satterthwaite degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from readerstudy.stats._base import (
    ResultMixin,
    as_binary_vector,
    as_float_vector,
    check_same_length,
    z_critical,
)

DELONG_METHOD = "DeLong (fast algorithm of Sun & Xu 2014)"


@dataclass(frozen=True)
class RocCurve(ResultMixin):
    """Empirical ROC points, from (0, 0) at threshold +inf to (1, 1) at the lowest score.

    Point ``i`` is the operating point "positive when score >= thresholds[i]".
    """

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    n_positive: int
    n_negative: int
    method: str = "empirical (every distinct score is a threshold; higher = more suspicious)"


@dataclass(frozen=True)
class DelongPlacements:
    """Fast-DeLong structural components for ``k`` score sets on the same cases.

    ``auc[k]``; ``v10[k, m]`` one value per positive case (share of negatives it outranks, ties 1/2);
    ``v01[k, n]`` one value per negative case (share of positives that outrank it, ties 1/2).
    """

    auc: NDArray[np.float64]
    v10: NDArray[np.float64]
    v01: NDArray[np.float64]

    @property
    def covariance(self) -> NDArray[np.float64]:
        """DeLong covariance of the ``k`` AUCs: S10/m + S01/n (sample covariances, ddof=1)."""
        m = self.v10.shape[1]
        n = self.v01.shape[1]
        if m < 2 or n < 2:
            k = self.auc.shape[0]
            return np.full((k, k), np.nan)
        s10 = np.atleast_2d(np.cov(self.v10, ddof=1))
        s01 = np.atleast_2d(np.cov(self.v01, ddof=1))
        return np.asarray(s10 / m + s01 / n, dtype=np.float64)


@dataclass(frozen=True)
class RocAuc(ResultMixin):
    """AUC with DeLong variance and a Wald 95% CI, reported unclipped and clipped to [0, 1].

    ``AUC = (sum of the mid-ranks of the positives among all scores - m(m+1)/2) / (m n)`` (= Mann-Whitney
    U / mn); ``Var = S10/m + S01/n`` (DeLong 1988, computed with the mid-rank algorithm of Sun & Xu 2014);
    ``CI = AUC -/+ z_(1-alpha/2) sqrt(Var)``. A constant score gives AUC 0.5 with variance 0.
    """

    auc: float
    variance: float
    se: float
    ci_low: float
    ci_high: float
    ci_low_clipped: float
    ci_high_clipped: float
    confidence: float
    n_positive: int
    n_negative: int
    method: str = DELONG_METHOD


@dataclass(frozen=True)
class DelongPairedTest(ResultMixin):
    """DeLong test of two correlated AUCs on the same cases.

    ``Z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab)``, two-sided p from the standard normal
    (DeLong et al. 1988; pROC ``roc.test(paired=TRUE, method="delong")``). When both readers score every
    case identically (SE 0 and difference 0) the test is undefined: ``defined`` is False and z, p are NaN.
    """

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    correlation: float
    n_positive: int
    n_negative: int
    defined: bool
    reason: str
    method: str = "DeLong paired test of correlated AUCs (two-sided, normal)"


@dataclass(frozen=True)
class DelongUnpairedTest(ResultMixin):
    """Comparison of two AUCs on different cases, as pROC ``roc.test(paired=FALSE, method="delong")``.

    ``D = (AUC_a - AUC_b) / sqrt(Var_a + Var_b)``, with Welch-Satterthwaite degrees of freedom
    ``df = (Var_a + Var_b)^2 / (Var_a^2 / (N_a - 1) + Var_b^2 / (N_b - 1))`` (N = number of cases of each
    curve) and a two-sided p from Student's t with ``df`` degrees of freedom.
    """

    auc_a: float
    auc_b: float
    difference: float
    se: float
    statistic: float
    df: float
    p_value: float
    n_a: int
    n_b: int
    defined: bool
    reason: str
    method: str = "DeLong unpaired test, Welch-Satterthwaite df, Student t (as pROC)"


def _split(y_true: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    truth = as_binary_vector(y_true, name="y_true")
    values = as_float_vector(scores, name="scores")
    check_same_length(y_true=truth, scores=values)
    m = int(truth.sum())
    if m == 0 or m == truth.size:
        raise ValueError(
            "the AUC needs at least one positive and one negative case "
            f"(got {m} positive and {truth.size - m} negative)"
        )
    return truth, values


def delong_placements(y_true: ArrayLike, scores: ArrayLike) -> DelongPlacements:
    """Fast DeLong components for one or several score sets on the same cases.

    ``scores`` is ``(n_cases,)`` or ``(k, n_cases)``. Mid-ranks replace the O(mn) kernel sum
    (Sun & Xu 2014): ``V10_i = (T_Z(x_i) - T_X(x_i)) / n`` and ``V01_j = 1 - (T_Z(y_j) - T_Y(y_j)) / m``,
    where T_Z, T_X, T_Y are mid-ranks in the pooled, positive and negative samples.
    """
    truth = as_binary_vector(y_true, name="y_true")
    arr = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != truth.size:
        raise ValueError(f"scores must be (n_cases,) or (k, n_cases) with n_cases={truth.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("scores contain NaN or infinite values; drop missing reads first")
    m = int(truth.sum())
    n = truth.size - m
    if m == 0 or n == 0:
        raise ValueError(
            f"the AUC needs at least one positive and one negative case (got {m} and {n})"
        )
    pos = arr[:, truth]
    neg = arr[:, ~truth]
    pooled = np.concatenate([pos, neg], axis=1)
    tz = sps.rankdata(pooled, axis=1)
    tx = sps.rankdata(pos, axis=1)
    ty = sps.rankdata(neg, axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return DelongPlacements(auc=auc, v10=v10, v01=v01)


def roc_curve_points(y_true: ArrayLike, scores: ArrayLike) -> RocCurve:
    """Empirical ROC curve; higher score = more suspicious."""
    truth, values = _split(y_true, scores)
    order = np.argsort(-values, kind="mergesort")
    sorted_scores = values[order]
    sorted_truth = truth[order]
    # last index of each run of equal scores: the operating point includes every tied case
    last = np.r_[np.nonzero(np.diff(sorted_scores))[0], sorted_scores.size - 1]
    tp = np.cumsum(sorted_truth)[last]
    fp = np.cumsum(~sorted_truth)[last]
    m = int(truth.sum())
    n = truth.size - m
    tpr = np.r_[0.0, tp / m]
    fpr = np.r_[0.0, fp / n]
    thresholds = np.r_[np.inf, sorted_scores[last]]
    return RocCurve(
        fpr=tuple(float(v) for v in fpr),
        tpr=tuple(float(v) for v in tpr),
        thresholds=tuple(float(v) for v in thresholds),
        n_positive=m,
        n_negative=n,
    )


def _auc_result(auc: float, variance: float, *, confidence: float, m: int, n: int) -> RocAuc:
    z = z_critical(confidence)
    # rounding can leave -1e-18 for a constant reader; the variance is 0 there
    variance = max(variance, 0.0) if np.isfinite(variance) else variance
    se = float(np.sqrt(variance))
    low, high = auc - z * se, auc + z * se
    return RocAuc(
        auc=float(auc),
        variance=float(variance),
        se=se,
        ci_low=float(low),
        ci_high=float(high),
        ci_low_clipped=float(min(max(low, 0.0), 1.0)),
        ci_high_clipped=float(min(max(high, 0.0), 1.0)),
        confidence=confidence,
        n_positive=m,
        n_negative=n,
    )


def roc_auc_delong(y_true: ArrayLike, scores: ArrayLike, *, confidence: float = 0.95) -> RocAuc:
    """AUC, DeLong variance and Wald CI (see :class:`RocAuc`). Needs >= 1 positive and >= 1 negative;
    the variance needs >= 2 of each (NaN otherwise)."""
    truth, values = _split(y_true, scores)
    pl = delong_placements(truth, values)
    m = int(truth.sum())
    return _auc_result(
        float(pl.auc[0]),
        float(pl.covariance[0, 0]),
        confidence=confidence,
        m=m,
        n=truth.size - m,
    )


def roc_auc_compare_paired(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    *,
    confidence: float = 0.95,
) -> DelongPairedTest:
    """DeLong test of two correlated AUCs (same cases, e.g. one reader in two arms); see the class."""
    truth, a = _split(y_true, scores_a)
    b = as_float_vector(scores_b, name="scores_b")
    check_same_length(y_true=truth, scores_b=b)
    pl = delong_placements(truth, np.vstack([a, b]))
    cov = pl.covariance
    diff = float(pl.auc[0] - pl.auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    var = max(var, 0.0) if np.isfinite(var) else var
    se = float(np.sqrt(var))
    denom = np.sqrt(cov[0, 0] * cov[1, 1])
    corr = float(cov[0, 1] / denom) if denom > 0 else float("nan")
    m = int(truth.sum())
    zc = z_critical(confidence)
    if not np.isfinite(se):
        defined, reason = False, "fewer than two positive or two negative cases: no variance"
        z = p = float("nan")
    elif se == 0.0:
        defined = False
        reason = "the two score sets rank every case pair alike (SE of the difference is 0)"
        z = p = float("nan")
    else:
        defined, reason = True, ""
        z = diff / se
        p = float(2.0 * sps.norm.sf(abs(z)))
    return DelongPairedTest(
        auc_a=float(pl.auc[0]),
        auc_b=float(pl.auc[1]),
        difference=diff,
        se=se,
        z=float(z),
        p_value=p,
        ci_low=diff - zc * se,
        ci_high=diff + zc * se,
        confidence=confidence,
        correlation=corr,
        n_positive=m,
        n_negative=truth.size - m,
        defined=defined,
        reason=reason,
    )


def roc_auc_compare_unpaired(
    y_true_a: ArrayLike,
    scores_a: ArrayLike,
    y_true_b: ArrayLike,
    scores_b: ArrayLike,
) -> DelongUnpairedTest:
    """Unpaired DeLong comparison of two AUCs on different cases (see the class)."""
    ta, a = _split(y_true_a, scores_a)
    tb, b = _split(y_true_b, scores_b)
    pa = delong_placements(ta, a)
    pb = delong_placements(tb, b)
    va = float(pa.covariance[0, 0])
    vb = float(pb.covariance[0, 0])
    diff = float(pa.auc[0] - pb.auc[0])
    se = float(np.sqrt(va + vb))
    if not np.isfinite(se) or se == 0.0:
        return DelongUnpairedTest(
            auc_a=float(pa.auc[0]),
            auc_b=float(pb.auc[0]),
            difference=diff,
            se=se,
            statistic=float("nan"),
            df=float("nan"),
            p_value=float("nan"),
            n_a=ta.size,
            n_b=tb.size,
            defined=False,
            reason="both variances are zero or undefined (constant scores or < 2 cases per class)",
        )
    df = (va + vb) ** 2 / (va**2 / (ta.size - 1) + vb**2 / (tb.size - 1))
    stat = diff / se
    return DelongUnpairedTest(
        auc_a=float(pa.auc[0]),
        auc_b=float(pb.auc[0]),
        difference=diff,
        se=se,
        statistic=float(stat),
        df=float(df),
        p_value=float(2.0 * sps.t.sf(abs(stat), df)),
        n_a=ta.size,
        n_b=tb.size,
        defined=True,
        reason="",
    )
