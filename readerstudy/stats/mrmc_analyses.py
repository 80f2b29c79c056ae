"""The three Obuchowski-Rockette analyses of ``mrmc_or`` (see ``readerstudy.stats.mrmc`` for the
formulas): random readers and random cases, fixed readers, random readers and fixed cases. Each reads
the variance components (``OrComponents``) and returns one ``MrmcAnalysis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

from readerstudy.stats._base import ResultMixin, z_critical


@dataclass(frozen=True)
class MrmcDifference(ResultMixin):
    """Reader-averaged AUC difference ``treatment_a - treatment_b`` with SE, test and CI.

    ``df`` is NaN where the reference distribution is the normal (fixed readers)."""

    treatment_a: str
    treatment_b: str
    difference: float
    se: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MrmcSingleTreatment(ResultMixin):
    """Reader-averaged AUC of one treatment with its SE, df (NaN = normal) and CI."""

    treatment: str
    auc: float
    se: float
    df: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MrmcReaderDifference(ResultMixin):
    """Single-reader treatment difference (fixed-readers analysis): ``SE = sqrt(2 (Var_r - Cov1_r))``."""

    reader: str
    treatment_a: str
    treatment_b: str
    difference: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    var_error: float
    cov1: float


@dataclass(frozen=True)
class MrmcAnalysis(ResultMixin):
    """One of the three OR analyses: global test of equal treatment AUCs, differences, single treatments."""

    name: str
    statistic_name: str
    statistic: float
    df_numerator: float
    df_denominator: float
    p_value: float
    error_term: float
    differences: tuple[MrmcDifference, ...]
    single_treatment: tuple[MrmcSingleTreatment, ...]
    per_reader: tuple[MrmcReaderDifference, ...]


@dataclass(frozen=True)
class OrComponents:
    """What the three analyses share: the AUCs ``theta[t, r]``, their error covariance, the mean
    squares and the OR covariances, overall and per treatment."""

    tnames: tuple[str, ...]
    rnames: tuple[str, ...]
    confidence: float
    cov: NDArray[np.float64]
    theta: NDArray[np.float64]
    mean_t: NDArray[np.float64]
    ms_t: float
    ms_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    ms_r_t: NDArray[np.float64]
    var_t: NDArray[np.float64]
    cov2_t: NDArray[np.float64]

    @property
    def t(self) -> int:
        return len(self.tnames)

    @property
    def r(self) -> int:
        return len(self.rnames)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(combinations(range(self.t), 2))


def _f_sf(f: float, df1: float, df2: float) -> float:
    if not np.isfinite(f):
        return float("nan")
    if np.isinf(df2):
        return float(sps.chi2.sf(f * df1, df1))
    return float(sps.f.sf(f, df1, df2))


def _t_quantile(confidence: float, df: float) -> float:
    if np.isinf(df):
        return z_critical(confidence)
    return float(sps.t.ppf(0.5 + confidence / 2.0, df))


def _t_sf2(stat: float, df: float) -> float:
    if not np.isfinite(stat):
        return float("nan")
    if np.isinf(df):
        return float(2 * sps.norm.sf(abs(stat)))
    return float(2 * sps.t.sf(abs(stat), df))


def _safe_div(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _differences(c: OrComponents, *, se: float, df: float, q: float) -> tuple[MrmcDifference, ...]:
    """Reader-averaged differences of every treatment pair with one SE, df and quantile ``q``
    (the statistic is NaN where the SE is zero or undefined)."""
    out = []
    for a, b in c.pairs:
        d = float(c.mean_t[a] - c.mean_t[b])
        stat = _safe_div(d, se)
        out.append(
            MrmcDifference(
                c.tnames[a], c.tnames[b], d, se, df, stat, _t_sf2(stat, df), d - q * se, d + q * se
            )
        )
    return tuple(out)


def _single(c: OrComponents, i: int, *, se: float, df: float, q: float) -> MrmcSingleTreatment:
    mean = float(c.mean_t[i])
    return MrmcSingleTreatment(c.tnames[i], mean, se, float(df), mean - q * se, mean + q * se)


def analysis_rrrc(c: OrComponents) -> MrmcAnalysis:
    """Random readers, random cases, with Hillis's denominator df."""
    t, r = c.t, c.r
    den1 = c.ms_tr + r * max(c.cov2 - c.cov3, 0.0)
    ddf1 = den1**2 / (c.ms_tr**2 / ((t - 1) * (r - 1))) if c.ms_tr > 0 else float("inf")
    f1 = _safe_div(c.ms_t, den1)
    se1 = float(np.sqrt(2.0 / r * den1))
    singles = []
    for i in range(t):
        num = float(c.ms_r_t[i] + r * max(c.cov2_t[i], 0.0))
        df_i = num**2 / (c.ms_r_t[i] ** 2 / (r - 1)) if c.ms_r_t[i] > 0 else float("inf")
        se_i = float(np.sqrt(num / r))
        singles.append(_single(c, i, se=se_i, df=df_i, q=_t_quantile(c.confidence, df_i)))
    return MrmcAnalysis(
        name="random readers, random cases",
        statistic_name="F",
        statistic=f1,
        df_numerator=float(t - 1),
        df_denominator=float(ddf1),
        p_value=_f_sf(f1, t - 1, ddf1),
        error_term=den1,
        differences=_differences(c, se=se1, df=ddf1, q=_t_quantile(c.confidence, ddf1)),
        single_treatment=tuple(singles),
        per_reader=(),
    )


