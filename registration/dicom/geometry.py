"""Voxel grids in patient space: the LPS (DICOM) to RAS (NIfTI) flip, the geometry stored on a
series row, and the corner positions that decide whether two grids are the same."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def geometry_from_affine(affine: NDArray[np.floating], shape: Sequence[int]) -> dict[str, Any]:
    """Shape, spacing, direction (columns i, j, k), origin and affine, as JSON-able lists (RAS)."""
    aff = np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    direction = aff[:3, :3] / spacing
    return {
        "shape": [int(s) for s in shape],
        "spacing": [float(s) for s in spacing],
        "direction": direction.tolist(),
        "origin": aff[:3, 3].tolist(),
        "affine": aff.tolist(),
    }


def corners_world(affine: NDArray[np.floating], shape: Sequence[int]) -> NDArray[np.float64]:
    """RAS world positions (mm) of the 8 corner voxel centres of a grid."""
    ni, nj, nk = (int(s) - 1 for s in shape)
    idx = np.array(
        [[i, j, k, 1] for i in (0, ni) for j in (0, nj) for k in (0, nk)], dtype=np.float64
    )
    return (np.asarray(affine, dtype=np.float64) @ idx.T).T[:, :3]
