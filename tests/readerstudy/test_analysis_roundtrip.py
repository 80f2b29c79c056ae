"""Property tests (hypothesis, SYNTHETIC payloads, no database): any valid snapshot payload, with
missing reads and degenerate references, analyses without crashing, and every export gives back
exactly the scores it was given."""

from __future__ import annotations

import io
import json

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readerstudy.analysis.exports import export_imrmc, export_mrmc_long_csv, export_reads_csv
from readerstudy.analysis.frames import payload_sha256, reads_frame
from readerstudy.analysis.results import analysis_results_build
from tests.readerstudy.test_analysis_exports import parse_imrmc

ARMS = ("original", "registered")


@st.composite
def payloads(draw: st.DrawFn) -> dict:
    n_readers = draw(st.integers(1, 3))
    n_cases = draw(st.integers(2, 8))
    reference = draw(st.sampled_from(["pirads", "biopsy"]))
    cases = [
        {
            "case_code": f"C{i}",
            "case_id": i + 1,
            "synthetic": True,
            "reference_pirads": draw(st.integers(1, 5)),
            "cspca": draw(st.sampled_from([True, False, None])),
            "isup_grade": draw(st.sampled_from([None, 0, 1, 2, 3, 4, 5])),
            "gleason": "",
            "lesion_side": draw(st.sampled_from(["", "left", "right", "bilateral", "none"])),
        }
        for i in range(n_cases)
    ]
    reads = []
    for r in range(n_readers):
        for s, arm in enumerate(ARMS):
            for c in cases:
                if draw(st.integers(0, 9)) == 0:
                    continue  # a missing read
                reads.append(
                    {
                        **c,
                        "reader": f"R{r + 1}",
                        "reader_level": "junior" if r % 2 == 0 else "senior",
                        "years_experience": None,
                        "arm": arm,
                        "session": s + 1,
                        "position": c["case_id"],
                        "reading_code": f"K{r}{s}{c['case_id']}",
                        "pirads": draw(st.integers(1, 5)),
                        "zone": "pz",
                        "side": draw(st.sampled_from(["left", "right", "bilateral", "none"])),
                        "likert": draw(st.integers(1, 7)),
                        "comment": draw(st.sampled_from(["", 'a, "quoted"\ncomment', "ünïcode"])),
                        "active_seconds": draw(st.floats(0, 600, allow_nan=False)),
                        "started_at": "2026-01-01T10:00:00+00:00",
                        "submitted_at": "2026-01-01T10:05:00.123456+00:00",
                    }
                )
    if not reads:
        reads.append({**reads_template(cases[0]), "reader": "R1", "arm": "original"})
    study = {
        "id": 1,
        "name": "Property (SYNTHETIC)",
        "status": "locked",
        "reference_standard": reference,
        "seed": 0,
        "washout_days": 0,
        "arms": list(ARMS),
    }
    return {"study": study, "reads": reads}


def reads_template(case: dict) -> dict:
    return {
        **case,
        "reader_level": "junior",
        "years_experience": None,
        "session": 1,
        "position": 1,
        "reading_code": "ONLY",
        "pirads": 3,
        "zone": "pz",
        "side": "left",
        "likert": 4,
        "comment": "",
        "active_seconds": 1.0,
        "started_at": "2026-01-01T10:00:00+00:00",
        "submitted_at": "2026-01-01T10:05:00+00:00",
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_any_payload_analyses_and_round_trips(payload: dict) -> None:
    sha = payload_sha256(payload)
    results = analysis_results_build(
        payload=payload, sha256=sha, created_at="2026-01-01T11:00:00+00:00", synthetic=True
    )
    json.dumps(results, allow_nan=False)
    reads = reads_frame(payload)
    assert results["snapshot"]["n_reads"] == len(payload["reads"]) == len(reads)

    back = pd.read_csv(io.BytesIO(export_reads_csv(reads, sha256=sha)), keep_default_na=False)
    assert len(back) == len(reads)
    original = {(r["reader"], r["arm"], r["case_code"]): r for r in payload["reads"]}
    for row in back.itertuples():
        source = original[(row.reader, row.arm, row.case)]
        assert row.pirads == source["pirads"] and row.likert == source["likert"]
        assert row.comment == source["comment"]
        assert abs(row.active_seconds - source["active_seconds"]) < 1e-9
        assert pd.Timestamp(row.submitted_at) == pd.Timestamp(source["submitted_at"])

    # The MRMC formats keep exactly the reads whose truth is known under the reference standard.
    reference = payload["study"]["reference_standard"]

    def known(r: dict) -> bool:
        return reference == "pirads" or r["cspca"] is not None

    kept = sorted(
        (r["reader"], r["arm"], r["case_code"], r["pirads"]) for r in payload["reads"] if known(r)
    )
    long = pd.read_csv(io.BytesIO(export_mrmc_long_csv(reads, results=results)))
    assert sorted(zip(long["reader"], long["treatment"], long["case_code"], long["rating"])) == kept
    if kept:
        parsed = parse_imrmc(export_imrmc(reads, results=results).decode())
        assert len(parsed["scores"]) == len(kept)
        assert parsed["header"]["N0"] + parsed["header"]["N1"] == len(parsed["truth"])
