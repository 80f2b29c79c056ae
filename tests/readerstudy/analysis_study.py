"""A SYNTHETIC reader study with submitted reads, built directly with the ORM for analysis tests.

Worklist generation needs stored image series; the analysis only needs assignments and reads, so
this builder writes those rows itself. Scores are simulated (seeded), never real reads: the cohort is
flagged synthetic, so every figure and export of it says so.
"""

from __future__ import annotations

import secrets

import numpy as np
from django.utils import timezone

from accounts.factories import UserFactory
from readerstudy.models import Arm, Assignment, Read, ReaderStudy, StudyReader
from registration.models import Case, Cohort


def analysis_study_build(
    *,
    name: str = "Synthetic analysis study",
    n_cases: int = 24,
    readers: list | None = None,  # noqa: ANN001
    coordinator=None,  # noqa: ANN001
    arms: tuple[str, ...] = ("original", "registered"),
    reference_standard: str = "pirads",
    status: str = "open",
    synthetic: bool = True,
    seed: int = 7,
    skip: set[tuple[int, str, int]] | None = None,
    likert_max: int = 7,
) -> ReaderStudy:
    """Study with every reader × arm × case read and submitted, except ``skip`` (reader index,
    arm, case index) which stay as drafts (missing data).
    Likert scores are on the reading form's 7-point scale (``likert_max`` narrows it)."""
    rng = np.random.default_rng(seed)
    if coordinator is None:
        coordinator = UserFactory(
            username=f"{name[:10]}-coord",
            role="coordinator",
            reader_level="",
            years_experience=None,
        )
    if readers is None:
        readers = [
            UserFactory(username=f"{name[:10]}-j", role="reader", reader_level="junior"),
            UserFactory(username=f"{name[:10]}-s", role="reader", reader_level="senior"),
        ]
    cohort = Cohort.objects.create(name=f"{name} cohort", synthetic=synthetic)
    cases = []
    for i in range(n_cases):
        ref = int(rng.integers(1, 6))
        cspca = None if i % 11 == 10 else bool(ref >= 4 and rng.random() < 0.8)
        cases.append(
            Case.objects.create(
                cohort=cohort,
                case_code=f"SYN{i:03d}",
                reference_pirads=ref,
                cspca=cspca,
                isup_grade=(int(rng.integers(2, 5)) if cspca else 0) if cspca is not None else None,
                lesion_side=str(rng.choice(["left", "right", "bilateral"])) if ref >= 3 else "none",
                synthetic=synthetic,
                deid_key=secrets.token_hex(16),
            )
        )
    study = ReaderStudy.objects.create(
        name=name,
        cohort=cohort,
        washout_days=0,
        seed=seed,
        status=status,
        reference_standard=reference_standard,
        created_by=coordinator,
        opened_at=None if status == "draft" else timezone.now(),
    )
    arm_rows = [Arm.objects.create(study=study, kind=k, index=i) for i, k in enumerate(arms)]
    skip = skip or set()
    now = timezone.now()
    used_codes: set[str] = set()
    for r_index, user in enumerate(readers):
        order = arm_rows if r_index % 2 == 0 else list(reversed(arm_rows))
        reader = StudyReader.objects.create(
            study=study, user=user, pseudonym=f"R{r_index + 1}", arm_order=[a.pk for a in order]
        )
        skill = 1.0 if user.reader_level == "junior" else 1.6
        for session, arm in enumerate(order, start=1):
            # The registered arm is simulated as slightly easier to read.
            boost = 0.4 if arm.kind != "original" else 0.0
            for position, c_index in enumerate(rng.permutation(n_cases), start=1):
                case = cases[int(c_index)]
                code = secrets.token_hex(3).upper()
                while code in used_codes:
                    code = secrets.token_hex(3).upper()
                used_codes.add(code)
                assignment = Assignment.objects.create(
                    study=study,
                    reader=reader,
                    arm=arm,
                    case=case,
                    session=session,
                    position=position,
                    reading_code=code,
                    token=secrets.token_urlsafe(18),
                )
                latent = (case.reference_pirads - 3) * (skill + boost) + rng.normal(0, 1.2)
                pirads = int(np.clip(np.round(3 + latent / 1.5), 1, 5))
                likert = int(np.clip(np.round(4 + boost * 2 + rng.normal(0, 1.2)), 1, likert_max))
                if (r_index, arm.kind, int(c_index)) in skip:
                    Read.objects.create(assignment=assignment, pirads=pirads)
                    continue
                Read.objects.create(
                    assignment=assignment,
                    pirads=pirads,
                    likert=likert,
                    zone=str(rng.choice(["pz", "tz"])) if pirads >= 3 else "none",
                    side=str(rng.choice(["left", "right"])) if pirads >= 3 else "none",
                    comment="synthetic read" if position == 1 else "",
                    status=Read.Status.SUBMITTED,
                    active_seconds=float(np.round(rng.uniform(20, 140), 3)),
                    submitted_at=now,
                )
    return study
