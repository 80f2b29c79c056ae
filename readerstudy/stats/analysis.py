"""The whole clinical-validation analysis of a reader study from one long table of reads.

``study_analyse(reads, reference="pirads")`` runs, per reader and arm, the ROC/AUC (DeLong), sensitivity
and specificity, Likert and lesion-side summaries; the paired tests between arms (DeLong, Wilcoxon,
McNemar); Cohen's kappa (reader vs reference, between readers, within reader across arms) and Fleiss'
kappa; Mann-Whitney junior vs senior; Spearman PI-RADS vs ISUP; and the Obuchowski-Rockette MRMC
analysis with jackknife and DeLong covariances. See ``readerstudy/stats/__init__.py`` for the input
columns and the output layout.

Missing data: every AUC uses every case the reader scored (and whose reference is known); paired tests
and kappas use complete pairs; MRMC uses the cases every reader scored in every arm. Each drop is counted
in the result and summarised in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from readerstudy.stats._base import ResultMixin
from readerstudy.stats.agreement import (
    FleissKappaResult,
    KappaResult,
    cohen_kappa,
    cohen_kappa_dichotomised,
    fleiss_kappa,
)
from readerstudy.stats.diagnostic import (
    CorrelationResult,
    DiagnosticAccuracy,
    LikertSummary,
    McNemarResult,
    Proportion,
    likert_summary,
    mcnemar_test,
    proportion_wilson,
    sensitivity_specificity,
    side_correct,
    spearman_correlation,
)
from readerstudy.stats.mrmc import CovarianceMethod, MrmcResult, mrmc_or
from readerstudy.stats.rank_tests import RankTestResult, mann_whitney_u, wilcoxon_signed_rank
from readerstudy.stats.roc import (
    DelongPairedTest,
    RocAuc,
    RocCurve,
    roc_auc_compare_paired,
    roc_auc_delong,
    roc_curve_points,
)

Reference = Literal["pirads", "biopsy"]
REQUIRED_COLUMNS = ("reader", "case", "arm", "pirads")
OPTIONAL_COLUMNS = (
    "reader_level",
    "likert",
    "side",
    "reference_pirads",
    "cspca",
    "biopsy_side",
    "isup",
)
CASE_COLUMNS = ("reference_pirads", "cspca", "biopsy_side", "isup")
ARM_ORDER = ("original", "registered", "fused")
# the reading form's 7-point diagnostic-confidence score (1 highly uncertain ... 7 highly certain)
LIKERT_SCALE: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
KAPPA_SCALES = ("dichotomised", "linear", "quadratic")
_TRUE = {"yes", "true", "1", "1.0", "y", "positive"}
_FALSE = {"no", "false", "0", "0.0", "n", "negative"}


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


def _bool_or_nan(value: Any) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return float("nan")
    if isinstance(value, (bool, np.bool_)):
        return float(bool(value))
    text = str(value).strip().lower()
    if text == "" or text == "nan":
        return float("nan")
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise ValueError(f"cspca must be yes/no, true/false, 1/0 or empty, got {value!r}")


def _numeric(
    series: pd.Series, *, name: str, allowed: Sequence[float] | None
) -> NDArray[np.float64]:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad_text = series.notna().to_numpy() & ~np.isfinite(values)
    if bad_text.any():
        example = series[bad_text].iloc[0]
        raise ValueError(f"column {name!r} has a non-numeric value: {example!r}")
    if allowed is not None:
        finite = values[np.isfinite(values)]
        outside = ~np.isin(finite, np.asarray(allowed, dtype=np.float64))
        if outside.any():
            raise ValueError(
                f"column {name!r} must be one of {tuple(allowed)} or missing, got {finite[outside][0]:g}"
            )
    return values


def _arm_order(arms: Sequence[str]) -> list[str]:
    known = [a for a in ARM_ORDER if a in arms]
    return known + sorted(a for a in arms if a not in ARM_ORDER)


def _case_values(
    df: pd.DataFrame, column: str, case_codes: NDArray[np.intp], cases: pd.Index
) -> pd.Series:
    """One value per case (NaN where no read carries one); two different values for a case are refused."""
    codes, uniques = pd.factorize(df[column])
    per_case = np.full(len(cases), -1, dtype=np.intp)
    present = codes >= 0
    per_case[case_codes[present]] = codes[present]
    conflict = present & (per_case[case_codes] != codes)
    if conflict.any():
        case = cases[case_codes[np.argmax(conflict)]]
        raise ValueError(
            f"column {column!r} differs between reads of case {case!r}: "
            "it describes the case and must be the same on every read"
        )
    values = (
        np.asarray(uniques, dtype=object)[np.maximum(per_case, 0)]
        if len(uniques)
        else (np.full(len(cases), None, dtype=object))
    )
    values[per_case < 0] = None
    return pd.Series(values, index=cases, dtype=object)


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
    if reference not in ("pirads", "biopsy"):
        raise ValueError(f"reference must be 'pirads' or 'biopsy', got {reference!r}")
    if not isinstance(reads, pd.DataFrame):
        raise ValueError("reads must be a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in reads.columns]
    if reference == "pirads" and "reference_pirads" not in reads.columns:
        missing.append("reference_pirads")
    if reference == "biopsy" and "cspca" not in reads.columns:
        missing.append("cspca")
    if missing:
        raise ValueError(f"reads is missing the column(s): {', '.join(missing)}")
    if reads.empty:
        raise ValueError("reads is empty: there is nothing to analyse")
    df = reads.copy()
    for col in ("reader", "case", "arm"):
        if df[col].isna().any():
            raise ValueError(
                f"column {col!r} has missing values; every read needs reader, case and arm"
            )
        df[col] = df[col].astype(str)
    notes: list[str] = []

    arm_list = list(arms) if arms is not None else _arm_order(sorted(df["arm"].unique()))
    unknown_arms = set(df["arm"].unique()) - set(arm_list)
    if unknown_arms:
        raise ValueError(f"reads have arms not listed in arms: {sorted(unknown_arms)}")
    if baseline_arm is None:
        baseline_arm = "original" if "original" in arm_list else arm_list[0]
    if baseline_arm not in arm_list:
        raise ValueError(f"baseline_arm {baseline_arm!r} is not one of the arms {arm_list}")
    others = [a for a in arm_list if a != baseline_arm]

    readers = sorted(df["reader"].unique())
    cases = pd.Index(sorted(df["case"].unique()))
    n_arm, n_reader, n_case = len(arm_list), len(readers), len(cases)
    ai = pd.Categorical(df["arm"], categories=arm_list).codes
    ri = pd.Categorical(df["reader"], categories=readers).codes
    ci = pd.Categorical(df["case"], categories=cases).codes.astype(np.intp)
    key = (ai.astype(np.int64) * n_reader + ri) * n_case + ci
    seen = np.zeros(n_arm * n_reader * n_case, dtype=bool)
    seen[key] = True
    if int(seen.sum()) < len(df):
        _, first = np.unique(key, return_index=True)
        row = df.iloc[int(np.setdiff1d(np.arange(len(df)), first)[0])]
        raise ValueError(
            f"reader {row['reader']!r} has more than one read of case {row['case']!r} in arm {row['arm']!r}"
        )

    def cube(values: NDArray[Any], fill: Any, dtype: Any) -> NDArray[Any]:
        out = np.full((n_arm, n_reader, n_case), fill, dtype=dtype)
        out[ai, ri, ci] = values
        return out

    pirads = cube(_numeric(df["pirads"], name="pirads", allowed=(1, 2, 3, 4, 5)), np.nan, float)
    has_likert = "likert" in df.columns
    likert = cube(
        _numeric(df["likert"], name="likert", allowed=tuple(likert_scale))
        if has_likert
        else np.full(len(df), np.nan),
        np.nan,
        float,
    )
    side = cube(
        df["side"].to_numpy(dtype=object) if "side" in df.columns else np.full(len(df), None),
        None,
        object,
    )

    levels: dict[str, str] = {}
    if "reader_level" in df.columns:
        lv = df[["reader", "reader_level"]].drop_duplicates()
        clash = lv["reader"][lv["reader"].duplicated()]
        if len(clash):
            raise ValueError(f"reader {clash.iloc[0]!r} has more than one reader_level")
        levels = {str(k): ("" if pd.isna(v) else str(v)) for k, v in lv.itertuples(index=False)}
    reader_levels = {r: levels.get(r, "") for r in readers}

    ref_pirads = (
        _numeric(
            _case_values(df, "reference_pirads", ci, cases),
            name="reference_pirads",
            allowed=(1, 2, 3, 4, 5),
        )  # fmt: skip
        if "reference_pirads" in df.columns
        else np.full(n_case, np.nan)
    )
    if reference == "pirads":
        truth = np.where(np.isfinite(ref_pirads), (ref_pirads >= positive_pirads) * 1.0, np.nan)
        reference_description = (
            f"clinical PI-RADS: positive when reference PI-RADS >= {positive_pirads:g}"
        )
    else:
        truth = np.array(
            [_bool_or_nan(v) for v in _case_values(df, "cspca", ci, cases)], dtype=np.float64
        )
        reference_description = "biopsy: positive when clinically significant cancer (csPCa) found"
    biopsy_side = (
        _case_values(df, "biopsy_side", ci, cases).to_numpy(dtype=object)
        if "biopsy_side" in df.columns
        else np.full(n_case, None, dtype=object)
    )
    isup = (
        _numeric(_case_values(df, "isup", ci, cases), name="isup", allowed=(0, 1, 2, 3, 4, 5))
        if "isup" in df.columns
        else np.full(n_case, np.nan)
    )
    known = np.isfinite(truth)
    n_unknown = int((~known).sum())
    if n_unknown:
        notes.append(
            f"{n_unknown} of {n_case} cases have no reference ({reference}) and are left out of "
            "AUC, sensitivity/specificity and MRMC"
        )
    y = truth == 1.0

    # --- per reader and arm
    reader_arms: list[ReaderArmResult] = []
    correct_side = side_correct(
        side.ravel(), np.broadcast_to(biopsy_side, side.shape).ravel()
    ).reshape(side.shape)
    for a, arm in enumerate(arm_list):
        for r, reader in enumerate(readers):
            scored = np.isfinite(pirads[a, r])
            use = scored & known
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
                auc_note = f"AUC undefined: {n_pos} positive and {int(use.sum()) - n_pos} negative scored cases"
                notes.append(f"reader {reader}, arm {arm}: {auc_note}")
            else:
                auc = roc_auc_delong(y[use], pirads[a, r][use], confidence=confidence)
                roc = roc_curve_points(y[use], pirads[a, r][use])
            accuracy = tuple(
                sensitivity_specificity(
                    y[use], pirads[a, r][use], threshold=t, confidence=confidence
                )
                for t in thresholds
            )
            known_side = np.isfinite(correct_side[a, r])
            reader_arms.append(
                ReaderArmResult(
                    reader=reader,
                    reader_level=reader_levels[reader],
                    arm=arm,
                    n_cases=n_case,
                    n_scored=n_scored,
                    n_scored_with_reference=int(use.sum()),
                    auc=auc,
                    roc=roc,
                    auc_note=auc_note,
                    accuracy=accuracy,
                    likert=likert_summary(likert[a, r], categories=tuple(likert_scale)),
                    side_agreement=proportion_wilson(
                        int(correct_side[a, r][known_side].sum()),
                        int(known_side.sum()),
                        confidence=confidence,
                    ),
                )
            )
    base = arm_list.index(baseline_arm)

    # --- paired DeLong per reader: every other arm vs the baseline
    delong: list[PairedAucEntry] = []
    for arm in others:
        a = arm_list.index(arm)
        for r, reader in enumerate(readers):
            both = known & np.isfinite(pirads[a, r]) & np.isfinite(pirads[base, r])
            dropped = int((known & ~both).sum())
            n_pos = int(y[both].sum())
            test: DelongPairedTest | None = None
            note = ""
            if n_pos == 0 or n_pos == int(both.sum()):
                note = f"undefined: {n_pos} positive and {int(both.sum()) - n_pos} negative complete pairs"
            else:
                test = roc_auc_compare_paired(
                    y[both], pirads[a, r][both], pirads[base, r][both], confidence=confidence
                )
            if dropped:
                notes.append(
                    f"DeLong {reader} {arm} vs {baseline_arm}: {int(both.sum())} complete pairs used, "
                    f"{dropped} dropped"
                )
            delong.append(
                PairedAucEntry(reader, arm, baseline_arm, int(both.sum()), dropped, test, note)
            )

    # --- kappa
    kappas: list[KappaEntry] = []

    def add_kappas(kind: str, arm_a: str, arm_b: str, ra: str, rb: str, xa: Any, xb: Any) -> None:
        results = (
            cohen_kappa_dichotomised(xa, xb, threshold=positive_pirads, confidence=confidence),
            cohen_kappa(xa, xb, weights="linear", confidence=confidence),
            cohen_kappa(xa, xb, weights="quadratic", confidence=confidence),
        )
        for scale, res in zip(KAPPA_SCALES, results):
            kappas.append(KappaEntry(kind, scale, arm_a, arm_b, ra, rb, res))

    has_ref_pirads = bool(np.isfinite(ref_pirads).any())
    for a, arm in enumerate(arm_list):
        for r, reader in enumerate(readers):
            if has_ref_pirads:
                add_kappas(
                    "reader_vs_reference", arm, arm, reader, "reference", pirads[a, r], ref_pirads
                )
        for r1, r2 in combinations(range(n_reader), 2):
            add_kappas(
                "between_readers", arm, arm, readers[r1], readers[r2], pirads[a, r1], pirads[a, r2]
            )
    for arm in others:
        a = arm_list.index(arm)
        for r, reader in enumerate(readers):
            add_kappas(
                "within_reader", arm, baseline_arm, reader, reader, pirads[a, r], pirads[base, r]
            )
    undefined_k = sum(1 for k in kappas if not k.result.defined)
    if undefined_k:
        notes.append(
            f"{undefined_k} of {len(kappas)} kappas are undefined (see each entry's reason)"
        )
    if not has_ref_pirads:
        notes.append("no reference PI-RADS: reader-vs-reference kappas are not computed")

    fleiss: list[FleissEntry] = []
    if n_reader > 2:
        for a, arm in enumerate(arm_list):
            ratings = pirads[a].T
            dich = np.where(np.isfinite(ratings), (ratings >= positive_pirads) * 1.0, np.nan)
            fleiss.append(FleissEntry(arm, "dichotomised", fleiss_kappa(dich, categories=(0, 1))))
            fleiss.append(FleissEntry(arm, "categorical", fleiss_kappa(ratings)))
            if fleiss[-1].result.n_incomplete_dropped:
                notes.append(
                    f"Fleiss' kappa, arm {arm}: {fleiss[-1].result.n_incomplete_dropped} cases not "
                    "scored by every reader are dropped"
                )

    # --- Wilcoxon per reader on Likert, arm vs baseline
    wilcoxon: list[RankTestEntry] = []
    mann: list[RankTestEntry] = []
    if has_likert:
        for arm in others:
            a = arm_list.index(arm)
            for r, reader in enumerate(readers):
                res = wilcoxon_signed_rank(likert[a, r], likert[base, r])
                if res.n_incomplete_dropped:
                    notes.append(
                        f"Wilcoxon {reader} {arm} vs {baseline_arm}: {res.n_incomplete_dropped} "
                        "incomplete pairs dropped"
                    )
                wilcoxon.append(RankTestEntry(reader, arm, arm, baseline_arm, "likert", res, ""))
        juniors = [i for i, r in enumerate(readers) if reader_levels[r] == "junior"]
        seniors = [i for i, r in enumerate(readers) if reader_levels[r] == "senior"]
        if juniors and seniors:
            for a, arm in enumerate(arm_list):
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
        else:
            notes.append("Mann-Whitney junior vs senior not computed: needs readers of both levels")
    else:
        notes.append("no likert column: Wilcoxon and Mann-Whitney are not computed")

    # --- lesion side
    sides: list[SideEntry] = []
    mcnemar: list[McNemarEntry] = []
    if any(v is not None for v in biopsy_side):
        for a, arm in enumerate(arm_list):
            flat = correct_side[a].ravel()
            ok = np.isfinite(flat)
            sides.append(
                SideEntry(
                    arm,
                    proportion_wilson(int(flat[ok].sum()), int(ok.sum()), confidence=confidence),
                )
            )
        for arm in others:
            a = arm_list.index(arm)
            mcnemar.append(
                McNemarEntry(
                    arm,
                    baseline_arm,
                    mcnemar_test(correct_side[a].ravel(), correct_side[base].ravel()),
                )
            )
    else:
        notes.append("no biopsy side known: lesion-side agreement is not computed")

    # --- Spearman PI-RADS vs ISUP
    spearman: list[CorrelationEntry] = []
    if np.isfinite(isup).any():
        for a, arm in enumerate(arm_list):
            xs = pirads[a].ravel()
            ys = np.tile(isup, n_reader)
            spearman.append(
                CorrelationEntry(
                    arm,
                    "pirads",
                    "isup",
                    spearman_correlation(xs, ys, confidence=confidence),
                    "reads pooled over readers; reads of the same case are not independent",
                )  # fmt: skip
            )

    # --- MRMC on the fully crossed complete cases
    mrmc: list[MrmcResult] = []
    complete = known & np.isfinite(pirads).all(axis=(0, 1))
    mrmc_dropped = int(n_case - complete.sum())
    order = others + [baseline_arm]
    idx = [arm_list.index(a) for a in order]
    n_pos_c = int(y[complete].sum())
    n_neg_c = int(complete.sum()) - n_pos_c
    if n_arm < 2 or n_reader < 2:
        notes.append("MRMC not computed: needs at least two arms and two readers")
    elif n_pos_c < 2 or n_neg_c < 2:
        notes.append(
            f"MRMC not computed: {n_pos_c} positive and {n_neg_c} negative complete cases (needs 2 each)"
        )
    else:
        if mrmc_dropped:
            notes.append(
                f"MRMC uses the {int(complete.sum())} cases with a reference scored by every reader in "
                f"every arm; {mrmc_dropped} dropped"
            )
        methods: tuple[CovarianceMethod, ...] = ("jackknife", "delong")
        for method in methods:
            mrmc.append(
                mrmc_or(
                    pirads[idx][:, :, complete],
                    y[complete],
                    covariance=method,
                    treatments=order,
                    readers=readers,
                    confidence=confidence,
                )
            )

    return StudyAnalysis(
        reference=reference,
        reference_description=reference_description,
        confidence=confidence,
        arms=tuple(arm_list),
        baseline_arm=baseline_arm,
        readers=tuple(readers),
        reader_levels=reader_levels,
        n_reads=len(df),
        n_cases=n_case,
        n_positive=int((truth == 1.0).sum()),
        n_negative=int((truth == 0.0).sum()),
        n_reference_unknown=n_unknown,
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
