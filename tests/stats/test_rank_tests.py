"""Wilcoxon signed-rank and Mann-Whitney: R's documented examples, scipy, and brute-force enumeration."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from readerstudy.stats.rank_tests import EXACT, NORMAL_CC, mann_whitney_u, wilcoxon_signed_rank


def test_r_wilcoxon_example_from_reference(shared_data):
    text = (shared_data / "proc-asah" / "REFERENCE.md").read_text()
    x = [float(v) for v in re.search(r"x = ([\d. ]+),", text).group(1).split()]
    y = [float(v) for v in re.search(r"y = ([\d. ]+):", text).group(1).split()]
    res = wilcoxon_signed_rank(x, y)
    assert res.statistic == 40 and res.statistic_name == "V"
    assert res.p_method == EXACT
    assert res.p_value == pytest.approx(0.0390625, abs=1e-12)
    assert "V = 40" in text and "0.0390625" in text


def test_r_mann_whitney_example():
    # R ?wilcox.test: wilcox.test(x, y, alternative = "g") gives W = 35, p-value = 0.1272;
    # two-sided is twice the smaller tail
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    res = mann_whitney_u(x, y)
    assert res.statistic == 35 and res.p_method == EXACT
    assert res.p_value == pytest.approx(2 * 0.1272, abs=2e-4)
    assert res.p_value == pytest.approx(sps.mannwhitneyu(x, y, method="exact").pvalue, abs=1e-12)


def test_zeros_dropped_and_r_falls_back_to_normal():
    x = np.array([3, 4, 2, 5, 3, 4, 1, 2])
    y = np.array([3, 2, 1, 3, 3, 1, 2, 4])
    res = wilcoxon_signed_rank(x, y)
    assert res.n_zeros_dropped == 2 and res.n == 6
    assert res.p_method == NORMAL_CC
    ref = sps.wilcoxon(x, y, zero_method="wilcox", correction=True, method="approx")
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_missing_pairs_dropped_and_counted():
    res = wilcoxon_signed_rank([1, 2, np.nan, 4, 5], [2, np.nan, 3, 1, 1])
    assert res.n_incomplete_dropped == 2 and res.n == 3


def test_all_zero_differences_is_undefined():
    res = wilcoxon_signed_rank([3, 3, 4], [3, 3, 4])
    assert not res.defined and np.isnan(res.p_value) and "no non-zero" in res.reason


def test_all_tied_mann_whitney_is_undefined():
    res = mann_whitney_u([3] * 60, [3] * 60)
    assert not res.defined and res.reason


likert = st.lists(st.integers(1, 5), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_signed_rank_matches_scipy(data):
    n = data.draw(st.integers(1, 70))
    x = np.array(data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), float)
    y = np.array(data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), float)
    res = wilcoxon_signed_rank(x, y)
    if not res.defined:
        assert np.all(x == y)
        return
    d = x - y
    d = d[d != 0]
    assert res.statistic == pytest.approx(sps.rankdata(np.abs(d))[d > 0].sum())
    method = "exact" if res.p_method == EXACT else "approx"
    ref = sps.wilcoxon(x, y, zero_method="wilcox", correction=True, method=method)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(likert, likert)
def test_mann_whitney_matches_scipy(x, y):
    res = mann_whitney_u(x, y)
    if not res.defined:
        assert len(set(x) | set(y)) == 1
        return
    method = "exact" if res.p_method == EXACT else "asymptotic"
    ref = sps.mannwhitneyu(x, y, method=method, use_continuity=True)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def _brute_signed_rank(d: np.ndarray) -> float:
    ranks = sps.rankdata(np.abs(d))
    obs = ranks[d > 0].sum()
    mean = ranks.sum() / 2
    sums = [
        sum(r for r, s in zip(ranks, signs) if s)
        for signs in itertools.product([0, 1], repeat=len(d))
    ]
    return float(np.mean([abs(s - mean) >= abs(obs - mean) - 1e-9 for s in sums]))


def _brute_rank_sum(x: np.ndarray, y: np.ndarray) -> float:
    ranks = sps.rankdata(np.concatenate([x, y]))
    obs = ranks[: len(x)].sum()
    mean = len(x) * ranks.mean()
    sums = [ranks[list(c)].sum() for c in itertools.combinations(range(len(ranks)), len(x))]
    return float(np.mean([abs(s - mean) >= abs(obs - mean) - 1e-9 for s in sums]))


@pytest.mark.parametrize("seed", range(5))
def test_exact_conditional_p_equals_enumeration_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, 11).astype(float)
    y = rng.integers(1, 6, 11).astype(float)
    res = wilcoxon_signed_rank(x, y)
    d = (x - y)[x != y]
    assert res.p_exact_conditional == pytest.approx(_brute_signed_rank(d), abs=1e-12)
    mw = mann_whitney_u(x[:7], y[:6])
    assert mw.p_exact_conditional == pytest.approx(_brute_rank_sum(x[:7], y[:6]), abs=1e-12)


def test_exact_conditional_equals_r_exact_without_ties():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=15), rng.normal(size=15)
    res = wilcoxon_signed_rank(x, y)
    assert res.p_method == EXACT
    assert res.p_exact_conditional == pytest.approx(res.p_value, abs=1e-12)
    mw = mann_whitney_u(x, y[:9])
    assert mw.p_exact_conditional == pytest.approx(mw.p_value, abs=1e-12)


def test_large_samples_skip_conditional_p():
    rng = np.random.default_rng(1)
    res = wilcoxon_signed_rank(rng.integers(1, 6, 400), rng.integers(1, 6, 400))
    assert np.isnan(res.p_exact_conditional) and res.p_method == NORMAL_CC
