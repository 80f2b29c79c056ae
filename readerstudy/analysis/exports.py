"""Export writers for a frozen analysis: each is a pure function of the reads frame and/or the
results dict of ``readerstudy.analysis.services.analysis_run`` and returns bytes.

No Django here. Every export names the snapshot hash (a column, a header line, a sheet, or a
top-level key) and writes dates in ISO 8601 (UTC).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from readerstudy.analysis.figures import FIGURES, figure_render
from readerstudy.analysis.frames import READ_FIELDS, truth_series
from readerstudy.analysis.tables import analysis_tables


@dataclass(frozen=True)
class ExportFormat:
    key: str
    title: str
    extension: str
    content_type: str
    needs_reads: bool


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat("reads-csv", "Reads (CSV, one row per read)", "csv", "text/csv", True),
        ExportFormat(
            "workbook-xlsx",
            "Workbook (XLSX, one sheet per table)",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            True,
        ),
        ExportFormat("results-json", "All results (JSON)", "json", "application/json", False),
        ExportFormat("imrmc", "iMRMC input (.imrmc)", "imrmc", "text/plain", True),
        ExportFormat(
            "mrmc-long-csv",
            "Long format for MRMCaov / RJafroc (CSV)",
            "csv",
            "text/csv",
            True,
        ),
        ExportFormat(
            "figures-zip", "All figures (SVG + PNG, ZIP)", "zip", "application/zip", False
        ),
    )
}


def _iso(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").isoformat() if value.tzinfo else value.isoformat()
    return str(value)


# OWASP CSV injection: a spreadsheet runs a cell that starts with one of these as a formula
# (a reader's comment "=HYPERLINK(...)" would become a live link in the coordinator's Excel).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """``value`` for a CSV cell: text that a spreadsheet would read as a formula gets a leading
    apostrophe (OWASP); numbers and other text are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _xlsx_value(sheet: Any, value: Any) -> Any:
    """An XLSX cell: text is always stored as text, never as a formula (openpyxl makes any string
    starting with "=" a formula), and carries the same apostrophe as the CSV."""
    from openpyxl.cell import WriteOnlyCell

    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value=spreadsheet_text(value))
    cell.data_type = "s"
    return cell


def _cell(value: Any) -> Any:
    """CSV/XLSX cell: empty for missing, ISO 8601 for timestamps, plain Python scalars otherwise."""
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def _reads_for_file(reads: pd.DataFrame) -> pd.DataFrame:
    """The READ_FIELDS columns with timestamps as ISO 8601 strings (UTC offset written out)."""
    frame = reads[list(READ_FIELDS)].copy()
    for name in ("started_at", "submitted_at"):
        frame[name] = [_iso(v) for v in frame[name]]
    return frame


def export_reads_csv(reads: pd.DataFrame, *, sha256: str) -> bytes:
    """One row per read, columns READ_FIELDS then ``snapshot_sha256`` on every row."""
    frame = _reads_for_file(reads)
    frame["snapshot_sha256"] = sha256
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(spreadsheet_text)
    # BOM-less UTF-8: R's read.csv and pandas read it as is; Excel users import it explicitly.
    # Text is always quoted: the csv module leaves a lone CR unquoted with a "\n" terminator, and
    # a comment holding one would split its row.
    text = frame.to_csv(index=False, lineterminator="\n", na_rep="", quoting=csv.QUOTE_NONNUMERIC)
    return text.encode("utf-8")


def export_results_json(results: Mapping[str, Any]) -> bytes:
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _sheet_title(title: str, used: set[str]) -> str:
    # Excel sheet names: at most 31 characters, none of []:*?/\ .
    cleaned = "".join("-" if ch in "[]:*?/\\" else ch for ch in title)[:31]
    name, n = cleaned, 2
    while name in used:
        suffix = f" ({n})"
        name = cleaned[: 31 - len(suffix)] + suffix
        n += 1
    used.add(name)
    return name


