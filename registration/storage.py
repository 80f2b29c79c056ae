"""Media folders no database row refers to: listing and removal (`manage.py storage_cleanup`).

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
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from django.conf import settings

from registration.models import Case, ImageSeries, RegistrationJob

REGISTRATIONS = "registrations"


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
    media = Path(settings.MEDIA_ROOT)
    cutoff = time.time() - tmp_older_than_s
    known_series = set(ImageSeries.objects.values_list("series_instance_uid", flat=True))
    known_cases = {(str(c), str(k)) for c, k in Case.objects.values_list("cohort_id", "pk")}
    known_outputs = set(
        RegistrationJob.objects.exclude(output_dir="").values_list("output_dir", flat=True)
    )
    live = RegistrationJob.objects.filter(
        status__in=[RegistrationJob.Status.QUEUED, RegistrationJob.Status.RUNNING]
    ).values_list("pk", flat=True)
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
    tmp = media / "tmp"
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
