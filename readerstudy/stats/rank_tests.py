"""Wilcoxon signed-rank (paired) and Mann-Whitney U (two independent groups) tests, R conventions.

The p-value follows R's ``wilcox.test`` default rule and the result names the rule it used:

* exact distribution when the (non-zero) sample size is below 50, there are no ties and, for the
  signed-rank test, no zero differences were dropped (R falls back to the normal approximation when
  zeros were present, even after dropping them);
* otherwise the normal approximation with the tie-corrected variance and continuity correction 1/2.

Because ordinal scores (Likert, PI-RADS) almost always tie, an exact p *conditional on the ties* is also
given for small samples: the permutation distribution of the statistic with the observed mid-ranks
(enumerated exactly by dynamic programming, not sampled), two-sided as
``P(|S - E S| >= |s - E S|)``.

References: Wilcoxon F. Individual comparisons by ranking methods. Biometrics Bulletin 1945;1:80-83.
Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60. Hollander M, Wolfe DA, Chicken E. Nonparametric
Statistical Methods, 3rd ed., Wiley 2014 (tie-corrected variances). R Core Team, ``?wilcox.test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from readerstudy.stats._base import ResultMixin

EXACT = "exact"
NORMAL_CC = "normal approximation with continuity correction"
# enumerating the conditional distribution costs O(n * n^2) for the signed-rank test and
# O(N * n_x * N^2) for Mann-Whitney; beyond these it is slow and the normal approximation is fine
MAX_N_CONDITIONAL_SIGNED_RANK = 100
MAX_N_CONDITIONAL_MANN_WHITNEY = 60
R_EXACT_LIMIT = 50


@dataclass(frozen=True)
class RankTestResult(ResultMixin):
    """Result of a rank test.

    ``statistic`` is V (signed-rank: sum of the ranks of the positive differences) or W (Mann-Whitney:
    ``sum of the ranks of x - n_x(n_x+1)/2`` = U of x). ``p_value`` is R's default p, computed as
    ``p_method`` says; ``z`` is the continuity-corrected normal deviate (NaN when exact).
    ``p_exact_conditional`` is the exact permutation p given the observed ties (NaN when the sample is
    too large for it, see ``MAX_N_CONDITIONAL_*``).
    """

    test: str
    statistic_name: str
    statistic: float
    n: int
    n_x: int
    n_y: int
    n_zeros_dropped: int
    n_incomplete_dropped: int
    has_ties: bool
    z: float
    p_value: float
    p_method: str
    p_exact_conditional: float
    defined: bool
    reason: str
    method: str


def _shifted_sum(dist: NDArray[np.float64], shift: int) -> NDArray[np.float64]:
    out = dist.copy()
    if shift < dist.size:
        out[shift:] += dist[: dist.size - shift]
    return out


def _signed_rank_distribution(doubled_ranks: NDArray[np.int64]) -> NDArray[np.float64]:
    """P(sum of a random sign-subset of ``doubled_ranks`` = s) for s = 0 .. sum (each sign 1/2)."""
    total = int(doubled_ranks.sum())
    dist = np.zeros(total + 1)
    dist[0] = 1.0
    for r in doubled_ranks:
        # halving at every step keeps the probabilities in range for large n
        dist = 0.5 * _shifted_sum(dist, int(r))
    return dist


def _rank_sum_distribution(doubled_ranks: NDArray[np.int64], n_x: int) -> NDArray[np.float64]:
    """P(sum of a random size-``n_x`` subset of ``doubled_ranks`` = s), all subsets equally likely."""
    total = int(doubled_ranks.sum())
    counts = np.zeros((n_x + 1, total + 1))
    counts[0, 0] = 1.0
    for r in doubled_ranks:
        r = int(r)
        # walk the subset size downwards so every item is used at most once
        counts[1:, r:] += counts[:-1, : total + 1 - r]
    return counts[n_x] / comb(doubled_ranks.size, n_x)


def _two_sided_conditional(dist: NDArray[np.float64], observed: int) -> float:
    support = np.arange(dist.size)
    mean = float((support * dist).sum())
    dev = abs(observed - mean)
    # doubled ranks make the support integer; a 1e-7 slack absorbs float error in the mean
    return float(min(1.0, dist[np.abs(support - mean) >= dev - 1e-7].sum()))


def _r_exact_two_sided(dist: NDArray[np.float64], observed: int, centre: float) -> float:
    """R's rule: double the smaller tail (``psignrank``/``pwilcox`` two-sided)."""
    if observed > centre:
        p = float(dist[observed:].sum())
    else:
        p = float(dist[: observed + 1].sum())
    return min(1.0, 2.0 * p)


