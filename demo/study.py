"""The demo reader study that `make run` sets up on the demo cohort."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from accounts.models import User
from readerstudy import services
from readerstudy.models import ReaderStudy
from registration.models import Cohort, ImageSeries

DEMO_STUDY_NAME = "Demo reader study"


@transaction.atomic
def demo_study_create(
    *, cohort: Cohort, coordinator: User, readers: Sequence[User], name: str = DEMO_STUDY_NAME
) -> ReaderStudy:
    """Create (once) and open a demo study: original + registered arms, + fused when TRUS exists.

    Washout is 0 days so a demo reader can go straight from one arm to the next. Idempotent: an
    existing study of that name is returned unchanged, so `make run` can call this every time.
    Cases without the series an arm needs are left out and named in the study's notes.
    """
    existing = ReaderStudy.objects.filter(name=name).first()
    if existing is not None:
        return existing
    series = ImageSeries.objects.filter(case__cohort=cohort)
    has_registered = series.filter(modality="MR_T2", kind="registered").exists()
    has_trus = series.filter(modality="US", kind="original").exists()
    # Without registered series (registration not run yet) the demo still opens, original only.
    arms = ["original"] + (["registered"] if has_registered else [])
    if has_registered and has_trus:
        arms.append("fused")
    study = services.study_create(
        name=name,
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=arms,
        readers=list(readers),
        washout_days=0,
        seed=20260101,
        mark_required_from=3,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    return services.study_open(study=study, user=coordinator)