def _per_reader(c: OrComponents, *, zc: float) -> tuple[MrmcReaderDifference, ...]:
    """Single-reader differences: ``SE = sqrt(2 (Var_r - Cov1_r))`` from the reader's own block."""
    t, r = c.t, c.r
    out = []
    for j in range(r):
        idx = np.arange(t) * r + j
        block = c.cov[np.ix_(idx, idx)]
        var_j = float(np.diag(block).mean())
        cov1_j = float(block[~np.eye(t, dtype=bool)].mean())
        se_j = float(np.sqrt(2.0 * (var_j - cov1_j))) if var_j > cov1_j else float("nan")
        for a, b in c.pairs:
            d = float(c.theta[a, j] - c.theta[b, j])
            zj = _safe_div(d, se_j) if np.isfinite(se_j) else float("nan")
            out.append(
                MrmcReaderDifference(
                    c.rnames[j],
                    c.tnames[a],
                    c.tnames[b],
                    d,
                    se_j,
                    zj,
                    _t_sf2(zj, float("inf")),
                    d - zc * se_j,
                    d + zc * se_j,
                    var_j,
                    cov1_j,
                )  # fmt: skip
            )
    return tuple(out)


def analysis_frrc(c: OrComponents) -> MrmcAnalysis:
    """Fixed readers, random cases: chi-square on ``t - 1`` df, plus the single-reader tests."""
    t, r = c.t, c.r
    zc = z_critical(c.confidence)
    den2 = c.var_error - c.cov1 + (r - 1) * max(c.cov2 - c.cov3, 0.0)
    x2 = _safe_div((t - 1) * c.ms_t, den2)
    se2 = float(np.sqrt(2.0 / r * den2)) if den2 > 0 else float("nan")
    singles = [
        _single(
            c,
            i,
            se=float(np.sqrt((c.var_t[i] + (r - 1) * max(c.cov2_t[i], 0.0)) / r)),
            df=float("inf"),
            q=zc,
        )
        for i in range(t)
    ]
    return MrmcAnalysis(
        name="fixed readers, random cases",
        statistic_name="X2",
        statistic=x2,
        df_numerator=float(t - 1),
        df_denominator=float("inf"),
        p_value=float(sps.chi2.sf(x2, t - 1)) if np.isfinite(x2) else float("nan"),
        error_term=den2,
        differences=_differences(c, se=se2, df=float("inf"), q=zc),
        single_treatment=tuple(singles),
        per_reader=_per_reader(c, zc=zc),
    )


def analysis_rrfc(c: OrComponents) -> MrmcAnalysis:
    """Random readers, fixed cases: ``F = MS(T) / MS(T*R)`` on ``(t-1, (t-1)(r-1))`` df."""
    t, r = c.t, c.r
    df3 = float((t - 1) * (r - 1))
    f3 = _safe_div(c.ms_t, c.ms_tr)
    se3 = float(np.sqrt(2.0 / r * c.ms_tr))
    q_single = _t_quantile(c.confidence, r - 1)
    singles = [
        _single(c, i, se=float(np.sqrt(c.ms_r_t[i] / r)), df=float(r - 1), q=q_single)
        for i in range(t)
    ]
    return MrmcAnalysis(
        name="random readers, fixed cases",
        statistic_name="F",
        statistic=f3,
        df_numerator=float(t - 1),
        df_denominator=df3,
        p_value=_f_sf(f3, t - 1, df3),
        error_term=c.ms_tr,
        differences=_differences(c, se=se3, df=df3, q=_t_quantile(c.confidence, df3)),
        single_treatment=tuple(singles),
        per_reader=(),
    )
