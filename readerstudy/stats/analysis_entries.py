"""The entries of a ``StudyAnalysis``: one frozen dataclass per kind of result, each with what it compared."""

from __future__ import annotations

from dataclasses import dataclass

from readerstudy.stats._base import ResultMixin
from readerstudy.stats.agreement import FleissKappaResult, KappaResult
from readerstudy.stats.diagnostic import (
    CorrelationResult,
    DiagnosticAccuracy,
    LikertSummary,
    McNemarResult,
    Proportion,
)
from readerstudy.stats.rank_tests import RankTestResult
from readerstudy.stats.roc import DelongPairedTest, RocAuc, RocCurve


@dataclass(frozen=True)
class ReaderArmResult(ResultMixin):
    """Per reader and arm: AUC, ROC points, sensitivity/specificity per threshold, Likert, side."""

    reader: str
    reader_level: str
    arm: str
    n_cases: int
    n_scored: int
    n_scored_with_reference: int
    auc: RocAuc | None
    roc: RocCurve | None
    auc_note: str
    accuracy: tuple[DiagnosticAccuracy, ...]
    likert: LikertSummary
    side_agreement: Proportion


@dataclass(frozen=True)
class PairedAucEntry(ResultMixin):
    """DeLong test of one reader's AUC in ``arm_a`` vs ``arm_b`` (difference a - b) on complete pairs."""

    reader: str
    arm_a: str
    arm_b: str
    n_pairs: int
    n_incomplete_dropped: int
    test: DelongPairedTest | None
    note: str


@dataclass(frozen=True)
class KappaEntry(ResultMixin):
    """One Cohen's kappa: ``kind`` is reader_vs_reference, between_readers or within_reader;
    ``scale`` is dichotomised (PI-RADS 4-5 vs 1-3, unweighted), linear or quadratic (1..5)."""

    kind: str
    scale: str
    arm_a: str
    arm_b: str
    rater_a: str
    rater_b: str
    result: KappaResult


@dataclass(frozen=True)
class FleissEntry(ResultMixin):
    """Fleiss' kappa of all readers in one arm; ``scale`` dichotomised (0/1) or categorical (1..5)."""

    arm: str
    scale: str
    result: FleissKappaResult


@dataclass(frozen=True)
class RankTestEntry(ResultMixin):
    """A rank test with what it compared: ``group_a`` vs ``group_b`` (for Wilcoxon: a - b)."""

    reader: str
    arm: str
    group_a: str
    group_b: str
    variable: str
    result: RankTestResult
    note: str


@dataclass(frozen=True)
class SideEntry(ResultMixin):
    """Lesion-side agreement with the biopsy side, pooled over readers, in one arm."""

    arm: str
    agreement: Proportion


@dataclass(frozen=True)
class McNemarEntry(ResultMixin):
    """McNemar between arms on the same (reader, case) reads: side correct in arm_a vs arm_b."""

    arm_a: str
    arm_b: str
    result: McNemarResult


@dataclass(frozen=True)
class CorrelationEntry(ResultMixin):
    """Spearman of the readers' PI-RADS with the ISUP grade, pooled reads of one arm."""

    arm: str
    variable_x: str
    variable_y: str
    result: CorrelationResult
    note: str
