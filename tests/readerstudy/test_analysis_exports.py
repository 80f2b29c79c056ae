"""Snapshot → results → exports and figures, parsed back (SYNTHETIC reads, see analysis_study)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import openpyxl
import pandas as pd
import pytest

from readerstudy.analysis.exports import (
    EXPORT_BUILDERS,
    export_figures_zip,
    export_imrmc,
    export_mrmc_long_csv,
    export_reads_csv,
    export_results_json,
    export_workbook_xlsx,
)
from readerstudy.analysis.figures import FIGURES, SYNTHETIC_LABEL, figure_render
from readerstudy.analysis.frames import payload_sha256, reads_frame
from readerstudy.analysis.services import (
    SnapshotIntegrityError,
    analysis_run,
    analysis_snapshot_build,
)
from readerstudy.models import Read, Snapshot
from tests.readerstudy.analysis_study import analysis_study_build


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # noqa: ANN001, ANN202
    # Users are made per test; the default PBKDF2 would dominate the run time on 2 cores.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen(db, coordinator):  # noqa: ANN001, ANN201
    study = analysis_study_build(coordinator=coordinator, skip={(0, "registered", 3)})
    snapshot = analysis_snapshot_build(study=study, user=coordinator)
    return study, snapshot, analysis_run(snapshot=snapshot), reads_frame(snapshot.payload)


def parse_imrmc(text: str) -> dict:
    """Parse like RJafroc's ReadImrmc: the four N lines, BEGIN DATA:, then 4-field rows."""
    lines = [line.strip() for line in text.splitlines()]
    header = {}
    i = 0
    while len(header) < 4:
        key = lines[i].split(":", 1)[0]
        if key in ("N0", "N1", "NR", "NM"):
            header[key] = int(lines[i].split(":", 1)[1])
        i += 1
    while lines[i] != "BEGIN DATA:":
        i += 1
    rows = [line.split(",") for line in lines[i + 1 :] if line]
    assert all(len(r) == 4 for r in rows)
    truth = {int(r[1]): int(r[3]) for r in rows if r[0] == "-1"}
    scores = [(int(r[0]), int(r[1]), r[2], float(r[3])) for r in rows if r[0] != "-1"]
    return {"header": header, "truth": truth, "scores": scores, "preamble": lines[:i]}


def test_snapshot_hash_is_the_canonical_payload_hash(frozen) -> None:  # noqa: ANN001
    _, snapshot, results, reads = frozen
    assert payload_sha256(snapshot.payload) == snapshot.sha256
    assert results["snapshot"]["sha256"] == snapshot.sha256
    # 2 readers x 2 arms x 24 cases, one left as a draft: drafts are not frozen.
    assert len(reads) == 95
    assert results["snapshot"]["n_reads"] == 95


def test_tampered_snapshot_is_refused(frozen) -> None:  # noqa: ANN001
    _, snapshot, _, _ = frozen
    payload = snapshot.payload
    payload["reads"][0]["pirads"] = 5 if payload["reads"][0]["pirads"] != 5 else 4
    Snapshot.objects.filter(pk=snapshot.pk).update(payload=payload)
    snapshot.refresh_from_db()
    with pytest.raises(SnapshotIntegrityError):
        analysis_run(snapshot=snapshot)


def test_results_cover_the_page_and_name_the_reference(frozen) -> None:  # noqa: ANN001
    _, _, results, _ = frozen
    assert results["reference_standard"] == "pirads"
    assert "PI-RADS" in results["reference_label"]
    assert results["synthetic"] is True
    assert {(r["reader"], r["arm"]) for r in results["per_reader_arm"]} == {
        ("R1", "original"),
        ("R1", "registered"),
        ("R2", "original"),
        ("R2", "registered"),
    }
    families = {t["family"] for t in results["tests"]}
    assert {"DeLong (paired AUC)", "Wilcoxon signed-rank", "Mann–Whitney U"} <= families
    assert any(t["family"].startswith("MRMC") for t in results["tests"])
    assert results["kappa"] and results["mrmc"]
    # The draft read is missing data: the notes say so, and the paired tests dropped it.
    assert any("R1" in note and "registered" in note for note in results["missing"])
    delong_r1 = next(
        t for t in results["tests"] if t["family"].startswith("DeLong") and t["reader"] == "R1"
    )
    assert delong_r1["n_dropped"] == 1
    json.dumps(results, allow_nan=False)


