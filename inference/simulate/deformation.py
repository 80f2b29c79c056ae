"""The TRUS grid (the probe's frame) and the known deformation ``T``: TRUS world → MR world.

``T(x) = M (x + v(x) − c) + c + t``: ``v`` is a probe compression from the rectal side plus a
smooth cubic B-spline field; ``M, t`` a small rotation, anisotropic scaling and translation about
the gland centre ``c`` (see :mod:`inference.simulate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from inference.simulate.fields import bspline_basis, grid_world, rotation
from inference.simulate.specs import F32, F64, PROBE_J, US_GLAND_VOXEL


@dataclass
class TrusGrid:
    """The TRUS grid placed in the MR scanner frame.

    ``affine`` (4x4) maps TRUS voxels to MR world; ``points`` (3, X, Y, Z) are its voxel centres
    in MR world (mm); ``centre_probe`` is the gland centre in probe coordinates (mm along the
    grid axes from voxel 0).
    """

    shape: tuple[int, int, int]
    spacing: float
    tilt_deg: F64
    probe_rot: F64
    affine: F64
    points: F32
    centre_probe: F64


@dataclass
class Deformation:
    """``t_x`` (3, X, Y, Z): ``T`` at every TRUS voxel (MR world, mm); ``displacement`` the same in
    TRUS voxels relative to the voxel itself; the drawn parameters for the pair's ``params``."""

    t_x: F32
    displacement: F32
    compression_mm: float
    compression_decay_mm: float
    angles_rad: F64
    scales: F64
    translation_mm: F32


def trus_grid(
    rng: np.random.Generator,
    *,
    seed: int,
    centre: F64,
    shape: Sequence[int],
    spacing: float,
    frame: Literal["own", "shared"],
) -> TrusGrid:
    """The probe's axes (i → right, j → anterior = depth, k → superior), tilted against the MR
    scanner axes by up to ±20° per axis in the ``"own"`` frame (the probe is held by hand), with the
    gland centre near ``US_GLAND_VOXEL``.

    The tilt comes from its own generator so that a ``"shared"`` pair with the same seed is the
    same anatomy and deformation.
    """
    shape_us = (int(shape[0]), int(shape[1]), int(shape[2]))
    frng = np.random.default_rng([int(seed), 20])
    tilt_deg = frng.uniform(-20, 20, 3) if frame == "own" else np.zeros(3)
    probe_rot = rotation(np.radians(tilt_deg))
    us_affine = np.eye(4)
    us_affine[:3, :3] = probe_rot * spacing
    target = np.asarray(US_GLAND_VOXEL) * (np.asarray(shape_us) - 1)
    jitter = rng.uniform(-3, 3, 3) * np.array([1.0, 0.5, 1.0])
    us_affine[:3, 3] = centre + probe_rot @ jitter - us_affine[:3, :3] @ target
    return TrusGrid(
        shape=shape_us,
        spacing=float(spacing),
        tilt_deg=tilt_deg,
        probe_rot=probe_rot,
        affine=us_affine,
        points=grid_world(shape_us, us_affine),
        centre_probe=probe_rot.T @ (centre - us_affine[:3, 3]),
    )


def deformation_draw(
    rng: np.random.Generator,
    grid: TrusGrid,
    *,
    centre: F64,
    scale: float,
    frame: Literal["own", "shared"],
) -> Deformation:
    """Draw ``T`` (amplitudes times ``scale``) and evaluate it in closed form on ``grid``."""
    sc = float(scale)
    shape_us, us_spacing, probe_rot = grid.shape, grid.spacing, grid.probe_rot
    # Probe coordinates (mm along the grid axes from voxel 0): the compression acts along depth.
    x_probe = np.indices(shape_us, dtype=np.float32) * np.float32(us_spacing)
    probe_y = float(PROBE_J * us_spacing)
    probe_x = float(grid.centre_probe[0] + rng.uniform(-4, 4))
    probe_z = float(grid.centre_probe[2] + rng.uniform(-8, 8))
    comp = sc * float(rng.uniform(4.0, 9.0))
    lam = float(rng.uniform(18.0, 30.0))
    sig_x = float(rng.uniform(22.0, 32.0))
    sig_z = float(rng.uniform(25.0, 40.0))
    d = (
        comp
        * np.exp(-np.clip(x_probe[1] - probe_y, 0, None) / lam)
        * np.exp(-((x_probe[0] - probe_x) ** 2) / (2 * sig_x**2))
        * np.exp(-((x_probe[2] - probe_z) ** 2) / (2 * sig_z**2))
    ).astype(np.float32)
    del x_probe
    n_ctrl = 6
    coef = rng.normal(0.0, 2.0 * sc, (3, n_ctrl, n_ctrl, n_ctrl)).astype(np.float32)
    bx, by, bz = (bspline_basis(n, n_ctrl) for n in shape_us)
    bsp = np.einsum("cabd,ia,jb,kd->cijk", coef, bx, by, bz, optimize=True).astype(np.float32)
    v = bsp
    v -= d[None] * probe_rot[:, 1].astype(np.float32).reshape(3, 1, 1, 1)
    # The gland's own rotation in the pelvis is smaller than the probe tilt above.
    angles = np.radians(rng.uniform(-10, 10, 3)) * sc * (0.5 if frame == "own" else 1.0)
    scales = 1.0 + rng.uniform(-0.04, 0.04, 3) * sc
    mat = (rotation(angles) @ np.diag(scales)).astype(np.float32)
    trans = (rng.uniform(-6, 6, 3) * sc).astype(np.float32)
    c32 = centre.astype(np.float32).reshape(3, 1, 1, 1)
    x_us = grid.points
    t_x = np.einsum("ij,j...->i...", mat, x_us + v - c32) + c32 + trans.reshape(3, 1, 1, 1)
    lin_inv = np.linalg.inv(grid.affine[:3, :3]).astype(np.float32)
    disp = np.einsum("ij,j...->i...", lin_inv, t_x - x_us).astype(np.float32)
    return Deformation(
        t_x=t_x,
        displacement=disp,
        compression_mm=comp,
        compression_decay_mm=lam,
        angles_rad=angles,
        scales=scales,
        translation_mm=trans,
    )
