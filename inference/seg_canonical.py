"""Canonical orientation and the millimetre in-plane window of the real-T2 gland segmenter.

Real imports come in any orientation, voxel size and field of view, while the segmenter is trained on
PROMISE12 volumes in the LPS-ordered axial convention of :func:`inference.datasets.promise12_load`
(voxel axis 0 runs patient right → left, axis 1 anterior → posterior, axis 2 inferior → superior).
So every volume is first **reoriented** by its affine to that convention (axes permuted and flipped
only, never interpolated: an oblique acquisition keeps its obliquity, which the training rotations
cover), then each axial slice is **resampled** to a fixed millimetre spacing on a fixed-size window
centred on the slice (or on a given point). The window's probability map goes back to the input grid
through the same mapping, inverted.

In-plane 2-D slices are ``(H, W) = (canonical X, canonical Y)`` tensors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "CANONICAL_DIRECTIONS",
    "CanonicalView",
    "antialias",
    "canonical_view",
    "from_canonical",
    "to_canonical",
    "window_sample",
    "window_theta",
]

# World (RAS+) direction of each canonical voxel axis: L, P, S — the DICOM LPS order.
CANONICAL_DIRECTIONS = np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CanonicalView:
    """How an input grid maps onto the canonical one.

    ``canonical = flip(transpose(input, perm), flip)``: canonical axis ``k`` is input axis
    ``perm[k]``, reversed when ``flip[k]``. ``spacing`` is the voxel size (mm) along the canonical
    axes; ``obliquity_deg`` the largest angle between an input axis and its canonical direction.
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    spacing: tuple[float, float, float]
    obliquity_deg: float


def canonical_view(affine: NDArray[np.floating]) -> CanonicalView:
    """The axis permutation and flips that bring a RAS+ ``affine``'s grid closest to LPS-ordered.

    The permutation maximises the summed ``|cos|`` between each input axis and its canonical
    direction, so an oblique scan goes to the nearest orthogonal orientation.

    Raises:
        ValueError: ``affine`` is not 4x4 or is singular.
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {a.shape}")
    lin = a[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    if np.any(spacing <= 0) or abs(np.linalg.det(lin)) < 1e-9:
        raise ValueError(f"affine is singular (voxel sizes {tuple(spacing.round(4))})")
    dirs = lin / spacing  # column i: world direction of input axis i
    cos = CANONICAL_DIRECTIONS @ dirs  # [k, i]: canonical axis k vs input axis i
    best = max(
        itertools.permutations(range(3)), key=lambda p: sum(abs(cos[k, p[k]]) for k in range(3))
    )
    flip = tuple(bool(cos[k, best[k]] < 0) for k in range(3))
    angles = [np.degrees(np.arccos(min(1.0, abs(cos[k, best[k]])))) for k in range(3)]
    return CanonicalView(
        perm=(int(best[0]), int(best[1]), int(best[2])),
        flip=(flip[0], flip[1], flip[2]),
        spacing=(float(spacing[best[0]]), float(spacing[best[1]]), float(spacing[best[2]])),
        obliquity_deg=float(max(angles)),
    )


def to_canonical(volume: NDArray[np.generic], view: CanonicalView) -> NDArray[np.generic]:
    """Input ``(X, Y, Z)`` -> canonical ``(L, P, S)``-ordered array (a view; no interpolation)."""
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise ValueError(f"volume must be 3-D (X, Y, Z), got shape {arr.shape}")
    out = np.transpose(arr, view.perm)
    for k in range(3):
        if view.flip[k]:
            out = np.flip(out, axis=k)
    return out


def from_canonical(volume: NDArray[np.generic], view: CanonicalView) -> NDArray[np.generic]:
    """Inverse of :func:`to_canonical`: canonical ``(L, P, S)`` array -> the input grid's order."""
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise ValueError(f"volume must be 3-D, got shape {arr.shape}")
    for k in range(3):
        if view.flip[k]:
            arr = np.flip(arr, axis=k)
    return np.ascontiguousarray(np.transpose(arr, np.argsort(view.perm)))