def test_reads_csv_round_trip(frozen) -> None:  # noqa: ANN001
    study, snapshot, results, reads = frozen
    data = export_reads_csv(reads, sha256=snapshot.sha256)
    back = pd.read_csv(io.BytesIO(data))
    assert len(back) == len(reads)
    assert set(back["snapshot_sha256"]) == {snapshot.sha256}
    assert set(back["study"]) == {study.name}
    assert set(back["reader"]) == {"R1", "R2"}
    assert {"reading_code", "case", "arm", "session", "zone", "side", "active_seconds"} <= set(
        back.columns
    )
    first = reads.iloc[0]
    row = back[(back["reader"] == first["reader"]) & (back["case"] == first["case"])].iloc[0]
    assert row["pirads"] == first["pirads"]
    # ISO 8601 with an explicit UTC offset.
    parsed = pd.to_datetime(back["submitted_at"], format="ISO8601", utc=True)
    assert parsed.notna().all()
    assert back["submitted_at"].str.endswith("+00:00").all()


def test_workbook_has_one_sheet_per_table_and_names_the_snapshot(frozen) -> None:  # noqa: ANN001
    _, snapshot, results, reads = frozen
    wb = openpyxl.load_workbook(io.BytesIO(export_workbook_xlsx(results, reads)))
    assert wb.sheetnames == [
        "About",
        "Per reader and arm",
        "Tests",
        "Kappa",
        "MRMC",
        "Lesion side",
        "Localisation",
        "Missing data",
        "Reads",
    ]
    about = {row[0]: row[1] for row in wb["About"].iter_rows(values_only=True)}
    assert about["snapshot_sha256"] == snapshot.sha256
    assert about["synthetic"].startswith("yes")
    per = list(wb["Per reader and arm"].iter_rows(values_only=True))
    header = per[0]
    auc_col = header.index("auc")
    expected = {(r["reader"], r["arm"]): r["auc"] for r in results["per_reader_arm"]}
    for row in per[1:]:
        assert row[auc_col] == pytest.approx(expected[(row[0], row[2])])
    assert wb["Reads"].max_row == len(reads) + 1


def test_results_json_round_trip(frozen) -> None:  # noqa: ANN001
    _, snapshot, results, _ = frozen
    back = json.loads(export_results_json(results))
    assert back == results
    assert back["snapshot"]["sha256"] == snapshot.sha256


def test_imrmc_parses_back_like_rjafroc(frozen) -> None:  # noqa: ANN001
    _, snapshot, results, reads = frozen
    parsed = parse_imrmc(export_imrmc(reads, results=results).decode())
    h = parsed["header"]
    assert h["NR"] == 2 and h["NM"] == 2
    assert h["N0"] + h["N1"] == 24 == len(parsed["truth"])
    assert sum(parsed["truth"].values()) == h["N1"]
    assert len(parsed["scores"]) == len(reads)
    assert any(snapshot.sha256 in line for line in parsed["preamble"])
    assert any("SYNTHETIC" in line for line in parsed["preamble"])
    # Truth follows the reference standard: clinical PI-RADS >= 4.
    codes = dict(
        item.split(" ", 1)
        for line in parsed["preamble"]
        if line.startswith("cases = ")
        for item in line.removeprefix("cases = ").split("; ")
    )
    ref = reads.drop_duplicates("case").set_index("case")["reference_pirads"]
    for case_id, truth in parsed["truth"].items():
        assert truth == int(ref[codes[str(case_id)]] >= 4)


