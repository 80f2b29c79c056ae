"""Small SYNTHETIC test pairs: spheres and a Yale-T2-derived simulated TRUS (not real TRUS).

The simulated TRUS is the real T2 pushed through a known smooth deformation onto an 0.8 mm TRUS-like
grid, with speckle; landmarks are small balls placed in the gland on the MR and carried by the same
deformation. Used only where tests need a pair with a known answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial.transform import Rotation

from inference.io import label_load, volume_load


@dataclass
class Pair:
    mr: NDArray[np.float32]
    mr_affine: NDArray[np.float64]
    mr_label: NDArray[np.uint8]
    mr_landmarks: NDArray[np.uint8]
    us: NDArray[np.float32]
    us_affine: NDArray[np.float64]
    us_label: NDArray[np.uint8]
    us_landmarks: NDArray[np.uint8]


def ball(shape: tuple[int, ...], centre: tuple[float, ...], radius: float) -> NDArray[np.uint8]:
    g = np.indices(shape, dtype=np.float32)
    d2 = sum((g[i] - centre[i]) ** 2 for i in range(len(shape)))
    return (d2 < radius * radius).astype(np.uint8)


def _rotation(angles_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    a = np.deg2rad(angles_deg)
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def yale_pair(
    data_dir: Path,
    *,
    seed: int = 0,
    shape: tuple[int, int, int] = (48, 64, 48),
    spacing: float = 1.2,
    shift_mm: float = 6.0,
    deform_mm: float = 4.0,
) -> Pair:
    """Real Yale T2 + mask as MR; a SYNTHETIC TRUS made from it by a known deformation."""
    rng = np.random.default_rng(seed)
    mr, a_mr = volume_load(data_dir / "yale-prostate-t2" / "prostate_T2_1.nii.gz")
    mr_label, _ = label_load(data_dir / "yale-prostate-t2" / "prostate_segm_1.nii.gz")
    # three landmark balls (r = 2.5 mm) inside the gland, well apart
    inside = np.argwhere(ndimage.binary_erosion(mr_label, iterations=4))
    centre = inside.mean(axis=0)
    picks = [inside[np.argmax(inside[:, a])] * 0.4 + centre * 0.6 for a in range(3)]
    mr_lm = np.zeros(mr.shape, dtype=np.uint8)
    for k, c in enumerate(picks, start=1):
        mr_lm[ball(mr.shape, tuple(c), 2.5) > 0] = k
    # TRUS grid: rotated, centred near the gland, coarser spacing
    world_c = (a_mr @ np.append(centre, 1.0))[:3]
    rot = (
        _rotation(rng.uniform(-8, 8, size=3)) @ a_mr[:3, :3] / np.linalg.norm(a_mr[:3, :3], axis=0)
    )
    a_us = np.eye(4)
    a_us[:3, :3] = rot * spacing
    half = (np.asarray(shape) - 1) / 2
    a_us[:3, 3] = world_c + rng.uniform(-shift_mm, shift_mm, size=3) - a_us[:3, :3] @ half
    # smooth random deformation (mm), then pull back: MR voxel = A_mr^-1 (A_us p + d(p))
    coarse = rng.normal(0.0, 1.0, size=(3, 4, 4, 4))
    d = np.stack([ndimage.zoom(coarse[c], np.asarray(shape) / 4, order=3) for c in range(3)])
    d *= deform_mm / max(np.abs(d).max(), 1e-6)
    grid = np.indices(shape, dtype=np.float64).reshape(3, -1)
    world = a_us[:3, :3] @ grid + a_us[:3, 3:4] + d.reshape(3, -1)
    mr_vox = np.linalg.solve(a_mr[:3, :3], world - a_mr[:3, 3:4]).reshape(3, *shape)
    us_img = ndimage.map_coordinates(mr, mr_vox, order=1, mode="constant")
    us_label = ndimage.map_coordinates(mr_label.astype(np.float32), mr_vox, order=1) > 0.5
    us_lm = ndimage.map_coordinates(mr_lm, mr_vox, order=0).astype(np.uint8)
    # ultrasound-like appearance: inverted gland contrast, blur, multiplicative Rayleigh speckle
    us_img = ndimage.gaussian_filter(us_img / max(us_img.max(), 1.0), 1.0)
    speckle = rng.rayleigh(0.6, size=shape)
    us_img = np.clip((0.3 + 0.7 * (1 - us_img)) * speckle, 0, None).astype(np.float32)
    return Pair(
        mr=mr,
        mr_affine=a_mr,
        mr_label=mr_label,
        mr_landmarks=mr_lm,
        us=us_img,
        us_affine=a_us,
        us_label=us_label.astype(np.uint8),
        us_landmarks=us_lm,
    )


MR_SHAPE = (40, 44, 30)
US_SHAPE = (36, 40, 32)


def ellipsoid(
    shape: tuple[int, ...],
    centre: tuple[float, ...] | NDArray[np.float64],
    radii: tuple[float, ...],
    rot: NDArray[np.float64] | None = None,
) -> NDArray[np.uint8]:
    """SYNTHETIC ellipsoid mask (radii in voxels along the rotated axes)."""
    rot = np.eye(3) if rot is None else rot
    g = np.indices(shape, dtype=np.float64).reshape(3, -1) - np.asarray(centre)[:, None]
    q = rot.T @ g
    d = sum((q[i] / radii[i]) ** 2 for i in range(3))
    return (d <= 1.0).reshape(shape).astype(np.uint8)


def frames_case(
    tilt_deg: tuple[float, float, float] = (12.0, -15.0, 8.0),
    shift_mm: tuple[float, float, float] = (140.0, -60.0, 95.0),
) -> dict[str, NDArray[np.generic]]:
    """SYNTHETIC pair: an MR ellipsoid gland in scanner coordinates; the same gland on a TRUS grid
    in its own frame, tilted by ``tilt_deg`` and moved by ``shift_mm``; one landmark each side."""
    a_mr = np.diag([1.0, 1.0, 1.5, 1.0])
    a_mr[:3, 3] = (-20.0, -22.0, -22.5)
    rot = Rotation.from_euler("xyz", tilt_deg, degrees=True).as_matrix()
    a_us = np.eye(4)  # the probe frame: origin 0, 1 mm voxels
    # MR world of a TRUS world point x: W x = rot x + t, with the gland centres matching.
    c_mr_vox = np.array([20.0, 22.0, 15.0])
    c_mr = a_mr[:3, :3] @ c_mr_vox + a_mr[:3, 3]
    c_us = np.array([18.0, 20.0, 16.0])
    w = np.eye(4)
    w[:3, :3] = rot
    w[:3, 3] = c_mr - rot @ c_us  # the gland centres coincide under W
    mr_label = ellipsoid(MR_SHAPE, c_mr_vox, (11, 8, 5))
    # The TRUS gland is the MR gland seen through W: sample it on the TRUS grid.
    p = np.indices(US_SHAPE, dtype=np.float64).reshape(3, -1)
    q = np.linalg.inv(a_mr) @ w @ a_us @ np.vstack([p, np.ones(p.shape[1])])
    us_label = (
        ndimage.map_coordinates(mr_label.astype(np.float32), q[:3], order=1).reshape(US_SHAPE) > 0.5
    ).astype(np.uint8)
    lm_mr_vox = c_mr_vox + np.array([5.0, 2.0, 1.0])
    lm_world = a_mr[:3, :3] @ lm_mr_vox + a_mr[:3, 3]
    lm_us_vox = np.linalg.solve(w[:3, :3], lm_world - w[:3, 3])
    mr_lm = ellipsoid(MR_SHAPE, lm_mr_vox, (1.6, 1.6, 1.1))
    us_lm = ellipsoid(US_SHAPE, lm_us_vox, (1.6, 1.6, 1.6))
    # Then the TRUS frame is moved anywhere: a probe knows nothing of the scanner's origin.
    a_us[:3, 3] = np.asarray(shift_mm)
    rng = np.random.default_rng(0)
    mr = (0.1 + 0.8 * mr_label + 0.02 * rng.random(MR_SHAPE)).astype(np.float32)
    us = (0.2 + 0.6 * us_label + 0.05 * rng.random(US_SHAPE)).astype(np.float32)
    return {
        "mr": mr,
        "mr_affine": a_mr,
        "us": us,
        "us_affine": a_us,
        "mr_label": mr_label,
        "us_label": us_label,
        "mr_landmarks": mr_lm,
        "us_landmarks": us_lm,
    }