def export_workbook_xlsx(results: Mapping[str, Any], reads: pd.DataFrame) -> bytes:
    """An "About" sheet naming the snapshot, one sheet per results table, and the reads."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    snapshot = results["snapshot"]
    # Write-only mode streams rows: a 20,000-read study is written in a fraction of the time.
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(sheet: Any, names: list[str]) -> None:
        cells = []
        for name in names:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)

    about = workbook.create_sheet("About")
    about.column_dimensions["A"].width = 22
    about.column_dimensions["B"].width = 70
    about_rows: list[tuple[str, Any]] = [
        ("study", snapshot["study"]["name"]),
        ("snapshot_sha256", snapshot["sha256"]),
        ("snapshot_created_at", snapshot["created_at"]),
        ("computed_at", results["computed_at"]),
        ("reference_standard", results["reference_label"]),
        (
            "synthetic",
            "yes — SYNTHETIC DATA, not clinical evidence" if results["synthetic"] else "no",
        ),
        ("readers", len(results["readers"])),
        ("arms", ", ".join(results["arms"])),
        ("reads", snapshot["n_reads"]),
    ]
    for key, value in about_rows:
        label = WriteOnlyCell(about, value=key)
        label.font = bold
        about.append([label, _xlsx_value(about, value)])
    used = {"About"}
    tables = [*analysis_tables(results), ("Reads", _reads_for_file(reads))]
    for title, frame in tables:
        sheet = workbook.create_sheet(_sheet_title(title, used))
        sheet.freeze_panes = "A2"
        header(sheet, [str(spreadsheet_text(str(c))) for c in frame.columns])
        for row in frame.itertuples(index=False):
            sheet.append([_xlsx_value(sheet, _cell(v)) for v in row])
    workbook.properties.title = f"{snapshot['study']['name']} analysis"
    workbook.properties.subject = f"snapshot sha256 {snapshot['sha256']}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _mrmc_table(reads: pd.DataFrame, *, reference: str) -> tuple[pd.DataFrame, list[str]]:
    """Reads with a known truth, with integer case and reader ids (RJafroc requires integer cases)."""
    frame = reads.copy()
    frame["truth"] = truth_series(frame, reference=reference)
    notes: list[str] = []
    unknown = frame["truth"].isna()
    if unknown.any():
        n_cases = frame.loc[unknown, "case"].nunique()
        notes.append(f"{n_cases} case(s) left out: reference standard unknown")
    no_score = frame["pirads"].isna()
    if no_score.any():
        notes.append(f"{int(no_score.sum())} read(s) left out: no PI-RADS score")
    frame = frame[~unknown & ~no_score]
    cases = sorted(frame["case"].unique().tolist())
    readers = sorted(frame["reader"].unique().tolist())
    frame = frame.assign(
        case_id=frame["case"].map({c: i + 1 for i, c in enumerate(cases)}).astype(int),
        reader_id=frame["reader"].map({r: i + 1 for i, r in enumerate(readers)}).astype(int),
    )
    return frame.sort_values(["reader_id", "arm", "case_id"]), notes


def export_imrmc(reads: pd.DataFrame, *, results: Mapping[str, Any]) -> bytes:
    """The iMRMC input format (also read by RJafroc ``DfReadDataFile(format = "iMRMC")``).

    Free-text header lines, then ``NR:``, ``N0:``, ``N1:``, ``NM:``, then ``BEGIN DATA:`` and rows
    ``reader,case,modality,score``; truth rows have reader -1 and modality 0. Reader and case ids
    are integers (RJafroc parses them as numbers); the header maps them back to pseudonyms and codes.
    The score is the PI-RADS-like rating (higher = more suspicious).
    """
    reference = results["reference_standard"]
    frame, notes = _mrmc_table(reads, reference=reference)
    truth = frame.drop_duplicates("case_id")[["case_id", "case", "truth"]]
    snapshot = results["snapshot"]
    lines = [
        f"mritrus reader study {snapshot['study']['name']!r}: PI-RADS-like scores",
        f"snapshot sha256 = {snapshot['sha256']}",
        f"snapshot created = {snapshot['created_at']}",
        f"reference standard = {results['reference_label']}",
    ]
    if results["synthetic"]:
        lines.append("SYNTHETIC DATA - not clinical evidence")
    lines += [f"note = {n}" for n in notes]
    readers = frame.drop_duplicates("reader_id")[["reader_id", "reader", "reader_level"]]
    lines.append(
        "readers = "
        + "; ".join(f"{r.reader_id} {r.reader} ({r.reader_level})" for r in readers.itertuples())
    )
    lines.append("cases = " + "; ".join(f"{r.case_id} {r.case}" for r in truth.itertuples()))
    lines += [
        "",
        f"NR: {len(readers)}",
        f"N0: {int((truth['truth'] == 0).sum())}",
        f"N1: {int((truth['truth'] == 1).sum())}",
        f"NM: {frame['arm'].nunique()}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{r.case_id},0,{int(r.truth)}" for r in truth.itertuples()]
    lines += [f"{r.reader_id},{r.case_id},{r.arm},{int(r.pirads)}" for r in frame.itertuples()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def export_mrmc_long_csv(reads: pd.DataFrame, *, results: Mapping[str, Any]) -> bytes:
    """Long format: ``reader,treatment,case,truth,rating`` (the first five columns, in this order,
    are what RJafroc's ``DfReadDataFile(format = "MRMC")`` and MRMCaov's ``mrmc()`` formula read),
    then case code, reader level and the snapshot hash."""
    frame, _ = _mrmc_table(reads, reference=results["reference_standard"])
    sha = results["snapshot"]["sha256"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "reader",
            "treatment",
            "case",
            "truth",
            "rating",
            "case_code",
            "reader_level",
            "snapshot_sha256",
        ]
    )
    for r in frame.itertuples():
        writer.writerow(
            [
                spreadsheet_text(v)
                for v in (
                    r.reader,
                    r.arm,
                    r.case_id,
                    int(r.truth),
                    int(r.pirads),
                    r.case,
                    r.reader_level,
                    sha,
                )
            ]
        )
    return buffer.getvalue().encode("utf-8")


def export_figures_zip(results: Mapping[str, Any]) -> bytes:
    """Every figure as SVG and PNG, with a README naming the snapshot, in one ZIP."""
    import zipfile

    sha = results["snapshot"]["sha256"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        lines = [
            f"Figures of {results['snapshot']['study']['name']!r}",
            f"snapshot sha256: {sha}",
            f"snapshot created: {results['snapshot']['created_at']}",
            f"computed: {results['computed_at']}",
            f"reference standard: {results['reference_label']}",
        ]
        if results["synthetic"]:
            lines.append("SYNTHETIC DATA - not clinical evidence")
        for key, spec in FIGURES.items():
            lines.append(f"{key}.svg / {key}.png: {spec.title}")
            for fmt in ("svg", "png"):
                archive.writestr(f"{key}.{fmt}", figure_render(key, results, fmt=fmt))
        archive.writestr("README.txt", "\n".join(lines) + "\n")
    return buffer.getvalue()


ExportBuilder = Callable[[Mapping[str, Any], pd.DataFrame], bytes]

EXPORT_BUILDERS: dict[str, ExportBuilder] = {
    "reads-csv": lambda results, reads: export_reads_csv(
        reads, sha256=results["snapshot"]["sha256"]
    ),
    "workbook-xlsx": lambda results, reads: export_workbook_xlsx(results, reads),
    "results-json": lambda results, reads: export_results_json(results),
    "imrmc": lambda results, reads: export_imrmc(reads, results=results),
    "mrmc-long-csv": lambda results, reads: export_mrmc_long_csv(reads, results=results),
    "figures-zip": lambda results, reads: export_figures_zip(results),
}


def export_filename(*, key: str, study_slug: str, sha256: str) -> str:
    fmt = EXPORT_FORMATS[key]
    return f"{study_slug}-{key}-{sha256[:12]}.{fmt.extension}"