def _paired(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], int]:
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"x and y must be 1-D and of the same length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep] - b[keep], int((~keep).sum())


def wilcoxon_signed_rank(
    x: ArrayLike,
    y: ArrayLike,
    *,
    max_n_conditional: int = MAX_N_CONDITIONAL_SIGNED_RANK,
) -> RankTestResult:
    """Paired Wilcoxon signed-rank test of x vs y (two-sided), as R's ``wilcox.test(x, y, paired=TRUE)``.

    Pairs with a missing value (NaN) are dropped and counted; zero differences are dropped (R's
    convention). ``V = sum of the mid-ranks of |d| over d > 0``. Normal approximation:
    ``z = (V - n(n+1)/4 - sign * 1/2) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)`` with ``t`` the tie
    group sizes.
    """
    d, n_incomplete = _paired(x, y)
    zeros = int((d == 0).sum())
    d = d[d != 0]
    n = int(d.size)
    method = "Wilcoxon signed-rank test (paired, two-sided)"
    if n == 0:
        return RankTestResult(
            test="wilcoxon_signed_rank",
            statistic_name="V",
            statistic=float("nan"),
            n=0,
            n_x=0,
            n_y=0,
            n_zeros_dropped=zeros,
            n_incomplete_dropped=n_incomplete,
            has_ties=False,
            z=float("nan"),
            p_value=float("nan"),
            p_method="undefined",
            p_exact_conditional=float("nan"),
            defined=False,
            reason="no non-zero paired differences (all pairs equal or missing)",
            method=method,
        )
    ranks = sps.rankdata(np.abs(d))
    v = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(ranks, return_counts=True)
    has_ties = bool((tie_sizes > 1).any())
    doubled = np.rint(2 * ranks).astype(np.int64)
    z = float("nan")
    if n < R_EXACT_LIMIT and not has_ties and zeros == 0:
        p_method = EXACT
        dist = _signed_rank_distribution(np.arange(1, n + 1, dtype=np.int64))
        p = _r_exact_two_sided(dist, int(round(v)), n * (n + 1) / 4.0)
    else:
        p_method = NORMAL_CC
        centred = v - n * (n + 1) / 4.0
        sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24.0 - (tie_sizes**3 - tie_sizes).sum() / 48.0)
        z = float((centred - np.sign(centred) * 0.5) / sigma)
        p = float(2.0 * min(sps.norm.cdf(z), sps.norm.sf(z)))
    p_cond = float("nan")
    if n <= max_n_conditional:
        dist2 = _signed_rank_distribution(doubled)
        p_cond = _two_sided_conditional(dist2, int(doubled[d > 0].sum()))
    return RankTestResult(
        test="wilcoxon_signed_rank",
        statistic_name="V",
        statistic=v,
        n=n,
        n_x=n,
        n_y=n,
        n_zeros_dropped=zeros,
        n_incomplete_dropped=n_incomplete,
        has_ties=has_ties,
        z=z,
        p_value=p,
        p_method=p_method,
        p_exact_conditional=p_cond,
        defined=True,
        reason="",
        method=method,
    )


