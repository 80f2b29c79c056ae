"""Obuchowski-Rockette MRMC against the Iowa OR-DBM MRMC 2.5 output on the Van Dyke data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from readerstudy.stats.mrmc import auc_covariance, mrmc_or
from readerstudy.stats.roc import roc_auc_compare_paired, roc_auc_delong

OR_DBM_AUC = [
    [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066],
    [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169],
]


@pytest.fixture(scope="module")
def vandyke(shared_data):
    folder = shared_data / "mrmc-vandyke"
    data = pd.read_csv(folder / "vandyke.csv")
    scores = (
        data.pivot_table(index=["modality", "reader"], columns="case", values="rating")
        .to_numpy()
        .reshape(2, 5, 114)
    )
    truth = data.groupby("case")["truth"].first().to_numpy()
    return scores, truth, (folder / "OR-DBM-MRMC-2.5-output.txt").read_text()


def test_vandyke_jackknife_matches_or_dbm(vandyke):
    scores, truth, output = vandyke
    res = mrmc_or(scores, truth, covariance="jackknife")
    assert (res.n_cases, res.n_positive, res.n_negative) == (114, 45, 69)
    np.testing.assert_allclose(res.auc, OR_DBM_AUC, atol=5e-9)
    np.testing.assert_allclose(res.reader_averaged_auc, [0.89703704, 0.94083736], atol=5e-9)
    for name, value in [
        ("ms_t", 0.00479617), ("ms_r", 0.00383620), ("ms_tr", 0.00055103),
        ("var_error", 0.00080229), ("cov1", 0.00034661), ("cov2", 0.00034407),
        ("cov3", 0.00023903), ("var_r", 0.00153500), ("var_tr", 0.00020040),
    ]:  # fmt: skip
        assert getattr(res, name) == pytest.approx(value, abs=5e-9), name
        assert f"{value:.8f}" in output

    rrrc = res.random_readers_random_cases
    assert rrrc.statistic == pytest.approx(4.46, abs=5e-3)
    assert rrrc.df_denominator == pytest.approx(15.26, abs=5e-3)
    assert rrrc.p_value == pytest.approx(0.0517, abs=5e-5)
    assert rrrc.error_term == pytest.approx(0.00107626, abs=5e-9)
    (diff,) = rrrc.differences
    assert diff.difference == pytest.approx(-0.04380032, abs=5e-9)
    assert diff.se == pytest.approx(0.02075, abs=5e-6)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((-0.08796, 0.00036), abs=5e-6)
    single = rrrc.single_treatment
    assert [s.se for s in single] == pytest.approx([0.03317360, 0.02156637], abs=5e-9)
    assert [s.df for s in single] == pytest.approx([12.74, 12.71], abs=5e-3)
    assert [s.ci_low for s in single] == pytest.approx([0.82522360, 0.89413783], abs=5e-9)

    frrc = res.fixed_readers_random_cases
    assert frrc.statistic == pytest.approx(5.47595, abs=5e-6)
    assert frrc.p_value == pytest.approx(0.0193, abs=5e-5)
    (fdiff,) = frrc.differences
    assert (fdiff.ci_low, fdiff.ci_high) == pytest.approx((-0.08049, -0.00711), abs=5e-6)
    assert [s.se for s in frrc.single_treatment] == pytest.approx(
        [0.02428971, 0.01677632], abs=5e-9
    )
    assert [r.se for r in frrc.per_reader] == pytest.approx(
        [0.02551, 0.02630, 0.03121, 0.01729, 0.04406], abs=5e-6
    )
    assert [r.cov1 for r in frrc.per_reader] == pytest.approx(
        [0.00037347, 0.00076016, 0.00035532, 0.00000108, 0.00024304], abs=5e-9
    )

    rrfc = res.random_readers_fixed_cases
    assert rrfc.statistic == pytest.approx(8.70, abs=5e-3)
    assert rrfc.p_value == pytest.approx(0.0420, abs=5e-5)
    assert (rrfc.differences[0].ci_low, rrfc.differences[0].ci_high) == pytest.approx(
        (-0.08502, -0.00258), abs=5e-6
    )
    assert res.to_dict()["fixed_readers_random_cases"]["df_denominator"] is None  # inf: normal


def test_vandyke_delong_covariance_is_consistent_with_delong_tests(vandyke):
    scores, truth, _ = vandyke
    res = mrmc_or(scores, truth, covariance="delong")
    assert res.covariance_method == "DeLong"
    np.testing.assert_allclose(res.auc, OR_DBM_AUC, atol=5e-9)
    # the DeLong figures differ slightly from the jackknife ones, as the fixture's README says
    assert res.random_readers_random_cases.statistic == pytest.approx(4.46, abs=0.1)
    assert res.random_readers_random_cases.statistic != pytest.approx(4.4563, abs=1e-3)
    for j, reader in enumerate(res.fixed_readers_random_cases.per_reader):
        paired = roc_auc_compare_paired(truth, scores[0, j], scores[1, j])
        assert reader.se == pytest.approx(paired.se, rel=1e-10)
        assert reader.var_error == pytest.approx(
            (
                roc_auc_delong(truth, scores[0, j]).variance
                + roc_auc_delong(truth, scores[1, j]).variance
            )
            / 2,
            rel=1e-10,
        )


def test_fast_jackknife_equals_refitting_without_each_case():
    rng = np.random.default_rng(5)
    truth = rng.random(30) < 0.4
    scores = np.clip(np.rint(3 + truth + rng.normal(size=(4, 30))), 1, 5)
    auc, cov = auc_covariance(scores, truth, method="jackknife")
    loo = np.array(
        [
            [roc_auc_delong(np.delete(truth, c), np.delete(s, c)).auc for c in range(30)]
            for s in scores
        ]
    )
    centred = loo - loo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(cov, 29 / 30 * centred @ centred.T, atol=1e-14)


def test_three_treatments_give_every_pair():
    rng = np.random.default_rng(1)
    truth = rng.random(40) < 0.5
    scores = np.clip(np.rint(3 + truth + rng.normal(size=(3, 3, 40))), 1, 5)
    res = mrmc_or(scores, truth, treatments=["a", "b", "c"], readers=["x", "y", "z"])
    pairs = [(d.treatment_a, d.treatment_b) for d in res.random_readers_random_cases.differences]
    assert pairs == [("a", "b"), ("a", "c"), ("b", "c")]
    assert res.random_readers_random_cases.df_numerator == 2


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 10), ">= 2 treatments"),
        ((2, 1, 10), ">= 2 readers"),
        ((2, 3), "treatments, readers, cases"),
    ],
)
def test_bad_designs_are_refused(shape, message):
    truth = np.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        mrmc_or(np.ones(shape), truth)


def test_missing_scores_are_refused():
    scores = np.ones((2, 2, 6))
    scores[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="fully crossed"):
        mrmc_or(scores, np.array([0, 1, 0, 1, 0, 1]))
