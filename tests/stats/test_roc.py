"""ROC/AUC/DeLong: pROC's published aSAH values, an independent O(mn) DeLong, and AUC = U/mn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.metrics import roc_auc_score, roc_curve

from readerstudy.stats.roc import (
    delong_placements,
    roc_auc_compare_paired,
    roc_auc_compare_unpaired,
    roc_auc_delong,
    roc_curve_points,
)


@pytest.fixture(scope="module")
def asah(shared_data):
    folder = shared_data / "proc-asah"
    data = pd.read_csv(folder / "asah.csv")
    return data, (data["outcome"] == "Poor").to_numpy(), (folder / "REFERENCE.md").read_text()


@pytest.mark.parametrize(
    ("marker", "auc", "low", "high", "var"),
    [
        ("s100b", 0.7313685637, 0.6301182118, 0.8326189156, 0.00266868245717),
        ("wfns", 0.8236788618, 0.7485348878, 0.8988228358, 0.00146991470882),
        ("ndka", 0.6119579946, 0.5012449993, 0.7226709899, 0.00319081054939),
    ],
)
def test_asah_auc_and_delong_ci_match_proc(asah, marker, auc, low, high, var):
    data, y, reference = asah
    assert f"{auc:.10f}" in reference  # the figures below are the fixture's own
    res = roc_auc_delong(y, data[marker].to_numpy(dtype=float))
    assert res.auc == pytest.approx(auc, abs=1e-9)
    assert res.ci_low == pytest.approx(low, abs=1e-9)
    assert res.ci_high == pytest.approx(high, abs=1e-9)
    assert res.variance == pytest.approx(var, abs=1e-13)
    assert (res.n_positive, res.n_negative) == (41, 72)
    assert "DeLong" in res.method and "Sun & Xu" in res.method


@pytest.mark.parametrize(
    ("a", "b", "z", "p"),
    [("wfns", "s100b", 2.2089835914, 0.02717578223), ("s100b", "ndka", 1.3907700257, 0.1642951752)],
)
def test_asah_paired_delong_matches_proc(asah, a, b, z, p):
    data, y, _ = asah
    res = roc_auc_compare_paired(y, data[a].to_numpy(float), data[b].to_numpy(float))
    assert res.defined
    assert res.z == pytest.approx(z, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-10)


def test_asah_unpaired_delong_matches_proc(asah):
    data, y, _ = asah
    men = (data["gender"] == "Male").to_numpy()
    s = data["s100b"].to_numpy(float)
    res = roc_auc_compare_unpaired(y[men], s[men], y[~men], s[~men])
    assert res.statistic == pytest.approx(0.5018807743, abs=1e-9)
    assert res.df == pytest.approx(106.4625500289, abs=1e-9)
    assert res.p_value == pytest.approx(0.6167877593, abs=1e-9)


def _slow_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988 straight from the kernel psi(x, y) over all m x n pairs (independent of mid-ranks)."""
    pos, neg = scores[:, y], scores[:, ~y]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10 = psi.mean(axis=2)
    v01 = psi.mean(axis=1)
    auc = psi.mean(axis=(1, 2))
    cov = np.cov(v10) / pos.shape[1] + np.cov(v01) / neg.shape[1]
    return auc, np.atleast_2d(cov)


def test_fast_delong_equals_kernel_delong_with_ties():
    rng = np.random.default_rng(3)
    y = rng.random(80) < 0.4
    scores = np.clip(np.rint(3 + 1.5 * y[None, :] + rng.normal(size=(3, 80))), 1, 5)
    auc, cov = _slow_delong(y, scores)
    pl = delong_placements(y, scores)
    np.testing.assert_allclose(pl.auc, auc, atol=1e-12)
    np.testing.assert_allclose(pl.covariance, cov, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(1, 5)), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(r[0] for r in rows) < len(rows)
    )
)
def test_auc_equals_mann_whitney_u_over_mn(rows):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    m, n = int(y.sum()), int((~y).sum())
    u = sps.mannwhitneyu(s[y], s[~y]).statistic
    res = roc_auc_delong(y, s)
    assert res.auc == pytest.approx(u / (m * n), abs=1e-12)
    assert res.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_constant_reader_gives_auc_half_with_zero_se():
    y = np.array([1, 0, 1, 0, 0, 1, 0])
    res = roc_auc_delong(y, np.full(7, 3.0))
    assert res.auc == 0.5
    assert res.se == 0.0 and res.variance == 0.0
    assert res.ci_low == res.ci_high == 0.5


def test_direction_is_fixed_not_chosen_from_data():
    y = np.array([1, 1, 1, 0, 0, 0])
    res = roc_auc_delong(y, np.array([1, 2, 1, 5, 4, 5.0]))
    assert res.auc == 0.0  # an inverted reader stays inverted


def test_ci_reported_clipped_and_unclipped():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    res = roc_auc_delong(y, np.array([5, 4, 5, 1, 2, 1, 3, 3.0]))
    assert res.ci_high > 1.0
    assert res.ci_high_clipped == 1.0
    assert res.ci_low_clipped == res.ci_low


def test_roc_points_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(50) < 0.5
    s = rng.integers(1, 6, 50).astype(float)
    curve = roc_curve_points(y, s)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thr[1:])
    assert np.isinf(curve.thresholds[0])


def test_paired_identical_readers_is_undefined_not_a_crash():
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([5, 1, 4, 2, 3, 3.0])
    res = roc_auc_compare_paired(y, s, s)
    assert not res.defined and np.isnan(res.p_value) and res.reason


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([1, 1, 1], [1, 2, 3], "at least one positive and one negative"),
        ([1, 0, 1], [1, float("nan"), 3], "NaN"),
        ([1, 0, 2], [1, 2, 3], "0/1"),
        ([1, 0], [1, 2, 3], "same length"),
    ],
)
def test_bad_input_gets_a_clear_message(y, s, message):
    with pytest.raises(ValueError, match=message):
        roc_auc_delong(y, s)
