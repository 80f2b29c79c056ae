"""Agreement: Cohen's kappa (unweighted, linear, quadratic) with a 95% CI, and Fleiss' kappa.

Categories are fixed by the caller (PI-RADS: 1..5), never taken from the observed values, so a reader
who never used "2" still has a 5 x 5 table and the weights mean the same for every reader.

An undefined kappa (expected agreement 1, i.e. both raters used one and the same category only, or no
complete pairs) is reported as undefined: ``kappa`` NaN, ``defined`` False, and a ``reason``; it is
never a crash and never a silent 0.

References
----------
Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas 1960;20:37-46.
Cohen J. Weighted kappa. Psychol Bull 1968;70:213-220.
Fleiss JL, Cohen J, Everitt BS. Large sample standard errors of kappa and weighted kappa.
Psychol Bull 1969;72:323-327.
Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378-382.
Fleiss JL, Nee JCM, Landis JR. Large sample variance of kappa in the case of different sets of raters.
Psychol Bull 1979;86:974-977.
Artstein R, Poesio M. Inter-coder agreement for computational linguistics. Comput Linguist 2008;34:555-596.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from readerstudy.stats._base import ResultMixin, z_critical

PIRADS_CATEGORIES: tuple[int, ...] = (1, 2, 3, 4, 5)
Weights = Literal["linear", "quadratic"] | None
# expected agreement this close to 1 means a 0/0 kappa, not a number
_EPS = 1e-12


@dataclass(frozen=True)
class KappaResult(ResultMixin):
    """Cohen's kappa with its large-sample SE and a Wald CI.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o = sum w_ij p_ij`` and ``p_e = sum w_ij p_i. p_.j``,
    agreement weights ``w_ij`` = 1 if i == j else 0 (unweighted), ``1 - |i-j|/(k-1)`` (linear),
    ``1 - (i-j)^2/(k-1)^2`` (quadratic). Variance (Fleiss, Cohen & Everitt 1969):
    ``[sum p_ij (w_ij - (wbar_i. + wbar_.j)(1 - kappa))^2 - (kappa - p_e(1 - kappa))^2] / (n (1 - p_e)^2)``
    with ``wbar_i. = sum_j p_.j w_ij`` and ``wbar_.j = sum_i p_i. w_ij``. CI ``kappa -/+ z se``.
    """

    kappa: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    observed_agreement: float
    expected_agreement: float
    n: int
    n_incomplete_dropped: int
    categories: tuple[float, ...]
    weights: str
    table: tuple[tuple[int, ...], ...]
    defined: bool
    reason: str
    method: str


@dataclass(frozen=True)
class FleissKappaResult(ResultMixin):
    """Fleiss' kappa for a fixed number of raters per subject.

    ``kappa = (Pbar - Pbar_e) / (1 - Pbar_e)``, ``P_i = (sum_j n_ij^2 - r) / (r (r - 1))``,
    ``Pbar_e = sum_j p_j^2`` (Fleiss 1971). ``se_null`` is the SE under kappa = 0 (Fleiss, Nee & Landis
    1979): ``sqrt(2 / (N r (r-1))) sqrt((sum p_j q_j)^2 - sum p_j q_j (q_j - p_j)) / sum p_j q_j``;
    ``z = kappa / se_null`` with a two-sided normal p, as R ``irr::kappam.fleiss``. That SE holds under the
    null only, so no CI is given.
    """

    kappa: float
    se_null: float
    z: float
    p_value: float
    observed_agreement: float
    expected_agreement: float
    n_subjects: int
    n_raters: int
    n_incomplete_dropped: int
    categories: tuple[float, ...]
    defined: bool
    reason: str
    method: str = "Fleiss' kappa (Fleiss 1971; null SE of Fleiss, Nee & Landis 1979)"


def agreement_weights(k: int, weights: Weights) -> NDArray[np.float64]:
    """Agreement weight matrix (1 on the diagonal) for ``k`` ordered categories."""
    if k < 2:
        raise ValueError("kappa needs at least two categories")
    i, j = np.indices((k, k))
    if weights is None:
        return (i == j).astype(np.float64)
    if weights == "linear":
        return 1.0 - np.abs(i - j) / (k - 1)
    if weights == "quadratic":
        return 1.0 - (i - j) ** 2 / (k - 1) ** 2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _category_index(
    values: NDArray[np.float64], categories: NDArray[np.float64], *, name: str
) -> NDArray[np.intp]:
    idx = np.searchsorted(categories, values)
    bad = (idx >= categories.size) | (categories[np.minimum(idx, categories.size - 1)] != values)
    if bad.any():
        unknown = sorted({float(v) for v in values[bad]})[:5]
        raise ValueError(
            f"{name} has values outside the categories {tuple(categories.tolist())}: {unknown}"
        )
    return idx


def _categories(categories: Sequence[float]) -> NDArray[np.float64]:
    cats = np.asarray(categories, dtype=np.float64)
    if cats.ndim != 1 or cats.size < 2 or np.any(np.diff(cats) <= 0):
        raise ValueError("categories must be at least two strictly increasing values")
    return cats


def cohen_kappa(
    rater_a: ArrayLike,
    rater_b: ArrayLike,
    *,
    categories: Sequence[float] = PIRADS_CATEGORIES,
    weights: Weights = None,
    confidence: float = 0.95,
) -> KappaResult:
    """Cohen's kappa between two raters on the same subjects (see :class:`KappaResult`).

    Pairs with a missing (NaN) rating are dropped and counted in ``n_incomplete_dropped``.
    """
    cats = _categories(categories)
    a = np.asarray(rater_a, dtype=np.float64)
    b = np.asarray(rater_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"raters must be 1-D and of the same length, got {a.shape} and {b.shape}")
    w_matrix = agreement_weights(cats.size, weights)
    keep = np.isfinite(a) & np.isfinite(b)
    dropped = int((~keep).sum())
    ia = _category_index(a[keep], cats, name="rater_a")
    ib = _category_index(b[keep], cats, name="rater_b")
    k = cats.size
    n = int(ia.size)
    table = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k)
    label = weights or "unweighted"
    method = f"Cohen's kappa ({label}; SE of Fleiss, Cohen & Everitt 1969)"
    nan = float("nan")

    def result(kappa: float, se: float, po: float, pe: float, reason: str) -> KappaResult:
        z = z_critical(confidence)
        return KappaResult(
            kappa=kappa,
            se=se,
            # Kappa lies in [-1, 1]: a Wald interval reaching past it is clipped (NaN stays NaN).
            ci_low=max(-1.0, kappa - z * se) if kappa == kappa else nan,
            ci_high=min(1.0, kappa + z * se) if kappa == kappa else nan,
            confidence=confidence,
            observed_agreement=po,
            expected_agreement=pe,
            n=n,
            n_incomplete_dropped=dropped,
            categories=tuple(float(c) for c in cats),
            weights=label,
            table=tuple(tuple(int(v) for v in row) for row in table),
            defined=not reason,
            reason=reason,
            method=method,
        )

    if n == 0:
        return result(nan, nan, nan, nan, "no complete pairs of ratings")
    p = table / n
    rows = p.sum(axis=1)
    cols = p.sum(axis=0)
    po = float((w_matrix * p).sum())
    pe = float((w_matrix * np.outer(rows, cols)).sum())
    if 1.0 - pe < _EPS:
        return result(
            nan,
            nan,
            po,
            pe,
            "expected agreement is 1 (both raters used one and the same category only): kappa is 0/0",
        )
    kappa = (po - pe) / (1.0 - pe)
    wbar_row = w_matrix @ cols
    wbar_col = rows @ w_matrix
    term = w_matrix - (wbar_row[:, None] + wbar_col[None, :]) * (1.0 - kappa)
    var = ((p * term**2).sum() - (kappa - pe * (1.0 - kappa)) ** 2) / (n * (1.0 - pe) ** 2)
    # perfect agreement gives 0 up to rounding
    se = float(np.sqrt(max(var, 0.0)))
    return result(float(kappa), se, po, pe, "")


def cohen_kappa_dichotomised(
    rater_a: ArrayLike,
    rater_b: ArrayLike,
    *,
    threshold: float = 4,
    confidence: float = 0.95,
) -> KappaResult:
    """Unweighted Cohen's kappa after dichotomising each score at ``>= threshold`` (PI-RADS 4-5 vs 1-3).

    Missing scores stay missing (the pair is dropped and counted).
    """
    a = np.asarray(rater_a, dtype=np.float64)
    b = np.asarray(rater_b, dtype=np.float64)
    da = np.where(np.isfinite(a), (a >= threshold).astype(np.float64), np.nan)
    db = np.where(np.isfinite(b), (b >= threshold).astype(np.float64), np.nan)
    res = cohen_kappa(da, db, categories=(0, 1), weights=None, confidence=confidence)
    return _replace_method(res, f"{res.method}; scores dichotomised at >= {threshold:g}")


def _replace_method(res: KappaResult, method: str) -> KappaResult:
    from dataclasses import replace

    return replace(res, method=method)


def fleiss_kappa(
    ratings: ArrayLike,
    *,
    categories: Sequence[float] = PIRADS_CATEGORIES,
) -> FleissKappaResult:
    """Fleiss' kappa from a ``(n_subjects, n_raters)`` array of category values (see the class).

    Subjects with a missing rating are dropped (Fleiss' kappa needs the same number of raters per
    subject) and counted.
    """
    cats = _categories(categories)
    arr = np.asarray(ratings, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"ratings must be (n_subjects, n_raters >= 2), got shape {arr.shape}")
    keep = np.isfinite(arr).all(axis=1)
    dropped = int((~keep).sum())
    arr = arr[keep]
    n_subjects, r = arr.shape
    k = cats.size
    nan = float("nan")

    def undefined(reason: str, pbar: float = nan, pe: float = nan) -> FleissKappaResult:
        return FleissKappaResult(
            kappa=nan,
            se_null=nan,
            z=nan,
            p_value=nan,
            observed_agreement=pbar,
            expected_agreement=pe,
            n_subjects=n_subjects,
            n_raters=r,
            n_incomplete_dropped=dropped,
            categories=tuple(float(c) for c in cats),
            defined=False,
            reason=reason,
        )

    if n_subjects == 0:
        return undefined("no subject was rated by every rater")
    idx = _category_index(arr.ravel(), cats, name="ratings").reshape(arr.shape)
    counts = np.zeros((n_subjects, k))
    np.add.at(counts, (np.repeat(np.arange(n_subjects), r), idx.ravel()), 1.0)
    return fleiss_kappa_from_counts(
        counts, categories=tuple(float(v) for v in cats), n_incomplete_dropped=dropped
    )


def fleiss_kappa_from_counts(
    counts: ArrayLike,
    *,
    categories: Sequence[float] | None = None,
    n_incomplete_dropped: int = 0,
) -> FleissKappaResult:
    """Fleiss' kappa from a ``(n_subjects, n_categories)`` table of how many raters chose each category."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError("counts must be (n_subjects, n_categories >= 2)")
    totals = c.sum(axis=1)
    if c.shape[0] and (np.any(totals != totals[0]) or totals[0] < 2):
        raise ValueError("every subject needs the same number (>= 2) of ratings for Fleiss' kappa")
    n_subjects = c.shape[0]
    r = int(totals[0]) if n_subjects else 0
    cats = tuple(float(v) for v in (categories if categories is not None else range(c.shape[1])))
    nan = float("nan")
    base = {
        "n_subjects": n_subjects,
        "n_raters": r,
        "n_incomplete_dropped": n_incomplete_dropped,
        "categories": cats,
    }
    if n_subjects == 0:
        return FleissKappaResult(
            kappa=nan, se_null=nan, z=nan, p_value=nan, observed_agreement=nan,
            expected_agreement=nan, defined=False, reason="no subjects", **base,
        )  # fmt: skip
    p_j = c.sum(axis=0) / (n_subjects * r)
    p_i = ((c**2).sum(axis=1) - r) / (r * (r - 1))
    pbar = float(p_i.mean())
    pe = float((p_j**2).sum())
    if 1.0 - pe < _EPS:
        return FleissKappaResult(
            kappa=nan, se_null=nan, z=nan, p_value=nan, observed_agreement=pbar,
            expected_agreement=pe, defined=False,
            reason="every rating is the same category: expected agreement 1, kappa is 0/0", **base,
        )  # fmt: skip
    kappa = (pbar - pe) / (1.0 - pe)
    pq = p_j * (1.0 - p_j)
    spq = float(pq.sum())
    se0 = float(
        np.sqrt(2.0 / (n_subjects * r * (r - 1)))
        * np.sqrt(max(spq**2 - float((pq * ((1.0 - p_j) - p_j)).sum()), 0.0))
        / spq
    )
    z = kappa / se0 if se0 > 0 else nan
    p = float(2.0 * sps.norm.sf(abs(z))) if se0 > 0 else nan
    return FleissKappaResult(
        kappa=float(kappa),
        se_null=se0,
        z=float(z),
        p_value=p,
        observed_agreement=pbar,
        expected_agreement=pe,
        defined=True,
        reason="",
        **base,
    )