def test_mrmc_long_csv_has_the_mrmcaov_columns(frozen) -> None:  # noqa: ANN001
    _, snapshot, results, reads = frozen
    rows = list(csv.DictReader(io.StringIO(export_mrmc_long_csv(reads, results=results).decode())))
    assert list(rows[0])[:5] == ["reader", "treatment", "case", "truth", "rating"]
    assert len(rows) == len(reads)
    assert {r["treatment"] for r in rows} == {"original", "registered"}
    assert all(r["case"].isdigit() and r["truth"] in ("0", "1") for r in rows)
    assert {r["snapshot_sha256"] for r in rows} == {snapshot.sha256}
    # The same case has the same integer id and truth in every row.
    by_code: dict[str, tuple[str, str]] = {}
    for r in rows:
        assert by_code.setdefault(r["case_code"], (r["case"], r["truth"])) == (
            r["case"],
            r["truth"],
        )


def test_biopsy_reference_leaves_unknown_cases_out(db, coordinator) -> None:  # noqa: ANN001
    study = analysis_study_build(
        name="Biopsy study", coordinator=coordinator, reference_standard="biopsy"
    )
    snapshot = analysis_snapshot_build(study=study, user=coordinator)
    results = analysis_run(snapshot=snapshot)
    reads = reads_frame(snapshot.payload)
    assert results["reference_standard"] == "biopsy"
    assert "biopsy" in results["reference_label"].lower()
    unknown = reads[reads["cspca"].isna()]["case"].nunique()
    assert unknown > 0
    parsed = parse_imrmc(export_imrmc(reads, results=results).decode())
    assert len(parsed["truth"]) == 24 - unknown
    assert any("left out" in line for line in parsed["preamble"])


@pytest.mark.parametrize("key", sorted(FIGURES))
def test_figures_render_as_svg_and_png(frozen, key: str) -> None:  # noqa: ANN001
    _, snapshot, results, _ = frozen
    svg = figure_render(key, results, fmt="svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = svg.decode()
    assert SYNTHETIC_LABEL in text
    assert snapshot.sha256[:12] in text
    png = figure_render(key, results, fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 5000


def test_figures_of_real_data_carry_no_synthetic_label(db, coordinator) -> None:  # noqa: ANN001
    study = analysis_study_build(name="Not synthetic", coordinator=coordinator, synthetic=False)
    results = analysis_run(snapshot=analysis_snapshot_build(study=study, user=coordinator))
    assert results["synthetic"] is False
    assert "SYNTHETIC" not in figure_render("roc", results, fmt="svg").decode()


def test_figures_zip_holds_every_figure_and_names_the_snapshot(frozen) -> None:  # noqa: ANN001
    import zipfile

    _, snapshot, results, _ = frozen
    archive = zipfile.ZipFile(io.BytesIO(export_figures_zip(results)))
    names = set(archive.namelist())
    assert names == {"README.txt"} | {f"{k}.{f}" for k in FIGURES for f in ("svg", "png")}
    readme = archive.read("README.txt").decode()
    assert snapshot.sha256 in readme and "SYNTHETIC" in readme
    for key in FIGURES:
        assert archive.read(f"{key}.png")[:4] == b"\x89PNG"
        assert ET.fromstring(archive.read(f"{key}.svg")).tag.endswith("svg")


def test_every_export_builder_runs(frozen) -> None:  # noqa: ANN001
    _, _, results, reads = frozen
    for key, build in EXPORT_BUILDERS.items():
        assert build(results, reads), key


def test_analysis_likert_seven_point(db, coordinator) -> None:  # noqa: ANN001
    study = analysis_study_build(name="Seven-point", coordinator=coordinator, likert_max=7, seed=3)
    likerts = Read.objects.filter(assignment__study=study).values_list("likert", flat=True)
    assert max(v for v in likerts if v is not None) >= 6
    results = analysis_run(snapshot=analysis_snapshot_build(study=study, user=coordinator))
    means = [r["likert_mean"] for r in results["per_reader_arm"]]
    assert all(m is not None and 1 <= m <= 7 for m in means)
    assert any(
        max(p[a] for a in results["likert_pairs"]["arms"]) >= 6
        for p in results["likert_pairs"]["rows"]
    )
