"""Every media path and atomic write, and the folders no row refers to (`manage.py storage_cleanup`).

What lives under MEDIA_ROOT (docs/architecture.md, "Storage"):

* ``cohorts/<cohort>/<case>/<series_uid>/``: one per ImageSeries row;
* ``cohorts/<cohort>/<case>/registrations/job<pk>-a<attempt>-<token>/``: one per registration job
  run, referred to by ``RegistrationJob.output_dir`` (QC images, displacement, metrics);
* ``tmp/``: writes in progress (``series-*``, ``case-*``, ``upload-*``, ``extract-*``) and the
  temp folder of a running job (``job<pk>-a<attempt>-*``).

A folder is an orphan only when no row refers to it AND no write can still be filling it: a
folder moved in just before its transaction commits has no row yet, so every candidate outside
``tmp/`` must also be older than the age limit, and a queued or running job's folders are never
candidates.

Writes are atomic by folder: files are written under ``tmp/`` (same filesystem), moved in with one
``os.replace`` (`folder_move`), and the rows are written in the transaction around the move; on
failure the moved folder is removed again, and a replaced folder is removed only after the commit
(`remove_on_commit`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction

from registration.models import Case, ImageSeries, RegistrationJob

REGISTRATIONS = "registrations"
TMP = "tmp"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def media_path(relative: str) -> Path:
    """The absolute path of a path stored in a row (relative to MEDIA_ROOT)."""
    return media_root() / relative


def tmp_root() -> Path:
    """``MEDIA_ROOT/tmp`` (created): writes in progress, on the same filesystem as their target."""
    root = media_root() / TMP
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def tmp_folder(prefix: str = "w") -> Iterator[Path]:
    """A fresh folder under ``MEDIA_ROOT/tmp`` (same filesystem, so ``os.replace`` is atomic),
    removed on exit."""
    path = tmp_root() / f"{prefix}-{uuid.uuid4().hex}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def folder_move(src: Path, dst: Path) -> None:
    """Move a finished folder into place in one step (the atomic half of every write)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def tree_remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_on_commit(folders: Sequence[Path]) -> None:
    """Remove ``folders`` once the current transaction commits (they are still referenced until
    then)."""

    def remove() -> None:
        for folder in folders:
            tree_remove(folder)

    transaction.on_commit(remove)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cohort_dir_relative(cohort_pk: int) -> str:
    return f"cohorts/{cohort_pk}"


def case_dir_relative(case: Case) -> str:
    return f"{cohort_dir_relative(case.cohort_id)}/{case.pk}"


def case_registrations_dir(case: Case) -> Path:
    """Where the runs of ``case``'s registration jobs live."""
    return media_root() / case_dir_relative(case) / REGISTRATIONS


def job_attempt_prefix(job: RegistrationJob, attempt: int | None = None) -> str:
    """Name prefix of every folder (temp or output) of one attempt of ``job``."""
    return f"job{job.pk}-a{job.attempt if attempt is None else attempt}-"


def job_output_dir(job: RegistrationJob, token: str) -> str:
    """Relative (to MEDIA_ROOT) folder of one run's outputs. The token keeps a re-run (whose
    attempt counter starts again) from ever landing on the folder of the run it replaces."""
    return f"{case_dir_relative(job.case)}/{REGISTRATIONS}/{job_attempt_prefix(job)}{token}"


def series_folders(series: Sequence[ImageSeries]) -> list[Path]:
    """The folder of each series (the parent of its NIfTI)."""
    return [media_path(s.nifti_path).parent for s in series if s.nifti_path]


def _old(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:  # removed while we looked
        return False


def storage_orphans(*, tmp_older_than_s: float = 3600.0) -> list[Path]:
    """Folders under MEDIA_ROOT that no row refers to and that no live write can own.

    They appear when a caller's outer transaction rolls back after `series_create_from_array`
    moved a series folder in (Django has no rollback hook), after a crash between a move and its
    commit, and as stale ``tmp/`` folders of interrupted imports and jobs.
    """
    media = media_root()
    cutoff = time.time() - tmp_older_than_s
    known_series = set(ImageSeries.objects.values_list("series_instance_uid", flat=True))
    known_cases = {(str(c), str(k)) for c, k in Case.objects.values_list("cohort_id", "pk")}
    known_outputs = set(
        RegistrationJob.objects.exclude(output_dir="").values_list("output_dir", flat=True)
    )
    live = RegistrationJob.objects.filter(status__in=RegistrationJob.ACTIVE_STATUSES).values_list(
        "pk", flat=True
    )
    # Any attempt of a live job: its folders are the worker's to keep or clean.
    live_prefixes = tuple(f"job{pk}-a" for pk in live)
    orphans: list[Path] = []
    cohorts = media / "cohorts"
    if cohorts.is_dir():
        for cohort_dir in sorted(p for p in cohorts.iterdir() if p.is_dir()):
            for case_dir in sorted(p for p in cohort_dir.iterdir() if p.is_dir()):
                if (cohort_dir.name, case_dir.name) not in known_cases:
                    if _old(case_dir, cutoff):
                        orphans.append(case_dir)
                    continue
                for entry in sorted(case_dir.iterdir()):
                    if not entry.is_dir():
                        continue
                    if entry.name == REGISTRATIONS:
                        orphans += [
                            run
                            for run in sorted(entry.iterdir())
                            if str(run.relative_to(media)) not in known_outputs
                            and not run.name.startswith(live_prefixes)
                            and _old(run, cutoff)
                        ]
                    elif entry.name not in known_series and _old(entry, cutoff):
                        orphans.append(entry)
    tmp = media / TMP
    if tmp.is_dir():
        orphans += [
            p
            for p in sorted(tmp.iterdir())
            if not p.name.startswith(live_prefixes) and _old(p, cutoff)
        ]
    return orphans


def storage_orphans_remove(*, tmp_older_than_s: float = 3600.0) -> list[Path]:
    """Remove what :func:`storage_orphans` lists (rechecked just before, never a live folder)."""
    removed = storage_orphans(tmp_older_than_s=tmp_older_than_s)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed
