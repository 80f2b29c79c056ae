"""The stages of ``study_analyse`` after the input check: each reads the ``ReadCube`` and returns its
entries and the notes it has for the page (missing data, undefined values), in the page's order.

Missing data: every AUC uses every case the reader scored (and whose reference is known); paired tests
and kappas use complete pairs; MRMC uses the cases every reader scored in every arm.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from readerstudy.stats.agreement import cohen_kappa, cohen_kappa_dichotomised, fleiss_kappa
from readerstudy.stats.analysis_entries import (
    CorrelationEntry,
    FleissEntry,
    KappaEntry,
    McNemarEntry,
    PairedAucEntry,
    RankTestEntry,
    ReaderArmResult,
    SideEntry,
)
from readerstudy.stats.analysis_input import ReadCube
from readerstudy.stats.diagnostic import (
    likert_summary,
    mcnemar_test,
    proportion_wilson,
    sensitivity_specificity,
    spearman_correlation,
)
from readerstudy.stats.mrmc import CovarianceMethod, MrmcResult, mrmc_or
from readerstudy.stats.rank_tests import mann_whitney_u, wilcoxon_signed_rank
from readerstudy.stats.roc import (
    DelongPairedTest,
    RocAuc,
    RocCurve,
    roc_auc_compare_paired,
    roc_auc_delong,
    roc_curve_points,
)

KAPPA_SCALES = ("dichotomised", "linear", "quadratic")
Notes = list[str]


def reference_notes(cube: ReadCube) -> Notes:
    n_unknown = int((~cube.known).sum())
    if not n_unknown:
        return []
    return [
        f"{n_unknown} of {cube.n_case} cases have no reference ({cube.reference}) and are left out of "
        "AUC, sensitivity/specificity and MRMC"
    ]


def _reader_arm(
    cube: ReadCube,
    a: int,
    r: int,
    *,
    thresholds: Sequence[float],
    likert_scale: Sequence[int],
    confidence: float,
    notes: Notes,
) -> ReaderArmResult:
    arm, reader, n_case = cube.arms[a], cube.readers[r], cube.n_case
    y, scores = cube.y, cube.pirads[a, r]
    scored = np.isfinite(scores)
    use = scored & cube.known
    n_scored = int(scored.sum())
    if n_scored < n_case:
        notes.append(
            f"reader {reader}, arm {arm}: {n_case - n_scored} of {n_case} cases not scored; "
            "the AUC uses the scored cases"
        )
    auc: RocAuc | None = None
    roc: RocCurve | None = None
    auc_note = ""
    n_pos = int(y[use].sum())
    if n_pos == 0 or n_pos == int(use.sum()):
        auc_note = (
            f"AUC undefined: {n_pos} positive and {int(use.sum()) - n_pos} negative scored cases"
        )
        notes.append(f"reader {reader}, arm {arm}: {auc_note}")
    else:
        auc = roc_auc_delong(y[use], scores[use], confidence=confidence)
        roc = roc_curve_points(y[use], scores[use])
    accuracy = tuple(
        sensitivity_specificity(y[use], scores[use], threshold=t, confidence=confidence)
        for t in thresholds
    )
    correct = cube.correct_side[a, r]
    known_side = np.isfinite(correct)
    return ReaderArmResult(
        reader=reader,
        reader_level=cube.reader_levels[reader],
        arm=arm,
        n_cases=n_case,
        n_scored=n_scored,
        n_scored_with_reference=int(use.sum()),
        auc=auc,
        roc=roc,
        auc_note=auc_note,
        accuracy=accuracy,
        likert=likert_summary(cube.likert[a, r], categories=tuple(likert_scale)),
        side_agreement=proportion_wilson(
            int(correct[known_side].sum()), int(known_side.sum()), confidence=confidence
        ),
    )


def reader_diagnostics(
    cube: ReadCube,
    *,
    thresholds: Sequence[float],
    likert_scale: Sequence[int],
    confidence: float,
) -> tuple[list[ReaderArmResult], Notes]:
    """Per reader and arm: AUC and ROC, sensitivity/specificity per threshold, Likert, side."""
    notes: Notes = []
    results = [
        _reader_arm(
            cube,
            a,
            r,
            thresholds=thresholds,
            likert_scale=likert_scale,
            confidence=confidence,
            notes=notes,
        )
        for a in range(len(cube.arms))
        for r in range(len(cube.readers))
    ]
    return results, notes


def paired_auc(cube: ReadCube, *, confidence: float) -> tuple[list[PairedAucEntry], Notes]:
    """DeLong per reader: every other arm vs the baseline, on the complete pairs."""
    notes: Notes = []
    entries: list[PairedAucEntry] = []
    y, base, baseline = cube.y, cube.base, cube.baseline_arm
    for arm in cube.others:
        a = cube.arms.index(arm)
        for r, reader in enumerate(cube.readers):
            x_arm, x_base = cube.pirads[a, r], cube.pirads[base, r]
            both = cube.known & np.isfinite(x_arm) & np.isfinite(x_base)
            dropped = int((cube.known & ~both).sum())
            n_pos = int(y[both].sum())
            test: DelongPairedTest | None = None
            note = ""
            if n_pos == 0 or n_pos == int(both.sum()):
                note = f"undefined: {n_pos} positive and {int(both.sum()) - n_pos} negative complete pairs"
            else:
                test = roc_auc_compare_paired(
                    y[both], x_arm[both], x_base[both], confidence=confidence
                )
            if dropped:
                notes.append(
                    f"DeLong {reader} {arm} vs {baseline}: {int(both.sum())} complete pairs used, "
                    f"{dropped} dropped"
                )
            entries.append(
                PairedAucEntry(reader, arm, baseline, int(both.sum()), dropped, test, note)
            )
    return entries, notes


def agreement(
    cube: ReadCube, *, positive_pirads: float, confidence: float
) -> tuple[list[KappaEntry], list[FleissEntry], Notes]:
    """Cohen's kappas (reader vs reference, between readers, within reader) and Fleiss' kappa."""
    notes: Notes = []
    kappas: list[KappaEntry] = []
    pirads, readers, baseline = cube.pirads, cube.readers, cube.baseline_arm

    def add(kind: str, arm_a: str, arm_b: str, ra: str, rb: str, xa: Any, xb: Any) -> None:
        results = (
            cohen_kappa_dichotomised(xa, xb, threshold=positive_pirads, confidence=confidence),
            cohen_kappa(xa, xb, weights="linear", confidence=confidence),
            cohen_kappa(xa, xb, weights="quadratic", confidence=confidence),
        )
        for scale, res in zip(KAPPA_SCALES, results):
            kappas.append(KappaEntry(kind, scale, arm_a, arm_b, ra, rb, res))

    has_ref_pirads = bool(np.isfinite(cube.ref_pirads).any())
    for a, arm in enumerate(cube.arms):
        for r, reader in enumerate(readers):
            if has_ref_pirads:
                add(
                    "reader_vs_reference",
                    arm,
                    arm,
                    reader,
                    "reference",
                    pirads[a, r],
                    cube.ref_pirads,
                )
        for r1, r2 in combinations(range(len(readers)), 2):
            add("between_readers", arm, arm, readers[r1], readers[r2], pirads[a, r1], pirads[a, r2])
    for arm in cube.others:
        a = cube.arms.index(arm)
        for r, reader in enumerate(readers):
            add("within_reader", arm, baseline, reader, reader, pirads[a, r], pirads[cube.base, r])
    undefined_k = sum(1 for k in kappas if not k.result.defined)
    if undefined_k:
        notes.append(
            f"{undefined_k} of {len(kappas)} kappas are undefined (see each entry's reason)"
        )
    if not has_ref_pirads:
        notes.append("no reference PI-RADS: reader-vs-reference kappas are not computed")
    fleiss, fleiss_notes = _fleiss(cube, positive_pirads=positive_pirads)
    return kappas, fleiss, notes + fleiss_notes


def _fleiss(cube: ReadCube, *, positive_pirads: float) -> tuple[list[FleissEntry], Notes]:
    notes: Notes = []
    fleiss: list[FleissEntry] = []
    if len(cube.readers) > 2:
        for a, arm in enumerate(cube.arms):
            ratings = cube.pirads[a].T
            dich = np.where(np.isfinite(ratings), (ratings >= positive_pirads) * 1.0, np.nan)
            fleiss.append(FleissEntry(arm, "dichotomised", fleiss_kappa(dich, categories=(0, 1))))
            fleiss.append(FleissEntry(arm, "categorical", fleiss_kappa(ratings)))
            if fleiss[-1].result.n_incomplete_dropped:
                notes.append(
                    f"Fleiss' kappa, arm {arm}: {fleiss[-1].result.n_incomplete_dropped} cases not "
                    "scored by every reader are dropped"
                )
    return fleiss, notes


def likert_tests(cube: ReadCube) -> tuple[list[RankTestEntry], list[RankTestEntry], Notes]:
    """Wilcoxon per reader on Likert (arm vs baseline) and Mann-Whitney junior vs senior per arm."""
    if not cube.has_likert:
        return [], [], ["no likert column: Wilcoxon and Mann-Whitney are not computed"]
    notes: Notes = []
    wilcoxon: list[RankTestEntry] = []
    mann: list[RankTestEntry] = []
    likert, baseline = cube.likert, cube.baseline_arm
    for arm in cube.others:
        a = cube.arms.index(arm)
        for r, reader in enumerate(cube.readers):
            res = wilcoxon_signed_rank(likert[a, r], likert[cube.base, r])
            if res.n_incomplete_dropped:
                notes.append(
                    f"Wilcoxon {reader} {arm} vs {baseline}: {res.n_incomplete_dropped} "
                    "incomplete pairs dropped"
                )
            wilcoxon.append(RankTestEntry(reader, arm, arm, baseline, "likert", res, ""))
    juniors = [i for i, r in enumerate(cube.readers) if cube.reader_levels[r] == "junior"]
    seniors = [i for i, r in enumerate(cube.readers) if cube.reader_levels[r] == "senior"]
    if not (juniors and seniors):
        notes.append("Mann-Whitney junior vs senior not computed: needs readers of both levels")
        return wilcoxon, mann, notes
    for a, arm in enumerate(cube.arms):
        res = mann_whitney_u(likert[a, juniors].ravel(), likert[a, seniors].ravel())
        mann.append(
            RankTestEntry(
                "",
                arm,
                "junior",
                "senior",
                "likert",
                res,
                "reads pooled per level; reads of the same case are not independent, "
                "so read the p-value as descriptive",
            )  # fmt: skip
        )
    return wilcoxon, mann, notes


def localisation(
    cube: ReadCube, *, confidence: float
) -> tuple[list[SideEntry], list[McNemarEntry], Notes]:
    """Lesion-side agreement with the biopsy side per arm, and McNemar of each arm vs the baseline."""
    if not any(v is not None for v in cube.biopsy_side):
        return [], [], ["no biopsy side known: lesion-side agreement is not computed"]
    correct = cube.correct_side
    sides: list[SideEntry] = []
    for a, arm in enumerate(cube.arms):
        flat = correct[a].ravel()
        ok = np.isfinite(flat)
        sides.append(
            SideEntry(
                arm, proportion_wilson(int(flat[ok].sum()), int(ok.sum()), confidence=confidence)
            )
        )
    mcnemar = [
        McNemarEntry(
            arm,
            cube.baseline_arm,
            mcnemar_test(correct[cube.arms.index(arm)].ravel(), correct[cube.base].ravel()),
        )
        for arm in cube.others
    ]
    return sides, mcnemar, []


def correlation(cube: ReadCube, *, confidence: float) -> list[CorrelationEntry]:
    """Spearman of the readers' PI-RADS with the ISUP grade, per arm (no notes)."""
    if not np.isfinite(cube.isup).any():
        return []
    return [
        CorrelationEntry(
            arm,
            "pirads",
            "isup",
            spearman_correlation(
                cube.pirads[a].ravel(), np.tile(cube.isup, len(cube.readers)), confidence=confidence
            ),
            "reads pooled over readers; reads of the same case are not independent",
        )  # fmt: skip
        for a, arm in enumerate(cube.arms)
    ]


