"""Reader-study writes: design, worklists, opening and locking.

Reads are written by ``read_services``; snapshots by ``analysis.services``.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from readerstudy.analysis.services import snapshot_create
from readerstudy.models import (
    Arm,
    Assignment,
    AssignmentSeries,
    AuditEvent,
    ReaderStudy,
    Snapshot,
    StudyReader,
)
from readerstudy.read_services import audit_event_create, coordinator_require
from registration.models import Case, Cohort, ImageSeries
from registration.reference import NEEDED_FIELD, NEEDED_WORDS, cohort_cases_missing_reference

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: reading codes are read aloud and typed.
_CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
_CODE_LENGTH = 6
ARM_KINDS = ("original", "registered", "fused")


def _new_uid() -> str:
    # 2.25.<UUID as integer> is the standard UID form that needs no registered root.
    return f"2.25.{uuid.uuid4().int}"


def _new_token() -> str:
    return secrets.token_urlsafe(18)


# --- design --------------------------------------------------------------------------------------


@transaction.atomic
def study_create(
    *,
    name: str,
    cohort: Cohort,
    created_by: User,
    arm_kinds: Iterable[str],
    readers: Iterable[User],
    washout_days: int = 28,
    seed: int | None = None,
    reference_standard: str = ReaderStudy.ReferenceStandard.PIRADS,
    model_key: str = "",
    mark_required_from: int | None = None,
) -> ReaderStudy:
    """Create a draft study with its arms (in the given order) and readers (R1, R2, …)."""
    coordinator_require(created_by)
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors.setdefault("name", []).append("A study needs a name.")
    elif ReaderStudy.objects.filter(name=name).exists():
        errors.setdefault("name", []).append(f"A study named {name!r} already exists.")
    kinds = list(arm_kinds)
    if not kinds:
        errors.setdefault("arm_kinds", []).append("Choose at least one arm.")
    bad = [k for k in kinds if k not in ARM_KINDS]
    if bad:
        errors.setdefault("arm_kinds", []).append(
            f"Unknown arm type(s) {', '.join(bad)}; use {', '.join(ARM_KINDS)}."
        )
    if len(set(kinds)) != len(kinds):
        errors.setdefault("arm_kinds", []).append("Each arm type can appear once.")
    reader_list = list(dict.fromkeys(readers))
    if not reader_list:
        errors.setdefault("readers", []).append("Choose at least one reader.")
    not_readers = [u.username for u in reader_list if not u.is_reader]
    if not_readers:
        errors.setdefault("readers", []).append(
            f"Only users with the reader role can read: {', '.join(not_readers)}."
        )
    if mark_required_from is not None and not 1 <= mark_required_from <= 5:
        errors.setdefault("mark_required_from", []).append(
            "A lesion mark can be required from a score of 1 to 5, or never (empty)."
        )
    if not 0 <= washout_days <= 365:
        errors.setdefault("washout_days", []).append("Washout must be 0–365 days.")
    if reference_standard not in ReaderStudy.ReferenceStandard.values:
        errors.setdefault("reference_standard", []).append("Use 'pirads' or 'biopsy'.")
    else:
        # The analysis needs every case's reference: refuse now, naming the cases to fill in.
        missing = cohort_cases_missing_reference(cohort=cohort, standard=reference_standard)
        if missing:
            codes = ", ".join(c.case_code for c in missing)
            errors.setdefault("cohort", []).append(
                f"{len(missing)} case(s) of {cohort.name} have no {NEEDED_WORDS[reference_standard]},"
                f" which this study's reference standard needs: {codes}. Fill them in on the"
                " cohort's Reference standard page, or choose the other reference standard."
            )
    if errors:
        raise ValidationError(errors)

    study = ReaderStudy.objects.create(
        name=name,
        cohort=cohort,
        created_by=created_by,
        washout_days=washout_days,
        seed=seed if seed is not None else secrets.randbelow(2**31),
        reference_standard=reference_standard,
        mark_required_from=mark_required_from,
    )
    for index, kind in enumerate(kinds):
        Arm.objects.create(
            study=study, kind=kind, index=index, model_key=model_key if kind != "original" else ""
        )
    for number, user in enumerate(reader_list, start=1):
        StudyReader.objects.create(study=study, user=user, pseudonym=f"R{number}")
    return study


def _series_for_arm(*, case: Case, arm: Arm) -> tuple[dict[str, ImageSeries], str | None]:
    """The series an arm shows for a case, by role, or the reason the case cannot be read."""
    series = list(case.series.all())

    def pick(modality: str, kind: str) -> ImageSeries | None:
        found = [s for s in series if s.modality == modality and s.kind == kind]
        if kind == "registered" and arm.model_key:
            found = [s for s in found if s.model_key == arm.model_key]
        # Newest registered series wins when no model is named.
        return max(found, key=lambda s: s.pk) if found else None

    if arm.kind == Arm.Kind.ORIGINAL:
        t2 = pick("MR_T2", "original")
        return ({"primary": t2}, None) if t2 else ({}, "no original T2")
    registered = pick("MR_T2", "registered")
    model = f" (model {arm.model_key})" if arm.model_key else ""
    if registered is None:
        return {}, f"no registered T2{model}"
    if arm.kind == Arm.Kind.REGISTERED:
        return {"primary": registered}, None
    trus = pick("US", "original")
    if trus is None:
        return {}, "no TRUS"
    return {"primary": registered, "underlay": trus}, None


def _unique_codes(count: int, taken: set[str]) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


@dataclass(frozen=True)
class GenerationResult:
    assignments: int
    cases: int
    notes: list[str] = field(default_factory=list)


Readable = list[tuple[Case, dict[int, dict[str, ImageSeries]]]]


def _readable_cases(*, study: ReaderStudy, arms: list[Arm]) -> tuple[Readable, list[str]]:
    """The cases every arm can show (with each arm's series), and a note per case left out."""
    cases = list(study.cohort.cases.prefetch_related("series__instances").order_by("case_code"))
    notes: list[str] = []
    readable: Readable = []
    for case in cases:
        per_arm: dict[int, dict[str, ImageSeries]] = {}
        missing: list[str] = []
        if getattr(case, NEEDED_FIELD[study.reference_standard]) is None:
            # Cleared after the study was created: the analysis could not use its reads.
            missing.append(f"no {NEEDED_WORDS[study.reference_standard]}")
        for arm in arms:
            chosen, why = _series_for_arm(case=case, arm=arm)
            if why:
                missing.append(f"{why} (needed by the {arm.kind} arm)")
            else:
                per_arm[arm.pk] = chosen
        if missing:
            notes.append(f"Case {case.case_code} left out: {'; '.join(missing)}.")
        else:
            readable.append((case, per_arm))
    return readable, notes


@transaction.atomic
def study_worklists_generate(*, study: ReaderStudy, user: User) -> GenerationResult:
    """Fully crossed worklists: every reader reads every readable case in every arm.

    Arm order is counterbalanced by rotating it reader by reader, level by level, so half of the
    juniors and half of the seniors start with each arm (of two). Positions within a
    reader's arm are a shuffle seeded by (study seed, reader pseudonym, arm kind): the same seed
    gives the same orders. Cases missing a series that any arm needs are left out of every arm,
    keeping the design fully crossed, and named in the notes.
    """
    coordinator_require(user)
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.status != ReaderStudy.Status.DRAFT:
        raise ValidationError("Worklists can only be generated while the study is a draft.")
    arms = list(study.arms.order_by("index"))
    readers = list(study.readers.select_related("user").order_by("pk"))
    if not arms or not readers:
        raise ValidationError("The study needs at least one arm and one reader.")

    study.assignments.all().delete()
    readable, notes = _readable_cases(study=study, arms=arms)
    if not readable:
        raise ValidationError(
            "No case of the cohort has every series the arms need. " + " ".join(notes)
        )

    taken: set[str] = set()
    total = 0
    by_level: dict[str, list[StudyReader]] = {}
    for reader in readers:
        by_level.setdefault(reader.user.reader_level, []).append(reader)
    # The rotation continues from one level to the next, so each level is balanced and, with odd
    # numbers per level (one junior, one senior), the study as a whole is too.
    rank = -1
    for level in sorted(by_level):
        for reader in by_level[level]:
            rank += 1
            shift = rank % len(arms)
            order = arms[shift:] + arms[:shift]
            reader.arm_order = [arm.pk for arm in order]
            reader.save(update_fields=["arm_order"])
            for session, arm in enumerate(order, start=1):
                rng = random.Random(f"{study.seed}:{reader.pseudonym}:{arm.kind}")
                shuffled = list(readable)
                rng.shuffle(shuffled)
                codes = _unique_codes(len(shuffled), taken)
                for position, ((case, per_arm), code) in enumerate(zip(shuffled, codes), start=1):
                    assignment = Assignment.objects.create(
                        study=study,
                        reader=reader,
                        arm=arm,
                        case=case,
                        session=session,
                        position=position,
                        reading_code=code,
                        token=_new_token(),
                    )
                    _assignment_views_create(assignment=assignment, series=per_arm[arm.pk])
                    total += 1
    study.generation_notes = notes
    study.save(update_fields=["generation_notes"])
    audit_event_create(
        study=study,
        user=user,
        action=AuditEvent.Action.WORKLISTS,
        details={"assignments": total, "cases": len(readable), "left_out": len(notes)},
    )
    return GenerationResult(assignments=total, cases=len(readable), notes=notes)


def _assignment_views_create(*, assignment: Assignment, series: Mapping[str, ImageSeries]) -> None:
    # One map per assignment: the fused arm's two series keep a shared frame of reference.
    uid_map: dict[str, str] = {}

    def remap(uid: str) -> str:
        if uid and uid not in uid_map:
            uid_map[uid] = _new_uid()
        return uid_map.get(uid, "")

    views = []
    for role, s in series.items():
        remap(s.frame_of_reference_uid)
        views.append(
            AssignmentSeries(
                assignment=assignment,
                series=s,
                role=role,
                token=_new_token(),
                study_uid=remap(s.study_instance_uid),
                series_uid=remap(s.series_instance_uid),
            )
        )
        for instance in s.instances.all():
            remap(instance.sop_instance_uid)
    for view in views:
        view.uid_map = uid_map
    AssignmentSeries.objects.bulk_create(views)


@transaction.atomic
def study_open(*, study: ReaderStudy, user: User) -> ReaderStudy:
    coordinator_require(user)
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.status != ReaderStudy.Status.DRAFT:
        raise ValidationError(f"Only a draft study can be opened (this one is {study.status}).")
    if not study.assignments.exists():
        raise ValidationError("Generate the worklists before opening the study.")
    study.status = ReaderStudy.Status.OPEN
    study.opened_at = timezone.now()
    study.save(update_fields=["status", "opened_at"])
    audit_event_create(study=study, user=user, action=AuditEvent.Action.STUDY_OPEN)
    # Every arm's images on the common display grid, ready before the first reader asks.
    from readerstudy.tasks import study_display_prepare_task

    pk = study.pk
    transaction.on_commit(lambda: study_display_prepare_task.enqueue(pk))
    return study


@transaction.atomic
def study_lock(*, study: ReaderStudy, user: User) -> Snapshot:
    """Freeze the reads (no more drafts, submissions or reopenings) and snapshot them."""
    coordinator_require(user)
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.status != ReaderStudy.Status.OPEN:
        raise ValidationError(f"Only an open study can be locked (this one is {study.status}).")
    study.status = ReaderStudy.Status.LOCKED
    study.locked_at = timezone.now()
    study.save(update_fields=["status", "locked_at"])
    audit_event_create(study=study, user=user, action=AuditEvent.Action.STUDY_LOCK)
    return snapshot_create(study=study, user=user)
