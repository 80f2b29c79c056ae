"""Stage 1 of ``study_analyse``: the long table of reads, checked, as one ``ReadCube``.

Every later stage reads the cube: per-read values as ``(arm, reader, case)`` arrays and per-case
values (reference, truth, biopsy side, ISUP) as ``(case,)`` arrays, so that no stage goes back to the
table. The checks raise ``ValueError`` with a message fit to show a user, in the order a user would
fix them: columns, arms, duplicate reads, values, case-level agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from readerstudy.stats.diagnostic import side_correct

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
_TRUE = {"yes", "true", "1", "1.0", "y", "positive"}
_FALSE = {"no", "false", "0", "0.0", "n", "negative"}


@dataclass(frozen=True)
class ReadCube:
    """The reads of a study as arrays: ``pirads[a, r, c]`` is reader ``r``'s score of case ``c`` in
    arm ``a`` (NaN: not scored); ``truth[c]`` is 1/0/NaN under the chosen reference."""

    reference: str
    reference_description: str
    arms: list[str]
    baseline_arm: str
    readers: list[str]
    cases: pd.Index
    reader_levels: dict[str, str]
    n_reads: int
    pirads: NDArray[np.float64]
    likert: NDArray[np.float64]
    has_likert: bool
    correct_side: NDArray[np.float64]
    ref_pirads: NDArray[np.float64]
    truth: NDArray[np.float64]
    biopsy_side: NDArray[Any]
    isup: NDArray[np.float64]

    @property
    def others(self) -> list[str]:
        """The arms compared with the baseline, in arm order."""
        return [a for a in self.arms if a != self.baseline_arm]

    @property
    def base(self) -> int:
        return self.arms.index(self.baseline_arm)

    @property
    def n_case(self) -> int:
        return len(self.cases)

    @property
    def known(self) -> NDArray[np.bool_]:
        return np.isfinite(self.truth)

    @property
    def y(self) -> NDArray[np.bool_]:
        return self.truth == 1.0


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


def _reads_checked(reads: pd.DataFrame, *, reference: str) -> pd.DataFrame:
    """A copy of the table with reader, case and arm as text, after the column checks."""
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
    return df


def _arms_resolve(
    df: pd.DataFrame, *, arms: Sequence[str] | None, baseline_arm: str | None
) -> tuple[list[str], str]:
    arm_list = list(arms) if arms is not None else _arm_order(sorted(df["arm"].unique()))
    unknown_arms = set(df["arm"].unique()) - set(arm_list)
    if unknown_arms:
        raise ValueError(f"reads have arms not listed in arms: {sorted(unknown_arms)}")
    if baseline_arm is None:
        baseline_arm = "original" if "original" in arm_list else arm_list[0]
    if baseline_arm not in arm_list:
        raise ValueError(f"baseline_arm {baseline_arm!r} is not one of the arms {arm_list}")
    return arm_list, baseline_arm


def _cube_index(
    df: pd.DataFrame, arms: list[str], readers: list[str], cases: pd.Index
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.intp]]:
    """Each read's (arm, reader, case) position; a second read of the same cell is refused."""
    n_arm, n_reader, n_case = len(arms), len(readers), len(cases)
    ai = pd.Categorical(df["arm"], categories=arms).codes
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
    return ai, ri, ci


def _reader_levels(df: pd.DataFrame, readers: list[str]) -> dict[str, str]:
    levels: dict[str, str] = {}
    if "reader_level" in df.columns:
        lv = df[["reader", "reader_level"]].drop_duplicates()
        clash = lv["reader"][lv["reader"].duplicated()]
        if len(clash):
            raise ValueError(f"reader {clash.iloc[0]!r} has more than one reader_level")
        levels = {str(k): ("" if pd.isna(v) else str(v)) for k, v in lv.itertuples(index=False)}
    return {r: levels.get(r, "") for r in readers}


def _case_columns(
    df: pd.DataFrame,
    ci: NDArray[np.intp],
    cases: pd.Index,
    *,
    reference: str,
    positive_pirads: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], str, NDArray[Any], NDArray[np.float64]]:
    """Per case: reference PI-RADS, truth (1/0/NaN), its description, biopsy side and ISUP."""
    n_case = len(cases)
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
        description = f"clinical PI-RADS: positive when reference PI-RADS >= {positive_pirads:g}"
    else:
        truth = np.array(
            [_bool_or_nan(v) for v in _case_values(df, "cspca", ci, cases)], dtype=np.float64
        )
        description = "biopsy: positive when clinically significant cancer (csPCa) found"
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
    return ref_pirads, truth, description, biopsy_side, isup


def reads_cube(
    reads: pd.DataFrame,
    *,
    reference: str,
    arms: Sequence[str] | None,
    baseline_arm: str | None,
    positive_pirads: float,
    likert_scale: Sequence[int],
) -> ReadCube:
    """Check the table of reads (see ``readerstudy.stats`` for its columns) and lay it out as a cube."""
    df = _reads_checked(reads, reference=reference)
    arm_list, baseline = _arms_resolve(df, arms=arms, baseline_arm=baseline_arm)
    readers = sorted(df["reader"].unique())
    cases = pd.Index(sorted(df["case"].unique()))
    ai, ri, ci = _cube_index(df, arm_list, readers, cases)
    shape = (len(arm_list), len(readers), len(cases))

    def cube(values: NDArray[Any], fill: Any, dtype: Any) -> NDArray[Any]:
        out = np.full(shape, fill, dtype=dtype)
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
    reader_levels = _reader_levels(df, readers)
    ref_pirads, truth, description, biopsy_side, isup = _case_columns(
        df, ci, cases, reference=reference, positive_pirads=positive_pirads
    )
    correct_side = side_correct(
        side.ravel(), np.broadcast_to(biopsy_side, side.shape).ravel()
    ).reshape(side.shape)
    return ReadCube(
        reference=reference,
        reference_description=description,
        arms=arm_list,
        baseline_arm=baseline,
        readers=readers,
        cases=cases,
        reader_levels=reader_levels,
        n_reads=len(df),
        pirads=pirads,
        likert=likert,
        has_likert=has_likert,
        correct_side=correct_side,
        ref_pirads=ref_pirads,
        truth=truth,
        biopsy_side=biopsy_side,
        isup=isup,
    )
