"""A simulated demo cohort: ``manifest.csv`` (:data:`inference.manifest.MANIFEST_COLUMNS`) and NIfTI
files, with plausible reference PI-RADS and biopsy fields consistent with the simulated lesions."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from inference.io import volume_save
from inference.manifest import MANIFEST_COLUMNS
from inference.simulate.folders import output_commit, output_fresh
from inference.simulate.pair import simulate_pair
from inference.simulate.specs import F64, LesionSpec, Side, SimulatedPair, Zone, sim_sources_load

_GLEASON = {1: "3+3", 2: "3+4", 3: "4+3", 4: "4+4", 5: "4+5"}


def _case_clinical(rng: np.random.Generator, pirads: int) -> tuple[list[LesionSpec], int]:
    """Lesions implied by a reference PI-RADS score, and the biopsy ISUP grade (0 = benign)."""
    sides: list[Side] = ["left", "right"]
    side = sides[int(rng.integers(0, 2))]
    zone: Zone = "pz" if rng.random() < 0.7 else "tz"
    if pirads <= 2:
        return [], 0
    if pirads == 3:
        les = [LesionSpec(side, zone, float(rng.uniform(3.5, 5.0)), float(rng.uniform(0.4, 0.6)))]
        p_sig, grades = 0.2, [2]
    elif pirads == 4:
        les = [LesionSpec(side, zone, float(rng.uniform(5.0, 7.0)), float(rng.uniform(0.7, 0.85)))]
        p_sig, grades = 0.6, [2, 3]
    else:
        les = [LesionSpec(side, zone, float(rng.uniform(7.5, 10.0)), float(rng.uniform(0.85, 1.0)))]
        if rng.random() < 0.3:
            other: Side = "right" if side == "left" else "left"
            les.append(LesionSpec(other, "pz", float(rng.uniform(4.0, 6.0)), 0.8))
        p_sig, grades = 0.9, [2, 3, 4, 5]
    if rng.random() < p_sig:
        isup = int(rng.choice(grades))
    else:
        isup = int(rng.random() < 0.4)  # benign, or insignificant ISUP 1
    return les, isup


def write_demo_cohort(
    out_dir: str | os.PathLike[str],
    *,
    n_cases: int,
    seed: int,
    yale_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a simulated demo cohort (manifest.csv + NIfTI files) and return the manifest path.

    Reference PI-RADS is spread over 1–5; PI-RADS 1–2 cases have no lesion, 3–5 have lesions of
    growing size and conspicuity. The biopsy fields follow: ISUP 0 (benign) → cspca ``no``, no
    Gleason, lesion side ``none``; ISUP 1 → ``no`` with 3+3; ISUP ≥ 2 → ``yes``. The lesion side is the
    side(s) of the simulated lesion(s) when the biopsy found cancer. With ``yale_dir`` every third case
    is built on a real T2 (anatomy real, lesions and TRUS simulated). Every row is ``synthetic=true``.
    """
    if not 1 <= n_cases <= 999:
        raise ValueError(f"n_cases must be in 1..999, got {n_cases}")
    sources = sim_sources_load(yale_dir) if yale_dir is not None else []
    rng = np.random.default_rng([int(seed), 7])
    pirads_all, clinical = _cohort_clinical(rng, n_cases)
    out, tmp = output_fresh(out_dir)
    try:
        rows = []
        for i, (pirads, (specs, isup)) in enumerate(zip(pirads_all, clinical)):
            code = f"SIM-{i + 1:03d}"
            src = sources[(i // 3) % len(sources)] if sources and i % 3 == 2 else None
            pair = simulate_pair(seed=int(seed) * 1000 + i, source=src, lesions=specs)
            row: dict[str, str] = {
                "case_code": code,
                "age": str(int(np.clip(round(rng.normal(66, 7)), 45, 85))),
                "reference_pirads": str(pirads),
                "cspca": "yes" if isup >= 2 else "no",
                "isup_grade": str(isup),
                "gleason": _GLEASON.get(isup, ""),
                "lesion_side": pair.lesion_side if isup > 0 else "none",
                "synthetic": "true",
            }
            row.update(_case_write(tmp, code=code, pair=pair))
            rows.append(row)
            if progress is not None:
                progress(i + 1, n_cases)
        with open(tmp / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        (tmp / "README.txt").write_text(
            "SIMULATED demo cohort written by inference.simulate (synthetic=true on every row).\n"
            "The TRUS volumes, lesions and clinical fields are simulated; no real patient is shown.\n"
        )
        output_commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "manifest.csv"


def _cohort_clinical(
    rng: np.random.Generator, n_cases: int
) -> tuple[list[int], list[tuple[list[LesionSpec], int]]]:
    """Reference PI-RADS per case and its (lesions, ISUP grade)."""
    base = [2, 4, 3, 5, 1, 4, 5, 3]
    pirads_all = [int(p) for p in rng.permutation(np.resize(base, n_cases))]
    clinical = [_case_clinical(rng, p) for p in pirads_all]
    isups = [c[1] for c in clinical]
    # A reader study needs both classes: force one positive and one negative when there is room.
    if n_cases >= 4 and not any(g >= 2 for g in isups):
        i = int(np.argmax(pirads_all))
        clinical[i] = (clinical[i][0] or [LesionSpec("right", "pz", 6.0, 0.8)], 2)
    if n_cases >= 4 and all(g >= 2 for g in [c[1] for c in clinical]):
        i = int(np.argmin(pirads_all))
        clinical[i] = (clinical[i][0], 0)
    return pirads_all, clinical


def _case_write(root: Path, *, code: str, pair: SimulatedPair) -> dict[str, str]:
    """Write one case's volumes and ``simulation.json`` under ``root/code``; return the manifest's
    file columns (paths relative to the manifest)."""
    case_dir = root / code
    paths: dict[str, tuple[NDArray[np.generic], F64]] = {
        "mr_t2": (pair.mr, pair.mr_affine),
        "trus": (pair.us, pair.us_affine),
        "mr_label": (pair.mr_label, pair.mr_affine),
        "trus_label": (pair.us_label, pair.us_affine),
        "mr_landmarks": (pair.mr_landmarks, pair.mr_affine),
        "trus_landmarks": (pair.us_landmarks, pair.us_affine),
    }
    columns: dict[str, str] = {}
    for col, (arr, aff) in paths.items():
        volume_save(case_dir / f"{col}.nii.gz", arr, aff)
        columns[col] = f"{code}/{col}.nii.gz"
    (case_dir / "simulation.json").write_text(
        json.dumps(
            {
                "synthetic": True,
                "seed": pair.seed,
                "source": pair.source,
                "landmarks": list(pair.landmark_names),
                "lesions": list(pair.lesions),
                "params": pair.params,
            },
            indent=1,
        )
    )
    return columns
