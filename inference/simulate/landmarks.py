"""Landmarks: the same anatomical points as small spheres on both grids.

Chosen among the anatomy's candidates (lesions, cysts and calcifications first, as they are
visible; then zone points), well apart; rasterised as one integer volume per side (value ``k`` =
landmark ``k``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.simulate.phantom import Phantom
from inference.simulate.real_anatomy import RealAnatomy
from inference.simulate.specs import F32, F64, U8

_VISIBLE = ("lesion", "cyst", "calc")


def landmarks_choose(
    rng: np.random.Generator, candidates: list[tuple[str, F64]], n: int, min_sep: float
) -> list[tuple[str, F64]]:
    """Lesion/cyst/calcification points first (they are visible), then zone points, well apart.

    The separation is relaxed step by step (never below two maximal radii) until ``n`` are found.
    """
    visible = [c for c in candidates if c[0].startswith(_VISIBLE)]
    others = [c for c in candidates if c not in visible]
    order = [visible[i] for i in rng.permutation(len(visible))] + [
        others[i] for i in rng.permutation(len(others))
    ]
    chosen: list[tuple[str, F64]] = []
    for sep in (min_sep, 0.5 * (min_sep + 7.5), 7.5):
        chosen = []
        for name, p in order:
            if all(np.linalg.norm(p - q) >= sep for _, q in chosen):
                chosen.append((name, p))
            if len(chosen) == n:
                return chosen
    raise RuntimeError(f"only {len(chosen)} separated landmark candidates for {n} landmarks")


def landmarks_raster(pts: F32, centres: Sequence[F64], radii: Sequence[float]) -> U8:
    out = np.zeros(pts.shape[1:], dtype=np.uint8)
    for k, (cw, r) in enumerate(zip(centres, radii), start=1):
        d2 = sum((pts[i] - np.float32(cw[i])) ** 2 for i in range(3))
        out[d2 <= np.float32(r * r)] = k
    return out


# ------------------------------------------------------------------------------------------------
# Ultrasound image formation


def landmarks_place(
    rng: np.random.Generator,
    anatomy: Phantom | RealAnatomy,
    *,
    n: int,
    mr_pts: F32,
    us_pts: F32,
) -> tuple[tuple[str, ...], list[float], U8, U8]:
    """``n`` landmarks rasterised on the MR grid (world points ``mr_pts`` (3, X, Y, Z)) and on the
    TRUS grid (``us_pts`` (3, X', Y', Z'): the MR world points that the TRUS voxels show).

    Returns the names, the sphere radii (mm), the MR and the TRUS landmark volumes (``uint8``).
    """
    if mr_pts.shape[0] != 3 or us_pts.shape[0] != 3:
        raise ValueError(
            f"points must be (3, X, Y, Z), got shapes {mr_pts.shape} and {us_pts.shape}"
        )
    cands = anatomy.landmark_candidates()
    # Zone points are nominal positions; keep those that the (perturbed) gland really contains.
    cand_pts = np.array([p for _, p in cands], dtype=np.float32).T
    inside = anatomy.props(cand_pts).gland_soft > 0.7
    cands = [c for c, ok in zip(cands, inside) if ok or c[0].startswith(_VISIBLE)]
    chosen = landmarks_choose(rng, cands, n, min_sep=9.0)
    radii = [float(rng.uniform(2.5, 3.5)) for _ in chosen]
    centres = [p for _, p in chosen]
    mr_lm = landmarks_raster(mr_pts, centres, radii)
    us_lm = landmarks_raster(us_pts, centres, radii)
    return tuple(name for name, _ in chosen), radii, mr_lm, us_lm
