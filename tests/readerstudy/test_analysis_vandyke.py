"""End to end on the Van Dyke MRMC data (real ratings from ../shared/data/mrmc-vandyke):
payload → analysis results → iMRMC / long exports → parsed back → the same OR-DBM MRMC 2.5 figures.

The Van Dyke ratings are 1–5 confidence scores of 5 readers × 2 modalities × 114 cases, so they
travel through the PI-RADS column; truth becomes reference PI-RADS 5 (positive) or 1 (negative).
Modality 0 is put in the ``original`` arm and modality 1 in ``registered`` (labels only).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from readerstudy.analysis.exports import export_imrmc, export_mrmc_long_csv, export_workbook_xlsx
from readerstudy.analysis.frames import payload_sha256, reads_frame
from readerstudy.analysis.results import analysis_results_build
from readerstudy.stats import mrmc_or
from tests.readerstudy.test_analysis_exports import parse_imrmc

ARMS = {0: "original", 1: "registered"}


@pytest.fixture(scope="module")
def vandyke_payload(shared_data) -> dict:  # noqa: ANN001
    data = pd.read_csv(shared_data / "mrmc-vandyke" / "vandyke.csv")
    reads = [
        {
            "reader": f"R{int(r.reader) + 1}",
            "reader_level": "senior",
            "years_experience": None,
            "arm": ARMS[int(r.modality)],
            "session": int(r.modality) + 1,
            "position": int(r.case),
            "reading_code": f"VD{int(r.reader)}{int(r.modality)}{int(r.case):03d}",
            "case_id": int(r.case),
            "case_code": f"VD{int(r.case):03d}",
            "synthetic": False,
            "reference_pirads": 5 if r.truth == 1 else 1,
            "cspca": None,
            "isup_grade": None,
            "gleason": "",
            "lesion_side": "",
            "pirads": int(r.rating),
            "zone": "",
            "side": "",
            "likert": None,
            "comment": "",
            "active_seconds": 0.0,
            "started_at": "2026-01-01T00:00:00+00:00",
            "submitted_at": "2026-01-01T00:00:00+00:00",
        }
        for r in data.itertuples()
    ]
    return {
        "study": {
            "id": 1,
            "name": "Van Dyke",
            "status": "locked",
            "reference_standard": "pirads",
            "seed": 0,
            "washout_days": 0,
            "arms": ["original", "registered"],
        },
        "reads": reads,
    }


@pytest.fixture(scope="module")
def vandyke(vandyke_payload) -> tuple[dict, pd.DataFrame]:  # noqa: ANN001
    results = analysis_results_build(
        payload=vandyke_payload,
        sha256=payload_sha256(vandyke_payload),
        created_at="2026-01-01T00:00:00+00:00",
        synthetic=False,
    )
    return results, reads_frame(vandyke_payload)


def _rrrc_jackknife(results: dict) -> dict:
    return next(
        m
        for m in results["mrmc"]
        if m["analysis"] == "random readers, random cases" and "jackknife" in m["covariance"]
    )


def test_results_reproduce_or_dbm(vandyke) -> None:  # noqa: ANN001
    results, _ = vandyke
    m = _rrrc_jackknife(results)
    assert m["arms"] == ["original", "registered"]
    assert m["auc"] == pytest.approx([0.89703704, 0.94083736], abs=1e-7)
    assert m["difference"] == pytest.approx(0.04380032, abs=1e-7)
    assert m["statistic_name"] == "F"
    assert m["statistic"] == pytest.approx(4.46, abs=5e-3)
    assert m["df_den"] == pytest.approx(15.26, abs=5e-3)
    assert m["p"] == pytest.approx(0.0517, abs=5e-4)
    # The difference is registered − original, so OR-DBM's (−0.08796, 0.00036) flips sign.
    assert m["ci"] == pytest.approx([-0.00036, 0.08796], abs=1e-5)
    fixed = next(
        x
        for x in results["mrmc"]
        if x["analysis"] == "fixed readers, random cases" and "jackknife" in x["covariance"]
    )
    assert fixed["statistic"] == pytest.approx(5.47595, abs=1e-4)
    assert fixed["p"] == pytest.approx(0.0193, abs=5e-5)


def _mrmc_from_long(frame: pd.DataFrame) -> dict:
    arms = ["registered", "original"]
    readers = sorted(frame["reader"].unique())
    cases = sorted(frame["case"].unique())
    cube = np.full((2, len(readers), len(cases)), np.nan)
    index = {c: i for i, c in enumerate(cases)}
    for r in frame.itertuples():
        cube[arms.index(r.treatment), readers.index(r.reader), index[r.case]] = r.rating
    truth = frame.drop_duplicates("case").set_index("case")["truth"].reindex(cases).to_numpy()
    result = mrmc_or(cube, truth, covariance="jackknife", treatments=arms, readers=readers)
    return result.to_dict()["random_readers_random_cases"]


def test_long_export_parsed_back_gives_the_same_mrmc(vandyke) -> None:  # noqa: ANN001
    results, reads = vandyke
    long = pd.read_csv(io.BytesIO(export_mrmc_long_csv(reads, results=results)))
    assert len(long) == 1140
    rrrc = _mrmc_from_long(long)
    assert rrrc["statistic"] == pytest.approx(_rrrc_jackknife(results)["statistic"], rel=1e-12)
    assert rrrc["df_denominator"] == pytest.approx(15.26, abs=5e-3)


def test_imrmc_export_parsed_back_gives_the_same_mrmc(vandyke) -> None:  # noqa: ANN001
    results, reads = vandyke
    parsed = parse_imrmc(export_imrmc(reads, results=results).decode())
    assert parsed["header"] == {"NR": 5, "N0": 69, "N1": 45, "NM": 2}
    frame = pd.DataFrame(parsed["scores"], columns=["reader", "case", "treatment", "rating"])
    frame["truth"] = frame["case"].map(parsed["truth"])
    rrrc = _mrmc_from_long(frame)
    assert rrrc["statistic"] == pytest.approx(4.46, abs=5e-3)
    assert rrrc["p_value"] == pytest.approx(0.0517, abs=5e-4)


def test_workbook_of_vandyke_has_the_mrmc_sheet(vandyke) -> None:  # noqa: ANN001
    import openpyxl

    results, reads = vandyke
    wb = openpyxl.load_workbook(io.BytesIO(export_workbook_xlsx(results, reads)))
    rows = list(wb["MRMC"].iter_rows(values_only=True))
    header, first = rows[0], rows[1]
    assert first[header.index("analysis")] == "random readers, random cases"
    assert first[header.index("statistic")] == pytest.approx(4.46, abs=5e-3)
    assert not any("undefined" in str(v) for v in first)
