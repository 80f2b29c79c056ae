"""The whole clinical-validation analysis of a reader study from one long table of reads.

``study_analyse(reads, reference="pirads")`` runs, per reader and arm, the ROC/AUC (DeLong), sensitivity
and specificity, Likert and lesion-side summaries; the paired tests between arms (DeLong, Wilcoxon,
McNemar); Cohen's kappa (reader vs reference, between readers, within reader across arms) and Fleiss'
kappa; Mann-Whitney junior vs senior; Spearman PI-RADS vs ISUP; and the Obuchowski-Rockette MRMC
analysis with jackknife and DeLong covariances. See ``readerstudy/stats/__init__.py`` for the input
columns and the output layout.

The work is done in named stages, each ≤ 80 lines: ``analysis_input.reads_cube`` (check the table, lay
it out as ``(arm, reader, case)`` arrays), then in ``analysis_stages``: ``reader_diagnostics``,
``paired_auc``, ``agreement``, ``likert_tests``, ``localisation``, ``correlation``, ``mrmc``; this module
assembles them. Missing data: every AUC uses every case the reader scored (and whose reference is
known); paired tests and kappas use complete pairs; MRMC uses the cases every reader scored in every
arm. Each drop is counted in the result and summarised in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from readerstudy.stats import analysis_stages as stages
from readerstudy.stats._base import ResultMixin
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
from readerstudy.stats.analysis_input import LIKERT_SCALE, Reference, reads_cube
from readerstudy.stats.mrmc import MrmcResult


@dataclass(frozen=True)
class StudyAnalysis(ResultMixin):
    """Everything the analysis page shows; ``to_dict()`` gives strict JSON (NaN and inf become null)."""

    reference: str
    reference_description: str
    confidence: float
    arms: tuple[str, ...]
    baseline_arm: str
    readers: tuple[str, ...]
    reader_levels: dict[str, str]
    n_reads: int
    n_cases: int
    n_positive: int
    n_negative: int
    n_reference_unknown: int
    thresholds: tuple[float, ...]
    reader_arms: tuple[ReaderArmResult, ...]
    delong_paired: tuple[PairedAucEntry, ...]
    kappa: tuple[KappaEntry, ...]
    fleiss: tuple[FleissEntry, ...]
    wilcoxon: tuple[RankTestEntry, ...]
    mann_whitney: tuple[RankTestEntry, ...]
    side_agreement: tuple[SideEntry, ...]
    side_mcnemar: tuple[McNemarEntry, ...]
    spearman: tuple[CorrelationEntry, ...]
    mrmc: tuple[MrmcResult, ...]
    mrmc_n_cases_dropped: int
    notes: tuple[str, ...]


def study_analyse(
    reads: pd.DataFrame,
    *,
    reference: Reference = "pirads",
    arms: Sequence[str] | None = None,
    baseline_arm: str | None = None,
    thresholds: Sequence[float] = (3, 4),
    positive_pirads: float = 4,
    likert_scale: Sequence[int] = LIKERT_SCALE,
    confidence: float = 0.95,
) -> StudyAnalysis:
    """Run the paper's analysis on a long table of reads (one row per reader x case x arm).

    ``reference="pirads"``: a case is positive when ``reference_pirads >= positive_pirads`` (4-5 vs 1-3);
    ``"biopsy"``: positive when ``cspca`` is yes. Cases with an unknown reference are left out of the
    ROC/sensitivity/MRMC parts (counted in ``n_reference_unknown``). ``arms`` fixes the arm order
    (default: original, registered, fused, then others); every other arm is compared with
    ``baseline_arm`` (default ``original`` or the first arm). ``likert_scale`` lists the allowed Likert
    values (default the 7-point scale 1..7). Raises ``ValueError`` with a clear message
    for malformed input; nothing is written anywhere.
    """
    cube = reads_cube(
        reads,
        reference=reference,
        arms=arms,
        baseline_arm=baseline_arm,
        positive_pirads=positive_pirads,
        likert_scale=likert_scale,
    )
    reader_arms, reader_notes = stages.reader_diagnostics(
        cube, thresholds=thresholds, likert_scale=likert_scale, confidence=confidence
    )
    delong, delong_notes = stages.paired_auc(cube, confidence=confidence)
    kappas, fleiss, kappa_notes = stages.agreement(
        cube, positive_pirads=positive_pirads, confidence=confidence
    )
    wilcoxon, mann, likert_notes = stages.likert_tests(cube)
    sides, mcnemar, side_notes = stages.localisation(cube, confidence=confidence)
    spearman = stages.correlation(cube, confidence=confidence)
    mrmc, mrmc_dropped, mrmc_notes = stages.mrmc(cube, confidence=confidence)
    notes = [
        *stages.reference_notes(cube),
        *reader_notes,
        *delong_notes,
        *kappa_notes,
        *likert_notes,
        *side_notes,
        *mrmc_notes,
    ]
    return StudyAnalysis(
        reference=reference,
        reference_description=cube.reference_description,
        confidence=confidence,
        arms=tuple(cube.arms),
        baseline_arm=cube.baseline_arm,
        readers=tuple(cube.readers),
        reader_levels=cube.reader_levels,
        n_reads=cube.n_reads,
        n_cases=cube.n_case,
        n_positive=int((cube.truth == 1.0).sum()),
        n_negative=int((cube.truth == 0.0).sum()),
        n_reference_unknown=int((~cube.known).sum()),
        thresholds=tuple(float(t) for t in thresholds),
        reader_arms=tuple(reader_arms),
        delong_paired=tuple(delong),
        kappa=tuple(kappas),
        fleiss=tuple(fleiss),
        wilcoxon=tuple(wilcoxon),
        mann_whitney=tuple(mann),
        side_agreement=tuple(sides),
        side_mcnemar=tuple(mcnemar),
        spearman=tuple(spearman),
        mrmc=tuple(mrmc),
        mrmc_n_cases_dropped=mrmc_dropped,
        notes=tuple(notes),
    )
