"""study_analyse end to end on SYNTHETIC reads and on the Van Dyke MRMC data in long format."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from readerstudy.stats import study_analyse
from readerstudy.stats.agreement import cohen_kappa
from readerstudy.stats.rank_tests import wilcoxon_signed_rank
from readerstudy.stats.roc import roc_auc_delong
from readerstudy.stats.synthetic import synthetic_reads


@pytest.fixture(scope="module")
def reads() -> pd.DataFrame:
    return synthetic_reads(n_readers=4, n_cases=40, seed=7)


@pytest.fixture(scope="module")
def analysis(reads):
    return study_analyse(reads, reference="pirads")


def test_structure_and_counts(analysis):
    assert analysis.arms == ("original", "registered") and analysis.baseline_arm == "original"
    assert analysis.readers == ("R01", "R02", "R03", "R04")
    assert analysis.reader_levels == {
        "R01": "junior",
        "R02": "senior",
        "R03": "junior",
        "R04": "senior",
    }
    assert len(analysis.reader_arms) == 8
    assert len(analysis.delong_paired) == 4 and len(analysis.wilcoxon) == 4
    # 3 scales x (4 reader-vs-reference x 2 arms + 6 reader pairs x 2 arms + 4 within-reader)
    assert len(analysis.kappa) == 3 * (8 + 12 + 4)
    assert len(analysis.fleiss) == 4 and len(analysis.mann_whitney) == 2
    assert [m.covariance_method for m in analysis.mrmc] == ["case jackknife", "DeLong"]
    assert analysis.mrmc[0].treatments == ("registered", "original")
    assert analysis.notes == ()  # nothing missing in this table


def test_to_dict_is_strict_json_and_round_trips(analysis):
    payload = json.dumps(analysis.to_dict(), allow_nan=False)
    back = json.loads(payload)
    assert back["reader_arms"][0]["auc"]["auc"] == pytest.approx(analysis.reader_arms[0].auc.auc)
    assert back["mrmc"][0]["random_readers_random_cases"]["statistic_name"] == "F"


def test_reader_results_equal_the_primitives(reads, analysis):
    y_case = reads.drop_duplicates("case").set_index("case")["reference_pirads"] >= 4
    for ra in analysis.reader_arms:
        rows = reads[(reads.reader == ra.reader) & (reads.arm == ra.arm)].set_index("case")
        expected = roc_auc_delong(y_case[rows.index].to_numpy(), rows["pirads"].to_numpy())
        assert ra.auc.auc == pytest.approx(expected.auc) and ra.auc.se == pytest.approx(expected.se)
    r1 = reads[reads.reader == "R01"].pivot(index="case", columns="arm", values="likert")
    expected_w = wilcoxon_signed_rank(r1["registered"], r1["original"])
    assert analysis.wilcoxon[0].result.statistic == expected_w.statistic
    entry = next(
        k for k in analysis.kappa
        if k.kind == "within_reader" and k.rater_a == "R02" and k.scale == "quadratic"
    )  # fmt: skip
    r2 = reads[reads.reader == "R02"].pivot(index="case", columns="arm", values="pirads")
    assert entry.result.kappa == pytest.approx(
        cohen_kappa(r2["registered"], r2["original"], weights="quadratic").kappa
    )


def test_missing_reads_are_used_per_analysis_and_reported(reads):
    holes = reads.drop(
        index=reads[(reads.reader == "R01") & (reads.case.isin(["C0001", "C0002"]))].index
    )
    holes = holes.copy()
    holes.loc[
        (holes.reader == "R02") & (holes.case == "C0003") & (holes.arm == "registered"), "pirads"
    ] = np.nan
    res = study_analyse(holes)
    r1 = next(r for r in res.reader_arms if r.reader == "R01" and r.arm == "original")
    assert r1.n_scored == 38 and r1.auc.n_positive + r1.auc.n_negative == 38
    d2 = next(d for d in res.delong_paired if d.reader == "R02")
    assert (d2.n_pairs, d2.n_incomplete_dropped) == (39, 1)
    assert res.mrmc_n_cases_dropped == 3 and res.mrmc[0].n_cases == 37
    assert any("R01" in n and "2 of 40 cases not scored" in n for n in res.notes)
    assert any("MRMC uses the 37 cases" in n for n in res.notes)


def test_constant_reader_and_undefined_kappa(reads):
    flat = reads.copy()
    flat.loc[flat.reader.isin(["R01", "R02"]), "pirads"] = 3.0
    res = study_analyse(flat)
    r1 = next(r for r in res.reader_arms if r.reader == "R01")
    assert r1.auc.auc == 0.5 and r1.auc.se == 0.0
    both_flat = [
        k for k in res.kappa
        if k.kind == "between_readers" and {k.rater_a, k.rater_b} == {"R01", "R02"}
    ]  # fmt: skip
    assert both_flat and all(not k.result.defined and k.result.reason for k in both_flat)
    vs_ref = next(k for k in res.kappa if k.kind == "reader_vs_reference" and k.rater_a == "R01")
    assert vs_ref.result.defined and vs_ref.result.kappa == pytest.approx(0.0)
    assert any("kappas are undefined" in n for n in res.notes)
    json.dumps(res.to_dict(), allow_nan=False)


def test_biopsy_reference_and_three_arms():
    reads = synthetic_reads(
        n_readers=3, n_cases=30, arms=("original", "registered", "fused"), seed=3
    )
    res = study_analyse(reads, reference="biopsy")
    assert res.reference == "biopsy" and "biopsy" in res.reference_description
    assert res.n_positive == int((reads.drop_duplicates("case").cspca == "yes").sum())
    assert {(d.arm_a, d.arm_b) for d in res.delong_paired} == {
        ("registered", "original"),
        ("fused", "original"),
    }
    assert res.mrmc[0].treatments == ("registered", "fused", "original")
    assert res.mrmc[0].random_readers_random_cases.df_numerator == 2


def test_vandyke_through_study_analyse_matches_or_dbm(shared_data):
    raw = pd.read_csv(shared_data / "mrmc-vandyke" / "vandyke.csv")
    reads = pd.DataFrame(
        {
            "reader": raw["reader"].astype(str),
            "case": raw["case"].astype(str),
            "arm": raw["modality"].map({0: "original", 1: "registered"}),
            "pirads": raw["rating"],
            "cspca": raw["truth"].map({1: "yes", 0: "no"}),
        }
    )
    res = study_analyse(reads, reference="biopsy")
    jack = res.mrmc[0]
    (diff,) = jack.random_readers_random_cases.differences
    # registered - original = modality 1 - modality 0 = -(OR-DBM's "1 - 2")
    assert diff.difference == pytest.approx(0.04380032, abs=5e-9)
    assert jack.random_readers_random_cases.df_denominator == pytest.approx(15.26, abs=5e-3)
    assert jack.random_readers_random_cases.p_value == pytest.approx(0.0517, abs=5e-5)
    assert "no likert column: Wilcoxon and Mann-Whitney are not computed" in res.notes


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns="pirads"), "missing the column"),
        (lambda d: d.drop(columns="reference_pirads"), "reference_pirads"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "more than one read"),
        (lambda d: d.assign(pirads=d.pirads.where(d.index != 5, 6)), "pirads"),
        (
            lambda d: d.assign(likert=d.likert.astype(object).where(d.index != 2, "high")),
            "non-numeric",
        ),
        (
            lambda d: d.assign(
                reference_pirads=d.reference_pirads.where(d.index != 40, 9 - d.reference_pirads)
            ),
            "differs between reads of case",
        ),
        (lambda d: d.iloc[0:0], "empty"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(reads, mutate, message):
    with pytest.raises(ValueError, match=message):
        study_analyse(mutate(reads.copy()))


def test_bad_cspca_and_reference_names(reads):
    with pytest.raises(ValueError, match="cspca"):
        study_analyse(reads.assign(cspca="maybe"), reference="biopsy")
    with pytest.raises(ValueError, match="reference must be"):
        study_analyse(reads, reference="histology")


def test_stats_package_imports_neither_django_nor_torch():
    code = (
        "import sys, readerstudy.stats; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'torch')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rows_as_django_would_give_them(reads):
    # None for missing values, nullable integer columns and booleans for cspca
    rows = reads.copy()
    rows["pirads"] = rows["pirads"].astype("Int64")
    rows.loc[3, "pirads"] = pd.NA
    rows["likert"] = rows["likert"].astype(object)
    rows.loc[4, "likert"] = None
    rows["cspca"] = rows["cspca"].map({"yes": True, "no": False}).astype(object)
    rows.loc[rows.case == "C0009", "cspca"] = None
    rows["isup"] = rows["isup"].astype("Int64")
    res = study_analyse(rows, reference="biopsy")
    assert res.n_reference_unknown == 1
    first = next(r for r in res.reader_arms if r.reader == "R01" and r.arm == "original")
    assert first.n_scored == 39
    json.dumps(res.to_dict(), allow_nan=False)


def test_likert_is_the_seven_point_scale(reads):
    seven = reads.assign(likert=reads["likert"].where(reads.index % 5 != 0, 7.0))
    res = study_analyse(seven)
    assert set(res.reader_arms[0].likert.counts) == {str(v) for v in range(1, 8)}
    with pytest.raises(ValueError, match="likert"):
        study_analyse(reads.assign(likert=8.0))
    with pytest.raises(ValueError, match="likert"):
        study_analyse(seven, likert_scale=(1, 2, 3, 4, 5))