def _mann_whitney_p(
    w: float, nx: int, ny: int, *, tie_sizes: NDArray[np.int64], has_ties: bool
) -> tuple[str, float, float] | None:
    """R's p-value rule for W: exact below 50 per group without ties, else normal with continuity
    correction and tie-corrected variance. ``(p_method, p, z)``; None when the variance is zero."""
    big_n = nx + ny
    if nx < R_EXACT_LIMIT and ny < R_EXACT_LIMIT and not has_ties:
        dist = _rank_sum_distribution(np.arange(1, big_n + 1, dtype=np.int64), nx)
        # the rank-sum distribution starts at n_x(n_x+1)/2; shift to the W scale
        dist_w = dist[nx * (nx + 1) // 2 :]
        return EXACT, _r_exact_two_sided(dist_w, int(round(w)), nx * ny / 2.0), float("nan")
    centred = w - nx * ny / 2.0
    var = (nx * ny / 12.0) * (
        (big_n + 1) - (tie_sizes**3 - tie_sizes).sum() / (big_n * (big_n - 1))
    )
    if var <= 0:
        return None
    z = float((centred - np.sign(centred) * 0.5) / np.sqrt(var))
    return NORMAL_CC, float(2.0 * min(sps.norm.cdf(z), sps.norm.sf(z))), z


def mann_whitney_u(
    x: ArrayLike,
    y: ArrayLike,
    *,
    max_n_conditional: int = MAX_N_CONDITIONAL_MANN_WHITNEY,
) -> RankTestResult:
    """Mann-Whitney U (Wilcoxon rank-sum) test, two-sided, as R's ``wilcox.test(x, y)``.

    Missing values (NaN) are dropped from each group and counted. ``W = R_x - n_x(n_x+1)/2`` with
    ``R_x`` the sum of the pooled mid-ranks of x. Normal approximation:
    ``z = (W - n_x n_y/2 - sign * 1/2) / sqrt(n_x n_y/12 * ((N+1) - sum(t^3 - t)/(N(N-1))))``.
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    n_missing = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    nx, ny = int(a.size), int(b.size)
    method = "Mann-Whitney U / Wilcoxon rank-sum test (two-sided)"

    def undefined(reason: str, has_ties: bool = False, w: float = float("nan")) -> RankTestResult:
        return RankTestResult(
            test="mann_whitney_u",
            statistic_name="W",
            statistic=w,
            n=nx + ny,
            n_x=nx,
            n_y=ny,
            n_zeros_dropped=0,
            n_incomplete_dropped=n_missing,
            has_ties=has_ties,
            z=float("nan"),
            p_value=float("nan"),
            p_method="undefined",
            p_exact_conditional=float("nan"),
            defined=False,
            reason=reason,
            method=method,
        )

    if nx == 0 or ny == 0:
        return undefined(f"each group needs at least one value (got {nx} and {ny})")
    pooled = np.concatenate([a, b])
    ranks = sps.rankdata(pooled)
    w = float(ranks[:nx].sum() - nx * (nx + 1) / 2.0)
    _, tie_sizes = np.unique(ranks, return_counts=True)
    has_ties = bool((tie_sizes > 1).any())
    big_n = nx + ny
    p_rule = _mann_whitney_p(w, nx, ny, tie_sizes=tie_sizes, has_ties=has_ties)
    if p_rule is None:
        return undefined("every value is tied: the rank statistic has no spread", True, w)
    p_method, p, z = p_rule
    p_cond = float("nan")
    if big_n <= max_n_conditional:
        doubled = np.rint(2 * ranks).astype(np.int64)
        dist2 = _rank_sum_distribution(doubled, nx)
        p_cond = _two_sided_conditional(dist2, int(doubled[:nx].sum()))
    return RankTestResult(
        test="mann_whitney_u",
        statistic_name="W",
        statistic=w,
        n=big_n,
        n_x=nx,
        n_y=ny,
        n_zeros_dropped=0,
        n_incomplete_dropped=n_missing,
        has_ties=has_ties,
        z=z,
        p_value=p,
        p_method=p_method,
        p_exact_conditional=p_cond,
        defined=True,
        reason="",
        method=method,
    )