def mrmc(cube: ReadCube, *, confidence: float) -> tuple[list[MrmcResult], int, Notes]:
    """Obuchowski-Rockette MRMC (jackknife and DeLong covariance) on the fully crossed complete cases;
    returns the results, the number of cases dropped and the notes."""
    y = cube.y
    complete = cube.known & np.isfinite(cube.pirads).all(axis=(0, 1))
    dropped = int(cube.n_case - complete.sum())
    order = cube.others + [cube.baseline_arm]
    idx = [cube.arms.index(a) for a in order]
    n_pos_c = int(y[complete].sum())
    n_neg_c = int(complete.sum()) - n_pos_c
    if len(cube.arms) < 2 or len(cube.readers) < 2:
        return [], dropped, ["MRMC not computed: needs at least two arms and two readers"]
    if n_pos_c < 2 or n_neg_c < 2:
        return (
            [],
            dropped,
            [
                f"MRMC not computed: {n_pos_c} positive and {n_neg_c} negative complete cases (needs 2 each)"
            ],
        )
    notes: Notes = []
    if dropped:
        notes.append(
            f"MRMC uses the {int(complete.sum())} cases with a reference scored by every reader in "
            f"every arm; {dropped} dropped"
        )
    methods: tuple[CovarianceMethod, ...] = ("jackknife", "delong")
    results = [
        mrmc_or(
            cube.pirads[idx][:, :, complete],
            y[complete],
            covariance=method,
            treatments=order,
            readers=cube.readers,
            confidence=confidence,
        )
        for method in methods
    ]
    return results, dropped, notes
