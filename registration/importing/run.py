"""Cohort import runs: one `ImportRun` per input, its report, and failure that leaves no trace.

`cohort_import` is the one entry point (the upload view and API through `cohort_import_upload`,
``manage.py cohort_import``, DICOMweb STOW-RS, the demo): it opens the input with
`registration.importing.archive`, lists its cases with `.manifest` or `.dicom_only` and stores
each with `registration.services.case_create_from_input`. Whatever stops it (a refused input, a full disk,
an unexpected error), the run ends ``failed`` with a message for people, the temp folders are
removed, and a cohort created for the run and left empty is deleted: a run never stays
``running``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from registration.importing.archive import input_open
from registration.importing.cases import (
    MANIFEST_NAME,
    CaseInputError,
    CaseItem,
    ImportInputError,
    default_cohort_name,
)
from registration.importing.dicom_only import dicom_only_cases
from registration.importing.manifest import manifest_cases
from registration.models import Case, Cohort, ImportRun
from registration.series import SeriesInputError
from registration.services import case_create_from_input
from registration.storage import tmp_folder

logger = logging.getLogger(__name__)

# progress(done, total, entry): called after each case (the command's progress bar).
ImportProgress = Callable[[int, int, dict[str, Any]], None]

# Start of ImportRun.error when the storage filled up (the API answers 507 for it).
NO_SPACE = "no space left on the server's storage"


def storage_full(exc: BaseException) -> bool:
    """ENOSPC or a quota: the one OSError that is the site's problem, not the input's."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _run_finish(
    *, run: ImportRun, report: dict[str, Any], cohort: Cohort | None, cohort_created: bool
) -> ImportRun:
    if cohort_created and cohort is not None and not cohort.cases.exists():
        # Created for this import, but no case was stored: leave no trace.
        cohort.delete()
        run.cohort = None
    statuses = [c["status"] for c in report["cases"]]
    run.accepted = statuses.count("accepted")
    run.rejected = statuses.count("rejected")
    run.skipped = statuses.count("skipped")
    if run.status == ImportRun.Status.RUNNING:
        run.status = ImportRun.Status.DONE
        if not report["cases"]:
            report["notes"].append("the input holds no case")
    run.report = report
    run.finished_at = timezone.now()
    run.save()
    return run


def cases_iterate(*, root: Path, salt: str, notes: list[str]) -> Iterator[CaseItem]:
    """The cases of an opened input: its manifest's rows, else its DICOM files by patient."""
    if (root / MANIFEST_NAME).is_file():
        yield from manifest_cases(root=root, notes=notes)
    else:
        yield from dicom_only_cases(root=root, salt=salt, notes=notes)


def _case_import(
    *, item: CaseItem, entry: dict[str, Any], cohort: Cohort | None, name: str, run: ImportRun
) -> tuple[Cohort | None, bool]:
    """Store one case (``entry`` is its report line); returns the cohort and whether it was
    created here."""
    created = False
    existing = (
        Case.objects.filter(cohort=cohort, case_code=item.case_code).first()
        if cohort is not None
        else None
    )
    if existing is not None and existing.source_fingerprint == item.fingerprint:
        entry["status"] = "skipped"
        entry["reasons"] = ["already imported from the same input"]
        return cohort, created
    if existing is not None:
        entry["reasons"] = [
            f"{item.where}column case_code: duplicate case code "
            f"'{item.case_code}': the cohort already has a different case with it"
        ]
        return cohort, created
    try:
        case_input = item.load()
    except CaseInputError as exc:
        entry["reasons"] = [str(exc)]
        return cohort, created
    entry["notes"] = case_input.notes + [n for im in case_input.images for n in im.notes]
    if cohort is None:
        cohort, created = Cohort.objects.get_or_create(
            name=name,
            defaults={"created_by": run.started_by, "description": f"Created by import {run.pk}"},
        )
        run.cohort = cohort
    try:
        case = case_create_from_input(cohort=cohort, case_input=case_input)
    except IntegrityError as exc:
        entry["reasons"] = [f"{item.where}the database refused the case: {exc}"]
        return cohort, created
    except SeriesInputError as exc:
        entry["reasons"] = [f"{item.where}{exc}"]
        return cohort, created
    entry["status"] = "accepted"
    entry["case_id"] = case.pk
    entry["series"] = [
        f"{s.get_modality_display()} {s.get_kind_display()} {'×'.join(map(str, s.shape))}"
        for s in case.series.all()
    ]
    return cohort, created


def _cases_import(
    *,
    root: Path,
    run: ImportRun,
    report: dict[str, Any],
    name: str,
    progress: ImportProgress | None,
    state: dict[str, Any],
) -> None:
    """Import every case of an opened input; ``state`` carries the cohort and whether this run
    created it (read by the caller when a failure stops the loop)."""
    # Listed first (cheap: loading is deferred to item.load()) so progress has a total and an
    # input refused as a whole is refused before any case is stored.
    items = list(
        cases_iterate(root=root, salt=str(settings.MRITRUS_DEID_SALT), notes=report["notes"])
    )
    report["total"] = len(items)
    for item in items:
        if report["cases"]:
            _import_progress(run, report, progress)
        entry: dict[str, Any] = {
            "case_code": item.case_code,
            "row": item.row,
            "status": "rejected",
            "reasons": list(item.errors),
            "notes": [],
            "series": [],
        }
        report["cases"].append(entry)
        if item.errors:
            continue
        state["cohort"], created = _case_import(
            item=item, entry=entry, cohort=state["cohort"], name=name, run=run
        )
        state["created"] = state["created"] or created
    if report["cases"]:
        _import_progress(run, report, progress)


