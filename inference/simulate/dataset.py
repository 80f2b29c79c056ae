"""DeepReg / µ-RegPro paired training folders of simulated pairs (moving = MR, fixed = TRUS)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from inference.io import volume_save
from inference.simulate.folders import output_commit, output_fresh
from inference.simulate.pair import simulate_pair
from inference.simulate.resample import mr_resample_to_us
from inference.simulate.specs import (
    F64,
    SIM_VERSION,
    U8,
    SimSource,
    SimulatedPair,
    sim_sources_load,
)


def _labels_4d(gland: U8, landmarks: U8, n: int) -> U8:
    out = np.zeros((*gland.shape, n + 1), dtype=np.uint8)
    out[..., 0] = gland > 0
    for k in range(1, n + 1):
        out[..., k] = landmarks == k
    return out


def write_pair_deepreg(
    pair: SimulatedPair,
    *,
    out_dir: str | os.PathLike[str],
    name: str,
    moving_grid: Literal["fixed", "own"] = "fixed",
    with_displacement: bool = False,
) -> dict[str, str]:
    """Write one pair into a DeepReg / µ-RegPro paired folder (moving = MR, fixed = TRUS).

    Files ``<role>/<name>.nii.gz`` for roles moving_images, fixed_images, moving_labels,
    fixed_labels (4-D, channel 0 gland, channel k landmark k), and with ``with_displacement``
    displacements (X, Y, Z, 3) in fixed voxels. With ``moving_grid="fixed"`` the MR and its labels are resampled onto the TRUS grid
    (affine only; labels by nearest neighbour), so the displacement applies to them directly.
    """
    if moving_grid not in ("fixed", "own"):
        raise ValueError(f"moving_grid must be 'fixed' or 'own', got {moving_grid!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad pair name {name!r}")
    root = Path(out_dir)
    n = len(pair.landmark_names)
    if moving_grid == "fixed":
        mov = np.asarray(mr_resample_to_us(pair), dtype=np.float32)
        mov_gl = np.asarray(mr_resample_to_us(pair, pair.mr_label, order=0), dtype=np.uint8)
        mov_lm = np.asarray(mr_resample_to_us(pair, pair.mr_landmarks, order=0), dtype=np.uint8)
        mov_aff = pair.us_affine
    else:
        mov, mov_gl, mov_lm, mov_aff = pair.mr, pair.mr_label, pair.mr_landmarks, pair.mr_affine
    files: dict[str, tuple[NDArray[np.generic], F64]] = {
        "moving_images": (mov, mov_aff),
        "fixed_images": (pair.us, pair.us_affine),
        "moving_labels": (_labels_4d(mov_gl, mov_lm, n), mov_aff),
        "fixed_labels": (_labels_4d(pair.us_label, pair.us_landmarks, n), pair.us_affine),
    }
    if with_displacement:
        files["displacements"] = (np.moveaxis(pair.displacement, 0, -1), pair.us_affine)
    written: dict[str, str] = {}
    for role, (arr, aff) in files.items():
        p = volume_save(root / role / f"{name}.nii.gz", arr, aff)
        written[role] = str(p.relative_to(root))
    return written


def write_dataset(
    out_dir: str | os.PathLike[str],
    *,
    n_pairs: int,
    seed: int,
    yale_dir: str | os.PathLike[str] | None = None,
    sources: Sequence[SimSource] = (),
    real_fraction: float = 0.5,
    moving_grid: Literal["fixed", "own"] = "own",
    frame: Literal["own", "shared"] = "own",
    with_displacement: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n_pairs`` simulated pairs in the DeepReg paired layout, plus ``dataset.json``.

    Pair ``i`` uses seed ``seed * 100_003 + i``; with real sources (``yale_dir`` and/or ``sources``)
    about ``real_fraction`` of the pairs are built on them (round robin), the rest on phantoms.
    ``frame="own"`` (default) puts each TRUS in its own frame (see :func:`simulate_pair`);
    ``moving_grid="fixed"`` stores the MR pre-aligned onto the TRUS grid through the ground-truth
    frame (µ-RegPro style), ``"own"`` (default) keeps the MR grid and scanner affine. Built in a
    temporary sibling folder and moved into place at the end, so a failure leaves nothing behind.
    """
    if not 1 <= n_pairs <= 100_000:
        raise ValueError(f"n_pairs must be in 1..100000, got {n_pairs}")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction must be in 0..1, got {real_fraction}")
    sources = [*(sim_sources_load(yale_dir) if yale_dir is not None else []), *sources]
    out, tmp = output_fresh(out_dir)
    try:
        entries = []
        n_real = 0
        for i in range(n_pairs):
            pair_seed = int(seed) * 100_003 + i
            use_real = bool(sources) and (n_real < round(real_fraction * (i + 1)))
            src = sources[n_real % len(sources)] if use_real else None
            n_real += int(use_real)
            pair = simulate_pair(seed=pair_seed, source=src, frame=frame)
            name = f"case{i:06d}"
            files = write_pair_deepreg(
                pair,
                out_dir=tmp,
                name=name,
                moving_grid=moving_grid,
                with_displacement=with_displacement,
            )
            entries.append(
                {
                    "name": name,
                    "seed": pair_seed,
                    "source": pair.source,
                    "landmarks": list(pair.landmark_names),
                    "lesions": list(pair.lesions),
                    "params": pair.params,
                    "files": files,
                    "synthetic": True,
                }
            )
            if progress is not None:
                progress(i + 1, n_pairs)
        meta = {
            "synthetic": True,
            "description": "SIMULATED MR/TRUS pairs from inference.simulate (not real TRUS data)",
            "generator": f"inference.simulate v{SIM_VERSION}",
            "seed": int(seed),
            "layout": "DeepReg paired: moving=MR, fixed=TRUS; labels 4-D ch0 gland, ch k landmark k",
            "moving_grid": moving_grid,
            "frame": frame,
            "displacement": "(X,Y,Z,3) fixed voxels; warped(p) = moving_on_fixed(p + u(p)), "
            "moving_on_fixed through the ground-truth frame (params.frame_to_mr_world)",
            "pairs": entries,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=1))
        output_commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
