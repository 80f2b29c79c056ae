"""Sensitivity/specificity with Wilson CIs, Likert summary, side agreement, McNemar, Spearman."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from readerstudy.stats.diagnostic import (
    likert_summary,
    mcnemar_test,
    proportion_wilson,
    sensitivity_specificity,
    side_agreement,
    side_correct,
    spearman_correlation,
)


def test_wilson_known_value():
    # R: prop.test(8, 10, correct = FALSE)$conf.int -> 0.4901625 0.9433178
    res = proportion_wilson(8, 10)
    assert res.ci_low == pytest.approx(0.4901625, abs=5e-8)
    assert res.ci_high == pytest.approx(0.9433178, abs=5e-8)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(kn):
    k, n = kn
    res = proportion_wilson(k, n)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert res.ci_low == pytest.approx(ci.low, abs=1e-12)
    assert res.ci_high == pytest.approx(ci.high, abs=1e-12)


def test_empty_proportion_is_undefined():
    res = proportion_wilson(0, 0)
    assert not res.defined and np.isnan(res.estimate)


def test_sensitivity_specificity_at_thresholds():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([5, 4, 3, 2, 4, 3, 2, 1, np.nan])
    at3 = sensitivity_specificity(y, s, threshold=3)
    at4 = sensitivity_specificity(y, s, threshold=4)
    assert (at3.tp, at3.fn, at3.tn, at3.fp) == (3, 1, 2, 2)
    assert (at4.tp, at4.fn, at4.tn, at4.fp) == (2, 2, 3, 1)
    assert at3.sensitivity.estimate == 0.75 and at4.specificity.estimate == 0.75
    assert at3.n_missing_dropped == 1


def test_likert_summary():
    res = likert_summary([1, 2, 2, 5, np.nan])
    assert res.n == 4 and res.mean == 2.5
    assert res.sd == pytest.approx(np.std([1, 2, 2, 5], ddof=1))
    assert res.counts == {"1": 1, "2": 2, "3": 0, "4": 0, "5": 1} and res.n_missing_dropped == 1


def test_side_agreement_and_bad_side():
    assert list(side_correct(["left", "Right", None], ["left", "left", "none"])[:2]) == [1.0, 0.0]
    res = side_agreement(
        ["left", "right", None, "bilateral"], ["left", "left", "right", "bilateral"]
    )
    assert (res.successes, res.n) == (2, 3)
    with pytest.raises(ValueError, match="lesion side"):
        side_correct(["middle"], ["left"])


def test_mcnemar_continuity_corrected_and_exact():
    a = np.array([1] * 10 + [1] * 6 + [0] * 2 + [0] * 5)
    b = np.array([1] * 10 + [0] * 6 + [1] * 2 + [0] * 5)
    res = mcnemar_test(a, b)
    assert (res.b, res.c) == (6, 2)
    assert res.chi2 == pytest.approx((abs(6 - 2) - 1) ** 2 / 8)
    assert res.p_value == pytest.approx(sps.chi2.sf(9 / 8, 1))
    assert res.p_exact == pytest.approx(sps.binomtest(6, 8).pvalue)
    same = mcnemar_test([1, 0, 1], [1, 0, 1])
    assert not same.defined and same.reason


def test_spearman_matches_scipy_and_handles_constant():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, 40).astype(float)
    y = np.clip(x + rng.integers(-1, 2, 40), 0, 5)
    x[0] = np.nan
    res = spearman_correlation(x, y)
    ref = sps.spearmanr(x[1:], y[1:])
    assert res.rho == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    assert res.n_incomplete_dropped == 1 and res.ci_low < res.rho < res.ci_high
    const = spearman_correlation([1, 1, 1, 1], [1, 2, 3, 4])
    assert not const.defined and "constant" in const.reason
