"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette (OR) with Hillis's degrees of freedom.

Input is a fully crossed design: every reader scores every case in every treatment (arm). Reader AUCs are
the trapezoidal (Wilcoxon) AUCs; the error covariance matrix of the ``t x r`` AUCs is estimated by the
case jackknife (as OR-DBM MRMC 2.5 does by default) or by DeLong's method. Three analyses, as in OR-DBM MRMC:

1. random readers and random cases (RRRC): ``F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)]`` with
   Hillis's ``ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / (MS(T*R)^2 / ((t-1)(r-1)))``;
2. fixed readers, random cases (FRRC): ``X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]``
   on ``t-1`` df, plus single-reader tests with ``SE = sqrt(2 (Var_r - Cov1_r))``;
3. random readers, fixed cases (RRFC): ``F = MS(T) / MS(T*R)`` on ``(t-1, (t-1)(r-1))`` df.

``Var`` is the mean error variance; ``Cov1``, ``Cov2``, ``Cov3`` are the mean error covariances of AUCs of
the same reader in different treatments, of different readers in the same treatment, and of different
readers in different treatments.

References
----------
Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for multiple readers and multiple
tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 1995;24:285-308.
Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS. A comparison of the Dorfman-Berbaum-Metz and
Obuchowski-Rockette methods for ROC data. Stat Med 2005;24:1579-1607.
Hillis SL. A comparison of denominator degrees of freedom methods for multiple observer ROC analysis.
Stat Med 2007;26:596-619.
Hillis SL, Berbaum KS, Metz CE. Recent developments in the Dorfman-Berbaum-Metz procedure for
multireader ROC study analysis. Acad Radiol 2008;15:647-661.
Schartz KM, Hillis SL, Pesce LL, Berbaum KS. OR-DBM MRMC 2.5 (University of Iowa).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from readerstudy.stats._base import ResultMixin, as_binary_vector
from readerstudy.stats.mrmc_analyses import (
    MrmcAnalysis,
    OrComponents,
    analysis_frrc,
    analysis_rrfc,
    analysis_rrrc,
)
from readerstudy.stats.roc import delong_placements

CovarianceMethod = Literal["jackknife", "delong"]


@dataclass(frozen=True)
class MrmcResult(ResultMixin):
    """Obuchowski-Rockette MRMC analysis with Hillis df (see the module docstring for the formulas).

    ``auc[t][r]`` is the AUC of reader ``r`` in treatment ``t``. ``var_r`` and ``var_tr`` are the OR
    variance components (ANOVA estimates, may be negative):
    ``var_tr = MS(T*R) - Var + Cov1 + Cov2 - Cov3`` and
    ``var_r = (MS(R) - Var - (t-1) Cov1 + Cov2 + (t-1) Cov3 - var_tr) / t``.
    """

    covariance_method: str
    confidence: float
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_positive: int
    n_negative: int
    auc: tuple[tuple[float, ...], ...]
    reader_averaged_auc: tuple[float, ...]
    ms_t: float
    ms_r: float
    ms_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_r: float
    var_tr: float
    random_readers_random_cases: MrmcAnalysis
    fixed_readers_random_cases: MrmcAnalysis
    random_readers_fixed_cases: MrmcAnalysis
    method: str = "Obuchowski-Rockette with Hillis (2007) denominator df, as OR-DBM MRMC 2.5"


