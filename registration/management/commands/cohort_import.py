"""manage.py cohort_import PATH [--cohort NAME]: import a manifest or DICOM-only folder/zip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registration.importing.run import cohort_import
from registration.models import ImportRun


def report_lines(run: ImportRun) -> list[str]:
    lines = [
        f"import #{run.pk} of {run.source_name}: {run.status}; "
        f"{run.accepted} accepted, {run.rejected} rejected, {run.skipped} skipped"
        + (f" into cohort '{run.cohort.name}'" if run.cohort else "")
    ]
    if run.error:
        lines.append(f"  refused: {run.error}")
    for case in run.report.get("cases", []):
        where = f"row {case['row']}: " if case.get("row") else ""
        lines.append(f"  {where}{case.get('case_code') or '?'}: {case['status']}")
        lines += [f"      {r}" for r in case.get("reasons", [])]
        lines += [f"      note: {n}" for n in case.get("notes", [])]
        lines += [f"      series: {s}" for s in case.get("series", [])]
    lines += [f"  note: {n}" for n in run.report.get("notes", [])]
    return lines


class Command(BaseCommand):
    help = "Import a cohort (folder or zip with manifest.csv, or DICOM files only) and print the report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--cohort", default=None, help='cohort name (default: a neutral "Cohort of import N")'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        from tqdm import tqdm

        # A bar on a terminal (disable=None: none in logs); total known once the input is read.
        bar = tqdm(desc="cases", unit="case", disable=None, file=self.stderr._out)

        def progress(done: int, total: int, entry: dict[str, Any]) -> None:
            bar.total = total
            bar.set_postfix_str(f"{entry.get('case_code') or '?'}: {entry['status']}")
            bar.update(done - bar.n)

        try:
            run = cohort_import(path=path, cohort_name=options["cohort"], progress=progress)
        finally:
            bar.close()
        for line in report_lines(run):
            self.stdout.write(line)
        if run.status == ImportRun.Status.FAILED:
            # The report above says what was kept (a full disk keeps the cases stored before).
            raise CommandError(run.error or "the import failed")
        if run.rejected and not run.accepted and not run.skipped:
            raise CommandError("no case could be imported")