def _storage_full_record(*, run: ImportRun, report: dict[str, Any], exc: OSError) -> None:
    logger.error("import %s: %s", run.pk, exc)
    stored = sum(c["status"] == "accepted" for c in report["cases"])
    run.error = (
        f"{NO_SPACE}: the import stopped; {stored} case(s) stored before it are kept, "
        "nothing of the case being written was stored. Free space and import again "
        "(stored cases are skipped)."
    )
    if report["cases"] and report["cases"][-1]["status"] == "rejected":
        report["cases"][-1]["reasons"] = report["cases"][-1]["reasons"] or [NO_SPACE]


def cohort_import(
    *,
    path: Path,
    cohort_name: str | None = None,
    user: Any = None,
    source_name: str | None = None,
    upload_key: str = "",
    progress: ImportProgress | None = None,
) -> ImportRun:
    """Import a manifest or DICOM-only input (folder or zip) into a cohort; returns the run report.

    Each case is stored whole or not at all. A case whose input was imported before into the same
    cohort is skipped; a different case with a taken code is rejected. Problems with the input as a
    whole (unsafe zip, unreadable manifest header, too many rows) fail the run and store nothing;
    a full disk fails it with the cases stored before kept.

    After each case the run's counts and report are saved (the upload page polls them by
    ``upload_key``) and ``progress(done, total, entry)`` is called (the command's progress bar).
    """
    path = Path(path)
    # Never the input's own name: clinical exports are often named after the patient.
    run = ImportRun.objects.create(
        started_by=_user(user),
        source_name=(source_name or ("zip upload" if path.is_file() else "folder"))[:300],
    )
    name = (cohort_name or "").strip() or default_cohort_name(run_pk=run.pk)
    report: dict[str, Any] = {"cohort": name, "cases": [], "notes": []}
    if upload_key:
        report["upload_key"] = upload_key[:64]
    state: dict[str, Any] = {"cohort": Cohort.objects.filter(name=name).first(), "created": False}

    def finish() -> ImportRun:
        return _run_finish(
            run=run, report=report, cohort=state["cohort"], cohort_created=state["created"]
        )

    try:
        with input_open(path) as root:
            _cases_import(
                root=root, run=run, report=report, name=name, progress=progress, state=state
            )
    except ImportInputError as exc:
        run.status = ImportRun.Status.FAILED
        run.error = str(exc)
    except OSError as exc:
        run.status = ImportRun.Status.FAILED
        if not storage_full(exc):
            run.error = "the import stopped on a storage error (details in the server log)"
            finish()
            raise
        _storage_full_record(run=run, report=report, exc=exc)
    except BaseException:
        run.status = ImportRun.Status.FAILED
        run.error = "the import stopped on an unexpected error (details in the server log)"
        finish()
        raise
    return finish()


def _import_progress(
    run: ImportRun, report: dict[str, Any], progress: ImportProgress | None
) -> None:
    """Save the counts so far (each case has committed on its own) and tell the caller."""
    statuses = [c["status"] for c in report["cases"]]
    run.accepted = statuses.count("accepted")
    run.rejected = statuses.count("rejected")
    run.skipped = statuses.count("skipped")
    run.report = report
    run.save(update_fields=["accepted", "rejected", "skipped", "report"])
    if progress is not None:
        progress(len(statuses), int(report.get("total", 0)), report["cases"][-1])


def _run_failed(*, user: Any, error: str) -> ImportRun:
    return ImportRun.objects.create(
        started_by=_user(user),
        source_name="zip upload",
        status=ImportRun.Status.FAILED,
        error=error,
        report={"cases": [], "notes": []},
        finished_at=timezone.now(),
    )


def cohort_import_upload(
    *, uploaded: Any, cohort_name: str | None, user: Any, upload_key: str = ""
) -> ImportRun:
    """Import an uploaded zip (web form or API): spooled under MEDIA_ROOT/tmp, removed afterwards."""
    size = int(getattr(uploaded, "size", 0) or 0)
    limit = int(settings.MRITRUS_IMPORT_MAX_BYTES)
    if size > limit:
        return _run_failed(
            user=user, error=f"the upload is {size} bytes, more than the limit of {limit}"
        )
    try:
        with tmp_folder("upload") as tmp:
            target = tmp / "upload.zip"
            with target.open("wb") as out:
                for chunk in uploaded.chunks():
                    out.write(chunk)
            return cohort_import(
                path=target, cohort_name=cohort_name, user=user, upload_key=upload_key
            )
    except OSError as exc:
        if not storage_full(exc):
            raise
        logger.error("upload: %s", exc)
        return _run_failed(
            user=user, error=f"{NO_SPACE}: the upload could not be stored; nothing was imported"
        )