def auc_covariance(
    scores: NDArray[np.float64], truth: NDArray[np.bool_], *, method: CovarianceMethod
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AUCs ``(k,)`` and their ``(k, k)`` error covariance for ``k`` score sets on the same cases.

    Jackknife: ``(K-1)/K sum_c (theta_(-c) - mean)(theta_(-c) - mean)^T`` over the K cases. The
    leave-one-out AUCs come from the DeLong components without refitting:
    ``theta_(-i) = (m theta - V10_i)/(m-1)`` for a positive case and ``(n theta - V01_j)/(n-1)``
    for a negative case.
    """
    pl = delong_placements(truth, scores)
    if method == "delong":
        return pl.auc, pl.covariance
    if method != "jackknife":
        raise ValueError(f"covariance must be 'jackknife' or 'delong', got {method!r}")
    m = pl.v10.shape[1]
    n = pl.v01.shape[1]
    if m < 2 or n < 2:
        raise ValueError("the jackknife needs at least two positive and two negative cases")
    theta = pl.auc[:, None]
    loo = np.concatenate([(m * theta - pl.v10) / (m - 1), (n * theta - pl.v01) / (n - 1)], axis=1)
    k_cases = m + n
    centred = loo - loo.mean(axis=1, keepdims=True)
    return pl.auc, (k_cases - 1) / k_cases * (centred @ centred.T)


def _components(
    arr: NDArray[np.float64],
    y: NDArray[np.bool_],
    *,
    covariance: CovarianceMethod,
    tnames: tuple[str, ...],
    rnames: tuple[str, ...],
    confidence: float,
) -> tuple[OrComponents, float, float, float]:
    """The OR components of ``arr[t, r, c]``, with ``MS(R)``, ``var_r`` and ``var_tr``."""
    t, r, k = arr.shape
    auc_flat, cov = auc_covariance(arr.reshape(t * r, k), y, method=covariance)
    theta = auc_flat.reshape(t, r)
    ti, ri = np.divmod(np.arange(t * r), r)
    same_t = ti[:, None] == ti[None, :]
    same_r = ri[:, None] == ri[None, :]
    var_error = float(np.diag(cov).mean())
    cov1 = float(cov[~same_t & same_r].mean())
    cov2 = float(cov[same_t & ~same_r].mean())
    cov3 = float(cov[~same_t & ~same_r].mean())

    mean_t = theta.mean(axis=1)
    mean_r = theta.mean(axis=0)
    grand = float(theta.mean())
    ms_t = float(r * ((mean_t - grand) ** 2).sum() / (t - 1))
    ms_r = float(t * ((mean_r - grand) ** 2).sum() / (r - 1))
    resid = theta - mean_t[:, None] - mean_r[None, :] + grand
    ms_tr = float((resid**2).sum() / ((t - 1) * (r - 1)))
    var_tr = ms_tr - var_error + cov1 + cov2 - cov3
    var_r = (ms_r - var_error - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - var_tr) / t

    # per-treatment quantities for the single-treatment intervals
    ms_r_t = ((theta - mean_t[:, None]) ** 2).sum(axis=1) / (r - 1)
    cov2_t = np.empty(t)
    var_t = np.empty(t)
    for i in range(t):
        block = cov[i * r : (i + 1) * r, i * r : (i + 1) * r]
        var_t[i] = np.diag(block).mean()
        cov2_t[i] = block[~np.eye(r, dtype=bool)].mean()
    components = OrComponents(
        tnames=tnames,
        rnames=rnames,
        confidence=confidence,
        cov=cov,
        theta=theta,
        mean_t=mean_t,
        ms_t=ms_t,
        ms_tr=ms_tr,
        var_error=var_error,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        ms_r_t=ms_r_t,
        var_t=var_t,
        cov2_t=cov2_t,
    )
    return components, ms_r, float(var_r), float(var_tr)


def mrmc_or(
    scores: ArrayLike,
    truth: ArrayLike,
    *,
    covariance: CovarianceMethod = "jackknife",
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> MrmcResult:
    """Obuchowski-Rockette MRMC analysis of ``scores[t, r, c]`` (treatment, reader, case) against
    ``truth[c]`` (1 = positive). Fully crossed, no missing values: drop incomplete cases first
    (``study_analyse`` does and reports how many). Needs >= 2 treatments, >= 2 readers, >= 2 positive
    and >= 2 negative cases.

    Differences are ``treatment_a - treatment_b`` for every pair in the given order (OR-DBM's "1 - 2").
    """
    arr = np.asarray(scores, dtype=np.float64)
    y = as_binary_vector(truth, name="truth")
    if arr.ndim != 3:
        raise ValueError(f"scores must be (treatments, readers, cases), got shape {arr.shape}")
    t, r, k = arr.shape
    if k != y.size:
        raise ValueError(f"scores have {k} cases but truth has {y.size}")
    if t < 2 or r < 2:
        raise ValueError(f"MRMC needs >= 2 treatments and >= 2 readers (got {t} and {r})")
    if not np.all(np.isfinite(arr)):
        raise ValueError("scores contain missing values: MRMC needs a fully crossed design")
    tnames = tuple(str(v) for v in (treatments if treatments is not None else range(1, t + 1)))
    rnames = tuple(str(v) for v in (readers if readers is not None else range(1, r + 1)))
    if len(tnames) != t or len(rnames) != r:
        raise ValueError("treatments and readers must name every treatment and reader")
    c, ms_r, var_r, var_tr = _components(
        arr, y, covariance=covariance, tnames=tnames, rnames=rnames, confidence=confidence
    )
    m = int(y.sum())
    return MrmcResult(
        covariance_method="case jackknife" if covariance == "jackknife" else "DeLong",
        confidence=confidence,
        treatments=tnames,
        readers=rnames,
        n_cases=k,
        n_positive=m,
        n_negative=k - m,
        auc=tuple(tuple(float(v) for v in row) for row in c.theta),
        reader_averaged_auc=tuple(float(v) for v in c.mean_t),
        ms_t=c.ms_t,
        ms_r=ms_r,
        ms_tr=c.ms_tr,
        var_error=c.var_error,
        cov1=c.cov1,
        cov2=c.cov2,
        cov3=c.cov3,
        var_r=var_r,
        var_tr=var_tr,
        random_readers_random_cases=analysis_rrrc(c),
        fixed_readers_random_cases=analysis_frrc(c),
        random_readers_fixed_cases=analysis_rrfc(c),
    )