def antialias(
    volume: NDArray[np.floating], spacing: tuple[float, float], target_mm: float
) -> NDArray[np.float32]:
    """Blur the in-plane axes of ``(X, Y, Z)`` before downsampling them to ``target_mm``.

    Bilinear sampling of a 0.5 mm scan on a 1.25 mm grid aliases its noise; a Gaussian of
    ``σ = 0.5·sqrt(r² − 1)`` voxels (``r`` = target / source spacing) removes what the coarser grid
    cannot hold. Axes that are not downsampled are left alone.
    """
    sig = [0.5 * float(np.sqrt(max((target_mm / s) ** 2 - 1.0, 0.0))) for s in spacing]
    arr = np.asarray(volume, dtype=np.float32)
    if max(sig) < 0.2:
        return arr
    return np.asarray(ndimage.gaussian_filter(arr, (sig[0], sig[1], 0.0)), dtype=np.float32)


def window_theta(
    *,
    src_hw: tuple[int, int],
    src_spacing: tuple[float, float],
    dst_hw: tuple[int, int],
    dst_spacing: tuple[float, float],
    matrix: torch.Tensor | None = None,
    centre_mm: torch.Tensor | None = None,
) -> torch.Tensor:
    """``theta (B, 2, 3)`` for ``F.affine_grid(..., align_corners=False)`` sampling ``src`` on ``dst``.

    Millimetre positions are measured from each grid's centre along ``(H, W)``; a ``dst`` pixel at
    ``q`` mm samples ``src`` at ``p = matrix · q + centre_mm``. ``matrix (B, 2, 2)`` (rotation,
    scaling, flips; identity when ``None``) and ``centre_mm (B, 2)`` (zero when ``None``) set ``B``.
    To map back, swap ``src``/``dst`` and pass ``matrix⁻¹`` and ``−matrix⁻¹ · centre_mm``.
    """
    if len(src_hw) != 2 or len(dst_hw) != 2:
        raise ValueError(f"src_hw and dst_hw must have 2 entries, got {src_hw} and {dst_hw}")
    b = 1
    if matrix is not None:
        if matrix.ndim != 3 or tuple(matrix.shape[1:]) != (2, 2):
            raise ValueError(f"matrix must be (B, 2, 2), got {tuple(matrix.shape)}")
        b = int(matrix.shape[0])
    if centre_mm is not None:
        if centre_mm.ndim != 2 or centre_mm.shape[1] != 2:
            raise ValueError(f"centre_mm must be (B, 2), got {tuple(centre_mm.shape)}")
        b = max(b, int(centre_mm.shape[0]))
    m = torch.eye(2, dtype=torch.float64).expand(b, 2, 2) if matrix is None else matrix.double()
    c = torch.zeros(b, 2, dtype=torch.float64) if centre_mm is None else centre_mm.double()
    # normalised coordinate u ∈ (−1, 1) ↔ mm: q = u · (n / 2) · spacing, per axis
    d_dst = torch.tensor([dst_hw[0] / 2 * dst_spacing[0], dst_hw[1] / 2 * dst_spacing[1]])
    d_src = torch.tensor([src_hw[0] / 2 * src_spacing[0], src_hw[1] / 2 * src_spacing[1]])
    lin_hw = m * d_dst.double().view(1, 1, 2) / d_src.double().view(1, 2, 1)
    t_hw = c / d_src.double().view(1, 2)
    # affine_grid orders coordinates (x, y) = (W, H): reverse both axes
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, :, :2] = lin_hw.flip(1).flip(2)
    theta[:, :, 2] = t_hw.flip(1)
    return theta.float()


def window_sample(
    slices: torch.Tensor,
    *,
    src_spacing: tuple[float, float],
    dst_hw: tuple[int, int],
    dst_spacing: tuple[float, float],
    matrix: torch.Tensor | None = None,
    centre_mm: torch.Tensor | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample ``slices (B, C, H, W)`` onto ``(B, C, *dst_hw)``; outside the source is 0."""
    if slices.ndim != 4:
        raise ValueError(f"slices must be (B, C, H, W), got {tuple(slices.shape)}")
    theta = window_theta(
        src_hw=(int(slices.shape[2]), int(slices.shape[3])),
        src_spacing=src_spacing,
        dst_hw=dst_hw,
        dst_spacing=dst_spacing,
        matrix=matrix,
        centre_mm=centre_mm,
    )
    if theta.shape[0] == 1 and slices.shape[0] > 1:
        theta = theta.expand(slices.shape[0], 2, 3)
    size = [int(slices.shape[0]), int(slices.shape[1]), int(dst_hw[0]), int(dst_hw[1])]
    grid = F.affine_grid(theta.to(slices.device), size, align_corners=False)
    return F.grid_sample(slices, grid, mode=mode, padding_mode="zeros", align_corners=False)
