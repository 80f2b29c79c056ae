"""Fill an open study on a SYNTHETIC cohort with simulated reads, to demonstrate the analysis page.

Reads go through the same service as the browser (``read_submit``, audited as the reader's
submission) and say "SYNTHETIC demo read" in their comment. Studies on a real cohort are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from demo.study import DEMO_STUDY_NAME
from readerstudy import read_services, services
from readerstudy.analysis.services import analysis_snapshot_build
from readerstudy.models import Assignment, Read, ReaderStudy


def simulated_read(*, reference_pirads: int | None, level: str, arm: str, rng: Any) -> dict:
    """A plausible SYNTHETIC read: seniors and the registered/fused arms track the reference more
    closely and report more confidence (the effect the study looks for, made up here)."""
    skill = 1.6 if level == "senior" else 1.0
    boost = 0.0 if arm == "original" else 0.4
    ref = reference_pirads if reference_pirads is not None else int(rng.integers(1, 6))
    latent = (ref - 3) * (skill + boost) + rng.normal(0.0, 1.2)
    pirads = int(np.clip(np.round(3 + latent / 1.5), 1, 5))
    likert = int(np.clip(np.round(4 + 2 * boost + 0.5 * (skill - 1) + rng.normal(0.0, 1.2)), 1, 7))
    suspicious = pirads >= 3
    side = str(rng.choice(["left", "right"])) if suspicious else "none"
    read = {
        "pirads": pirads,
        "likert": likert,
        "zone": str(rng.choice(["pz", "tz"])) if suspicious else "none",
        "side": side,
        "comment": "SYNTHETIC demo read",
    }
    if suspicious:
        # A made-up mark on the stated side, near the gland centre (display mm, +x = left).
        from readerstudy.display import SLICES, display_offset

        k = int(np.clip(SLICES // 2 + rng.normal(0, 3), 0, SLICES - 1))
        x = (1 if side == "left" else -1) * float(rng.uniform(5, 20))
        read["mark"] = {
            "x": round(x, 2),
            "y": round(float(rng.normal(0, 8)), 2),
            "z": float(display_offset(slice_index=k)[2]),
            "slice": k,
        }
    return read


class Command(BaseCommand):
    help = (
        "Submit SYNTHETIC reads for every open assignment of a study on a synthetic cohort "
        "(demo of the analysis page); optionally snapshot or lock it afterwards."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("study", nargs="?", default=DEMO_STUDY_NAME, help="study name")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--snapshot", action="store_true", help="take a snapshot afterwards")
        parser.add_argument("--lock", action="store_true", help="lock the study afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        study = (
            ReaderStudy.objects.select_related("cohort", "created_by")
            .filter(name=options["study"])
            .first()
        )
        if study is None:
            raise CommandError(f"no study named {options['study']!r}")
        if not study.cohort.synthetic:
            raise CommandError(
                f"refusing: cohort {study.cohort.name!r} is not flagged synthetic, and simulated "
                "reads must never mix with real ones"
            )
        if study.status != ReaderStudy.Status.OPEN:
            raise CommandError(f"the study is {study.status}; only an open study takes reads")
        coordinator = study.created_by
        if coordinator is None or not coordinator.is_coordinator:
            raise CommandError("the study has no coordinator to snapshot or lock it as")
        rng = np.random.default_rng(options["seed"])
        submitted = 0
        assignments = (
            Assignment.objects.filter(study=study)
            .exclude(read__status=Read.Status.SUBMITTED)
            .select_related("reader__user", "arm", "case")
            .order_by("reader__pseudonym", "session", "position")
        )
        for assignment in assignments:
            data = simulated_read(
                reference_pirads=assignment.case.reference_pirads,
                level=assignment.reader.user.reader_level,
                arm=assignment.arm.kind,
                rng=rng,
            )
            read_services.read_submit(
                assignment=assignment,
                user=assignment.reader.user,
                data=data,
                active_seconds=float(rng.uniform(20, 140)),
            )
            submitted += 1
        self.stdout.write(f"{submitted} SYNTHETIC reads submitted in {study.name!r}")
        if options["lock"]:
            snapshot = services.study_lock(study=study, user=coordinator)
            self.stdout.write(f"locked; snapshot {snapshot.sha256}")
        elif options["snapshot"]:
            snapshot = analysis_snapshot_build(study=study, user=coordinator)
            self.stdout.write(f"snapshot {snapshot.sha256}")
