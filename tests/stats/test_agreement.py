"""Cohen's and Fleiss' kappa: published tables, scikit-learn, and the delta-method variance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from readerstudy.stats.agreement import (
    agreement_weights,
    cohen_kappa,
    cohen_kappa_dichotomised,
    fleiss_kappa,
    fleiss_kappa_from_counts,
)


def test_artstein_poesio_table_1():
    # Artstein & Poesio (2008), Table 1: [[20, 20], [10, 50]] -> kappa 0.348 (as scikit-learn's tests)
    y1 = np.array([0] * 40 + [1] * 60)
    y2 = np.array([0] * 20 + [1] * 20 + [0] * 10 + [1] * 50)
    res = cohen_kappa(y1, y2, categories=(0, 1))
    assert res.kappa == pytest.approx(0.348, abs=5e-4)
    assert res.kappa == pytest.approx(8 / 23, abs=1e-12)  # (0.70 - 0.54) / 0.46
    assert res.table == ((20, 20), (10, 50))
    assert res.observed_agreement == pytest.approx(
        0.70
    ) and res.expected_agreement == pytest.approx(0.54)


def test_artstein_poesio_table_4_and_weights():
    y1 = np.array([0] * 46 + [1] * 44 + [2] * 10)
    y2 = np.array([0] * 52 + [1] * 32 + [2] * 16)
    assert cohen_kappa(y1, y2, categories=(0, 1, 2)).kappa == pytest.approx(0.8013, abs=5e-5)
    y2 = np.array([0] * 50 + [1] * 40 + [2] * 10)
    cats = (0, 1, 2)
    assert cohen_kappa(y1, y2, categories=cats).kappa == pytest.approx(0.9315, abs=5e-5)
    assert cohen_kappa(y1, y2, categories=cats, weights="linear").kappa == pytest.approx(
        0.9412, abs=5e-5
    )
    assert cohen_kappa(y1, y2, categories=cats, weights="quadratic").kappa == pytest.approx(
        0.9541, abs=5e-5
    )


pirads = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=80)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@settings(max_examples=80, deadline=None)
@given(pirads, st.sampled_from([None, "linear", "quadratic"]))
def test_weighted_kappa_matches_sklearn_with_fixed_categories(pairs, weights):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    res = cohen_kappa(a, b, weights=weights)
    expected = cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights=weights)
    if res.defined:
        assert res.kappa == pytest.approx(expected, abs=1e-10)
    else:
        assert len(set(a) | set(b)) == 1  # only 0/0 is undefined


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=80),
    st.sampled_from([None, "linear", "quadratic"]),
)
def test_kappa_of_a_reader_with_itself_is_one(scores, weights):
    res = cohen_kappa(scores, scores, weights=weights)
    if len(set(scores)) == 1:
        assert not res.defined and np.isnan(res.kappa)
    else:
        assert res.kappa == pytest.approx(1.0, abs=1e-12)
        assert res.se == pytest.approx(0.0, abs=1e-7)


def _kappa_from_p(p: np.ndarray, w: np.ndarray) -> float:
    p = p.reshape(w.shape)
    po = (w * p).sum()
    pe = (w * np.outer(p.sum(1), p.sum(0))).sum()
    return (po - pe) / (1 - pe)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_se_equals_multinomial_delta_method(weights):
    # Fleiss-Cohen-Everitt is the delta-method variance of kappa(p) under the multinomial
    rng = np.random.default_rng(4)
    a = rng.integers(1, 6, 150)
    b = np.clip(a + rng.integers(-1, 2, 150), 1, 5)
    res = cohen_kappa(a, b, weights=weights)
    p = np.asarray(res.table, float).ravel() / res.n
    w = agreement_weights(5, weights)
    eps = 1e-7
    grad = np.array(
        [
            (_kappa_from_p(p + eps * e, w) - _kappa_from_p(p - eps * e, w)) / (2 * eps)
            for e in np.eye(25)
        ]
    )
    sigma = (np.diag(p) - np.outer(p, p)) / res.n
    assert res.se == pytest.approx(np.sqrt(grad @ sigma @ grad), rel=1e-5)
    assert res.ci_low == pytest.approx(res.kappa - 1.959963984540054 * res.se)


def test_unobserved_categories_still_count_for_weights():
    # only 1, 2 and 5 used: with the observed labels alone 2-vs-5 would weigh like 1-vs-2
    a, b = [1, 2, 5, 1, 2, 5], [2, 2, 5, 1, 5, 2]
    fixed = cohen_kappa(a, b, weights="linear").kappa
    observed_only = cohen_kappa(a, b, categories=(1, 2, 5), weights="linear").kappa
    assert fixed != pytest.approx(observed_only)
    assert fixed == pytest.approx(cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights="linear"))


def test_dichotomised_kappa_uses_pirads_4_and_5_as_positive():
    a = [1, 2, 3, 4, 5, 3, 4]
    b = [3, 3, 4, 5, 4, 2, 1]
    res = cohen_kappa_dichotomised(a, b)
    expected = cohen_kappa_score(np.array(a) >= 4, np.array(b) >= 4)
    assert res.kappa == pytest.approx(expected) and ">= 4" in res.method


def test_undefined_kappa_is_reported_not_zero_or_crash():
    res = cohen_kappa([4, 4, 4], [4, 4, 4])
    assert not res.defined and np.isnan(res.kappa) and "0/0" in res.reason
    assert res.to_dict()["kappa"] is None
    empty = cohen_kappa([np.nan, 3], [2, np.nan])
    assert not empty.defined and empty.n_incomplete_dropped == 2


def test_values_outside_categories_are_refused():
    with pytest.raises(ValueError, match="outside the categories"):
        cohen_kappa([1, 6], [1, 2])


def test_fleiss_1971_example():
    # Fleiss (1971) 10 subjects x 14 raters x 5 categories (the standard worked example):
    # Pbar = 0.378, Pbar_e = 0.213, kappa = 0.210
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    res = fleiss_kappa_from_counts(counts)
    assert res.observed_agreement == pytest.approx(0.378, abs=5e-4)
    assert res.expected_agreement == pytest.approx(0.213, abs=5e-4)
    assert res.kappa == pytest.approx(0.210, abs=5e-4)


def test_fleiss_from_ratings_matches_counts_and_drops_incomplete():
    rng = np.random.default_rng(2)
    ratings = rng.integers(1, 6, (30, 4)).astype(float)
    ratings[3, 1] = np.nan
    res = fleiss_kappa(ratings)
    counts = np.stack(
        [(ratings[np.isfinite(ratings).all(1)] == c).sum(1) for c in range(1, 6)], axis=1
    )
    assert res.n_incomplete_dropped == 1 and res.n_subjects == 29
    assert res.kappa == pytest.approx(fleiss_kappa_from_counts(counts).kappa)


def test_fleiss_two_raters_is_scotts_pi():
    a = np.array([1, 2, 3, 3, 4, 5, 5, 2])
    b = np.array([1, 3, 3, 3, 4, 4, 5, 1])
    res = fleiss_kappa(np.stack([a, b], axis=1))
    pooled = np.concatenate([a, b])
    pe = sum((pooled == c).mean() ** 2 for c in range(1, 6))
    po = (a == b).mean()
    assert res.kappa == pytest.approx((po - pe) / (1 - pe))


def test_fleiss_single_category_is_undefined():
    res = fleiss_kappa(np.full((5, 3), 2.0))
    assert not res.defined and res.reason


def test_kappa_confidence_interval_is_clipped_to_minus_one_one():
    # 8 pairs, one disagreement: kappa 0.75 with a Wald interval reaching past 1 unclipped.
    a = [1, 2, 2, 2, 1, 1, 2, 2]
    b = [1, 2, 2, 2, 1, 2, 2, 2]
    result = cohen_kappa(a, b)
    assert result.kappa + 1.96 * result.se > 1.0  # the premise: the raw interval overshoots
    assert -1.0 <= result.ci_low <= result.kappa <= result.ci_high == 1.0
