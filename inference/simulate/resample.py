"""The affine-only resampling ``mr_on_us`` that the displacement convention refers to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.simulate.specs import F64, SimulatedPair


def volume_to_grid(
    array: NDArray[np.generic],
    affine: F64,
    *,
    shape: Sequence[int],
    target_affine: F64,
    order: int = 1,
) -> NDArray[np.generic]:
    """Resample ``array`` onto another grid through world coordinates (0 outside the voxels' extent).

    ``order=0`` keeps the dtype (labels); otherwise the result is ``float32``.
    """
    m = np.linalg.solve(np.asarray(affine, dtype=np.float64), np.asarray(target_affine))
    src = np.asarray(array)
    out = ndimage.affine_transform(
        src if order == 0 else src.astype(np.float32),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(int(s) for s in shape),
        order=order,
        # "grid-constant", not "constant": the latter zeroes the last row of voxels whenever
        # rounding puts a sample a hair past the edge (even on the identical grid).
        mode="grid-constant",
        cval=0,
    )
    return out if order == 0 else np.asarray(out, dtype=np.float32)


def mr_resample_to_us(
    pair: SimulatedPair, array: NDArray[np.generic] | None = None, *, order: int = 1
) -> NDArray[np.generic]:
    """``mr_on_us``: an MR-grid volume (default ``pair.mr``) resampled onto the TRUS grid (affine only)."""
    arr = pair.mr if array is None else array
    target = pair.us_affine if pair.us_affine_mr is None else pair.us_affine_mr
    return volume_to_grid(
        arr, pair.mr_affine, shape=pair.us.shape, target_affine=target, order=order
    )
