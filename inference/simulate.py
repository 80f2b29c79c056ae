"""Simulated MR T2 / TRUS pairs with a known deformation (numpy + scipy + nibabel only; no torch, no Django).

Everything this module writes is SYNTHETIC and labelled so (``synthetic=True`` on every pair,
``synthetic=true`` in every manifest row, ``"synthetic": true`` in every dataset.json). No real TRUS
volume is available offline, so the TRUS side is always simulated.

What is simulated, and how
--------------------------
* **Anatomy.** Either a parametric prostate phantom (``source=None``) or a real T2 volume with its
  gland mask (:class:`SimSource`, e.g. ``../shared/data/yale-prostate-t2``). The phantom is a
  continuous function of world position (mm, RAS+): a super-ellipsoid gland, flattened posteriorly
  and tapered towards the apex, with a shape perturbed by a smooth random field; peripheral zone,
  nodular transition zone, anterior fibromuscular stroma, urethra, capsule; low-T2 lesion-like foci
  (side, zone, size and conspicuity controllable by :class:`LesionSpec`); small cysts and
  calcifications; periprostatic fat, lateral muscle, pubic bone, bladder and rectum. With a real
  source, lesions are inserted by darkening the T2 inside a soft ellipsoid in the gland.
* **MR T2.** The phantom is sampled on an oblique axial grid (default 160x160x40 at
  0.75x0.75x2.5 mm, LPS voxel order like DICOM-converted NIfTI) with a smooth coil bias field and
  Rician noise. A real source keeps its own volume, grid and affine (plus any inserted lesion).
* **Deformation** (known exactly). For a TRUS world point ``x`` the corresponding MR world point is
  ``T(x) = M (x + v(x) − c) + c + t``: ``v`` is a probe compression from the rectal side (anterior
  push ``c0·exp(−depth/λ)`` with Gaussian lateral/longitudinal fall-off, whose Jacobian determinant
  ``1 + d/λ`` is always positive) plus a smooth cubic B-spline field (6x6x6 control points, σ = 2 mm);
  ``M, t`` are a small random rotation (±5° with the probe tilt of the own frame, ±10° in the shared
  frame), anisotropic scaling (±4%) and translation (±6 mm) about the gland centre ``c``.
* **TRUS.** On its own grid (default 81x118x88 at 0.8 mm; the probe's axes: i → right, j → anterior
  = depth away from the probe, k → superior) in **its own frame** (``frame="own"``, default): the
  stored affine has origin 0, and the grid is tilted against the MR scanner axes by up to ±20° per
  axis and placed anywhere — the registration must find the alignment (``frame="shared"`` gives the
  same grid in the MR frame). The probe compression acts along the grid's depth axis. The image is
  :func:`inference.us_appearance.us_render`: echogenicity read at ``T(x)``, fitted to the one real TRUS
  volume in ``../shared/data/trus-real-case001`` (grey-level histogram, speckle statistics and size,
  gland and capsule contrast, fall-off with depth, thick stepper frames); figures in
  ``bench/us_appearance_bench.py``. Outside the fan-shaped field of view is 0.
* **Labels.** Gland labels on both sides (``uint8`` 0/1); 3–6 landmarks as one integer volume per
  side (value ``k`` = landmark ``k``; spheres of 2.5–3.5 mm around the same anatomical point: apex,
  base and mid urethra, lesion centres, cysts, calcifications, zone points). The TRUS labels are the
  same continuous objects evaluated at ``T(x)``, so they match the MR labels through the known field.
* **Ground truth.** ``displacement (3, X, Y, Z)`` in TRUS voxels, channel ``c`` along index axis ``c``:
  ``warped(p) = mr_on_us(p + u(p))`` where ``mr_on_us`` is the MR resampled onto the TRUS grid placed
  in the MR frame (``SimulatedPair.us_affine_mr``; ``params["frame_to_mr_world"]`` maps the TRUS's own
  frame there). ``u(p) = A⁻¹(T(A p) − A p)`` (``A`` = ``us_affine_mr``), evaluated in closed form.
  Registration never sees ``us_affine_mr``: it is for checking results only.

Limits: the ultrasound look is a plausible texture model, not an acoustic simulation (no beam
geometry, reverberation or refraction), tuned to ONE real volume; the T2 → echogenicity map of a real
source is crude. Real sources: Yale subject 1 and the 39 PROMISE12 glands
(:meth:`SimSource.from_promise12`, :func:`sim_sources_promise12`; assumed spacing, see
:mod:`inference.datasets`).

Public API (kept stable; other modules import it)
-------------------------------------------------
``simulate_pair(*, seed, source=None, lesions=None, n_landmarks=None, us_shape=US_SHAPE,
us_spacing=US_SPACING, deformation_scale=1.0) -> SimulatedPair``
    One pair. Deterministic per ``seed`` (and source/arguments). About 1 s of CPU on one core
    (phantom; ~0.6 s on a real source): ``python bench/simulate_bench.py``.
``SimSource.from_files(t2_path, mask_path)``, ``sim_sources_load(directory)``
    Real T2 + gland-mask sources (Yale layout ``prostate_T2_<n>.nii.gz`` / ``prostate_segm_<n>.nii.gz``).
``LesionSpec(side, zone="pz", radius_mm=5.0, conspicuity=0.8)``
``mr_resample_to_us(pair, array=None, *, order=1)``, ``volume_to_grid(...)``
    The affine-only resampling (``mr_on_us``) that the displacement convention refers to.
``write_pair_deepreg(pair, *, out_dir, name, moving_grid="fixed", with_displacement=False)``,
``write_dataset(out_dir, *, n_pairs, seed, yale_dir=None, sources=(), moving_grid="own",
frame="own", with_displacement=False, progress=None)``
    DeepReg / µ-RegPro paired layout: ``moving_images/ fixed_images/ moving_labels/ fixed_labels/``
    (4-D labels, channel 0 gland, channel k landmark k) and ``dataset.json`` (per-pair seed, source,
    landmark names, lesions, deformation parameters); optionally ``displacements/`` (X, Y, Z, 3)
    ground truth (~9 MB a pair; ``simulate_pair(seed=...)`` regenerates it exactly anyway).
    ``moving_grid="own"`` (default) keeps the MR grid and scanner affine; ``"fixed"`` stores the MR
    pre-aligned onto the TRUS grid through the ground-truth frame (µ-RegPro style).
``write_demo_cohort(out_dir, *, n_cases, seed, yale_dir=None) -> Path``
    A cohort folder in the manifest format of docs/architecture.md, with plausible reference PI-RADS
    and biopsy fields consistent with the simulated lesions.

CLI::

    python -m inference.simulate demo --out DIR --cases 8 --seed 0 [--yale DIR]
    python -m inference.simulate dataset --out DIR --pairs 64 --seed 0 [--yale DIR]
        [--promise12 heldout|training|train04,...] [--moving-grid own|fixed] [--frame own|shared]
        [--displacements]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.io import label_load, volume_load, volume_save

__all__ = [
    "MR_SHAPE",
    "MR_SPACING",
    "SIM_VERSION",
    "US_SHAPE",
    "US_SPACING",
    "LesionSpec",
    "SimSource",
    "SimulatedPair",
    "main",
    "mr_resample_to_us",
    "sim_sources_load",
    "sim_sources_promise12",
    "simulate_pair",
    "us_fan_mask",
    "volume_to_grid",
    "write_dataset",
    "write_demo_cohort",
    "write_pair_deepreg",
]

SIM_VERSION = "1"
US_SHAPE: tuple[int, int, int] = (81, 118, 88)
US_SPACING = 0.8
MR_SHAPE: tuple[int, int, int] = (160, 160, 40)
MR_SPACING: tuple[float, float, float] = (0.75, 0.75, 2.5)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]
Side = Literal["left", "right"]
Zone = Literal["pz", "tz"]

# Where the gland centre sits on the TRUS grid (voxel), i.e. ~28 mm in front of the grid's posterior
# face, which is the probe side. The probe surface is at j = _PROBE_J.
_US_GLAND_VOXEL = (0.5, 0.3, 0.5)  # fractions of the TRUS shape
_PROBE_J = 3.0
_FAN_HALF_ANGLE_DEG = 55.0
_FAN_APEX_MM = 12.0  # virtual apex of the transverse sector behind the grid's posterior face
_FAN_SAG_HALF_ANGLE_DEG = 50.0
_FAN_SAG_APEX_MM = 20.0


# ------------------------------------------------------------------------------------------------
# Public data types


@dataclass(frozen=True)
class LesionSpec:
    """A lesion to simulate: patient side, zone, radius (mm) and conspicuity in [0, 1]."""

    side: Side
    zone: Zone = "pz"
    radius_mm: float = 5.0
    conspicuity: float = 0.8

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"LesionSpec.side must be 'left' or 'right', got {self.side!r}")
        if self.zone not in ("pz", "tz"):
            raise ValueError(f"LesionSpec.zone must be 'pz' or 'tz', got {self.zone!r}")
        if not 1.0 <= self.radius_mm <= 15.0:
            raise ValueError(f"LesionSpec.radius_mm must be in 1..15 mm, got {self.radius_mm}")
        if not 0.0 <= self.conspicuity <= 1.0:
            raise ValueError(f"LesionSpec.conspicuity must be in 0..1, got {self.conspicuity}")


@dataclass
class SimSource:
    """A real T2 volume with its whole-gland mask on the same grid (the anatomy of a simulated pair)."""

    t2: F32
    affine: F64
    mask: U8
    name: str = "source"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.t2.ndim != 3:
            raise ValueError(f"SimSource {self.name}: T2 must be 3-D, got shape {self.t2.shape}")
        if self.mask.shape != self.t2.shape:
            raise ValueError(
                f"SimSource {self.name}: mask shape {self.mask.shape} differs from T2 shape "
                f"{self.t2.shape}"
            )
        if np.asarray(self.affine).shape != (4, 4):
            raise ValueError(f"SimSource {self.name}: affine must be 4x4")
        if not np.isfinite(self.t2).all():
            raise ValueError(f"SimSource {self.name}: T2 has NaN or infinite voxels")
        if int(self.mask.sum()) < 100:
            raise ValueError(f"SimSource {self.name}: gland mask has fewer than 100 voxels")

    @classmethod
    def from_files(
        cls, t2_path: str | os.PathLike[str], mask_path: str | os.PathLike[str]
    ) -> SimSource:
        """Load a T2 NIfTI and its gland mask NIfTI; both must share shape and affine."""
        t2, aff = volume_load(t2_path)
        mask, maff = label_load(mask_path)
        if mask.shape != t2.shape or not np.allclose(aff, maff, atol=1e-3):
            raise ValueError(f"{mask_path}: mask grid differs from the T2 grid of {t2_path}")
        return cls(t2=t2, affine=aff, mask=mask, name=Path(t2_path).name.split(".")[0])

    @classmethod
    def from_promise12(
        cls, name: str, directory: str | os.PathLike[str] | None = None
    ) -> SimSource:
        """A PROMISE12 case (real T2 + manual mask, assumed spacing) via :mod:`inference.datasets`."""
        from inference.datasets import promise12_load

        case = promise12_load(name, directory)
        return cls(t2=case.image, affine=case.affine, mask=case.label, name=f"promise12-{name}")

    def smoothed_mask(self) -> F32:
        """Gland mask blurred by ~1 mm: its 0.5 level is the boundary, its slope the capsule band."""
        if "soft" not in self._cache:
            sp = np.linalg.norm(self.affine[:3, :3], axis=0)
            self._cache["soft"] = ndimage.gaussian_filter(
                self.mask.astype(np.float32), sigma=tuple(1.0 / s for s in sp)
            )
        return np.asarray(self._cache["soft"], dtype=np.float32)

    def gland_points_world(self) -> F64:
        """World coordinates (N, 3) of the gland voxels."""
        if "pts" not in self._cache:
            idx = np.argwhere(self.mask > 0).astype(np.float64)
            self._cache["pts"] = idx @ self.affine[:3, :3].T + self.affine[:3, 3]
        return np.asarray(self._cache["pts"])

    def inner_depth_mm(self) -> F32:
        """Distance (mm) of each voxel to the gland boundary, inside the gland; 0 outside."""
        if "edt" not in self._cache:
            sp = np.linalg.norm(self.affine[:3, :3], axis=0)
            self._cache["edt"] = ndimage.distance_transform_edt(self.mask > 0, sampling=sp).astype(
                np.float32
            )
        return np.asarray(self._cache["edt"], dtype=np.float32)

    def gland_median(self) -> float:
        if "med" not in self._cache:
            self._cache["med"] = float(np.median(self.t2[self.mask > 0]))
        return float(self._cache["med"])


@dataclass
class SimulatedPair:
    """One simulated MR/TRUS pair. Images ``float32``, labels ``uint8``, affines 4x4 RAS+.

    ``us_affine`` is the TRUS's own frame (default) or the MR scanner frame (``frame="shared"``);
    ``us_affine_mr`` is always the TRUS grid's affine in the MR scanner frame (ground truth only:
    a registration must not use it). ``displacement`` is ``(3, *us.shape)`` in TRUS voxels:
    ``warped(p) = mr_on_us(p + u(p))`` with ``mr_on_us`` the MR resampled through ``us_affine_mr``
    (:func:`mr_resample_to_us`). ``landmark_names[k - 1]`` names landmark value ``k``.
    """

    mr: F32
    mr_affine: F64
    mr_label: U8
    mr_landmarks: U8
    us: F32
    us_affine: F64
    us_label: U8
    us_landmarks: U8
    us_fov: U8
    displacement: F32
    landmark_names: tuple[str, ...]
    lesions: tuple[dict[str, Any], ...]
    lesion_side: str
    seed: int
    source: str
    params: dict[str, Any]
    synthetic: bool = True
    us_affine_mr: F64 | None = None


# ------------------------------------------------------------------------------------------------
# Small helpers


def _grid_world(shape: Sequence[int], affine: F64) -> F32:
    """World coordinates (3, X, Y, Z) float32 of every voxel centre."""
    idx = np.indices(tuple(shape), dtype=np.float32)
    a = affine.astype(np.float32)
    return np.einsum("ij,j...->i...", a[:3, :3], idx) + a[:3, 3].reshape(3, 1, 1, 1)


def _world_to_index(points: F32, affine: F64) -> F32:
    inv = np.linalg.inv(affine).astype(np.float32)
    return np.einsum("ij,j...->i...", inv[:3, :3], points) + inv[:3, 3].reshape(
        (3,) + (1,) * (points.ndim - 1)
    )


def _sigmoid(x: F32) -> F32:
    # tanh form: no overflow warnings for large |x|; in place because it runs ~30 times per volume.
    y = np.multiply(x, 0.5, dtype=np.float32)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def _mix(base: F32, value: F32 | float, weight: F32) -> F32:
    return np.asarray(base + weight * (value - base), dtype=np.float32)


def _pow(a: F32, p: float) -> F32:
    # Generic float powers are ~5x slower than products; the phantom only needs these three.
    if p == 2.0:
        return a * a
    if p == 2.5:
        return a * a * np.sqrt(a)
    if p == 3.0:
        return a * a * a
    return np.asarray(a**p, dtype=np.float32)


def _rotation(angles_rad: Sequence[float] | F64) -> F64:
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


def _bspline_basis(n: int, n_ctrl: int) -> F32:
    """(n, n_ctrl) cubic B-spline weights of control points spread evenly over indices 0..n-1."""
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1) * (n_ctrl - 3) + 1.0
    d = np.abs(t[:, None] - np.arange(n_ctrl)[None, :])
    w = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    return w.astype(np.float32)


class _NoiseField:
    """Smooth random scalar fields on a coarse grid around a centre, sampled at world points."""

    def __init__(
        self,
        rng: np.random.Generator,
        centre: F64,
        *,
        channels: int,
        step_mm: float,
        sigma: float,
        halvings: int = 1,
    ) -> None:
        self.halvings = halvings
        n = 48
        raw = rng.standard_normal((channels, n, n, n)).astype(np.float32)
        sm = [ndimage.gaussian_filter(raw[c], sigma, mode="wrap") for c in range(channels)]
        self.data = np.stack([s / (s.std() + 1e-6) for s in sm]).astype(np.float32)
        self.origin = (centre - step_mm * (n - 1) / 2).astype(np.float32)
        self.step = np.float32(step_mm)

    def sample(self, points: F32) -> F32:
        """All channels at ``points`` (3, ...) → (channels, ...).

        On a dense grid of points (3, X, Y, Z) the fields are read on every 2nd (``halvings=1``) or
        4th (``halvings=2``) point and linearly interpolated back: they vary over ≥ 5 mm, and
        reading every point would double the simulation time.
        """
        if points.ndim == 4 and min(points.shape[1:]) >= 8 * 2**self.halvings:
            st = 2**self.halvings
            sub = self._sample_points(points[:, ::st, ::st, ::st])
            for level in range(self.halvings - 1, -1, -1):
                for axis, n in enumerate(points.shape[1:], start=1):
                    sub = _upsample2(sub, axis, -(-n // 2**level))
            return sub
        return self._sample_points(points)

    def _sample_points(self, points: F32) -> F32:
        idx = (points - self.origin.reshape((3,) + (1,) * (points.ndim - 1))) / self.step
        flat = np.ascontiguousarray(idx.reshape(3, -1))
        out = np.empty((self.data.shape[0], flat.shape[1]), dtype=np.float32)
        for c in range(self.data.shape[0]):
            ndimage.map_coordinates(
                self.data[c], flat, output=out[c], order=1, mode="grid-wrap", prefilter=False
            )
        return out.reshape((self.data.shape[0], *points.shape[1:]))


def _upsample2(sub: F32, axis: int, n: int) -> F32:
    """Linear 2x upsampling along ``axis`` of values taken at even indices, to length ``n``."""
    ext = np.concatenate([sub, np.take(sub, [-1], axis=axis)], axis=axis)
    lo = np.take(ext, range(0, n // 2), axis=axis)
    hi = np.take(ext, range(1, n // 2 + 1), axis=axis)
    shape = list(sub.shape)
    shape[axis] = n
    out = np.empty(shape, dtype=np.float32)
    even = [slice(None)] * sub.ndim
    even[axis] = slice(0, n, 2)
    odd = [slice(None)] * sub.ndim
    odd[axis] = slice(1, n, 2)
    out[tuple(even)] = np.take(sub, range((n + 1) // 2), axis=axis)
    out[tuple(odd)] = 0.5 * (lo + hi)
    return out


def us_fan_mask(shape: Sequence[int] = US_SHAPE, spacing: float = US_SPACING) -> U8:
    """The 3-D fan-shaped field of view of the simulated TRUS grid (1 inside).

    Transverse sector (i–j plane) of ±55° from an apex 12 mm behind the grid's posterior face
    (j < 0), depth limited to the grid, near field cut at the probe surface; sagittal sector (j–k
    plane) of ±50° from an apex 20 mm behind it.
    """
    nx, ny, nz = (int(s) for s in shape)
    x = (np.arange(nx) - (nx - 1) / 2) * spacing
    y = np.arange(ny) * spacing + _FAN_APEX_MM
    z = (np.arange(nz) - (nz - 1) / 2) * spacing
    r = np.hypot(x[:, None], y[None, :])
    ang = np.degrees(np.arctan2(np.abs(x[:, None]), y[None, :]))
    trans = (ang <= _FAN_HALF_ANGLE_DEG) & (r >= _FAN_APEX_MM + _PROBE_J * spacing)
    ys = np.arange(ny) * spacing + _FAN_SAG_APEX_MM
    sag = np.degrees(np.arctan2(np.abs(z[None, :]), ys[:, None])) <= _FAN_SAG_HALF_ANGLE_DEG
    return (trans[:, :, None] & sag[None, :, :]).astype(np.uint8)


# ------------------------------------------------------------------------------------------------
# Anatomy: phantom and real source, both as functions of MR world position


@dataclass
class _Props:
    t2: F32
    echo: F32  # echogenicity (backscatter amplitude, ~0..1.5)
    atten: F32  # attenuation per mm beyond the compensated tissue average
    gland_soft: F32  # ~0..1, 0.5 at the boundary
    gland: NDArray[np.bool_]


class _Phantom:
    """Parametric prostate and surroundings; world coordinates in mm (RAS+)."""

    def __init__(
        self, rng: np.random.Generator, centre: F64, lesions: Sequence[LesionSpec]
    ) -> None:
        self.c = centre.astype(np.float32)
        self.ax = float(rng.uniform(19, 26))
        self.ay = float(rng.uniform(14, 19))
        self.az = float(rng.uniform(16, 23))
        self.p = float(rng.choice([2.0, 2.5, 3.0]))  # squarer glands for larger exponents
        self.post_flat = float(rng.uniform(0.75, 0.9))
        self.taper = float(rng.uniform(0.15, 0.3))
        self.tz_scale = float(rng.uniform(0.5, 0.7))  # bigger transition zone ~ BPH
        self.noise = _NoiseField(rng, centre, channels=4, step_mm=2.5, sigma=2.0)
        # Read on every 2nd grid point only (halvings=1): the gland boundary then differs between
        # the two grids by < 0.1 mm at the 99th percentile; every 4th point would give ~0.2 mm.
        self.shape_noise = _NoiseField(rng, centre, channels=3, step_mm=4.0, sigma=3.0)
        self.shape_amp = float(rng.uniform(1.0, 2.5))
        self.rectum_gas = bool(rng.random() < 0.5)
        self.bladder_dz = float(rng.uniform(14, 24))
        self.t2_gain = float(rng.uniform(0.85, 1.15))
        self.lesions: list[dict[str, Any]] = []
        for spec in lesions:
            self.lesions.append(self._lesion_place(rng, spec))
        self.cysts = [self._interior_point(rng, 0.6) for _ in range(int(rng.integers(0, 3)))]
        self.cyst_r = [float(rng.uniform(1.8, 3.0)) for _ in self.cysts]
        self.calcs = [self._interior_point(rng, 0.5) for _ in range(int(rng.integers(0, 3)))]
        self.calc_r = [float(rng.uniform(1.0, 1.6)) for _ in self.calcs]

    # Points are local (relative to the gland centre), shape (3, N).
    def _interior_point(self, rng: np.random.Generator, frac: float) -> F64:
        u = rng.uniform(-1, 1, 3)
        u = u / max(float(np.linalg.norm(u)), 1e-6) * rng.uniform(0.2, frac)
        return np.array([u[0] * self.ax, u[1] * self.ay, u[2] * self.az])

    def _lesion_place(self, rng: np.random.Generator, spec: LesionSpec) -> dict[str, Any]:
        # RAS+: the patient's left is −x.
        s = -1.0 if spec.side == "left" else 1.0
        if spec.zone == "pz":
            ang = np.radians(rng.uniform(20, 60))  # posterolateral peripheral zone
            rr = 0.72 - 0.3 * spec.radius_mm / self.ay
            local = np.array(
                [s * self.ax * rr * np.sin(ang), -self.ay * rr * np.cos(ang), 0.0], dtype=np.float64
            )
        else:
            local = np.array(
                [s * self.ax * rng.uniform(0.2, 0.35), self.ay * rng.uniform(0.0, 0.2), 0]
            )
        local[2] = self.az * rng.uniform(-0.45, 0.45)
        axes = spec.radius_mm * rng.uniform(0.8, 1.2, 3)
        return {
            "side": spec.side,
            "zone": spec.zone,
            "radius_mm": float(spec.radius_mm),
            "conspicuity": float(spec.conspicuity),
            "local": local,
            "axes": axes,
            "center_world": (local + self.c).tolist(),
        }

    def _rho(self, q: F32, ax: float, ay: float, az: float, p: float) -> F32:
        x, y, z = q
        taper = 1.0 - self.taper * np.clip(-z / az, 0, 1.2)  # narrower towards the apex
        yy = np.where(y < 0, y / self.post_flat, y)  # flatter on the rectal side
        v = _pow(np.abs(x) / (ax * taper), p) + _pow(np.abs(yy) / ay, p) + _pow(np.abs(z) / az, p)
        return np.asarray(np.sqrt(v) if p == 2.0 else v ** (1.0 / p), dtype=np.float32)

    def landmark_candidates(self) -> list[tuple[str, F64]]:
        c = self.c.astype(np.float64)
        out: list[tuple[str, F64]] = []
        for i, les in enumerate(self.lesions):
            out.append((f"lesion{i + 1}", c + les["local"]))
        for i, p in enumerate(self.cysts):
            out.append((f"cyst{i + 1}", c + p))
        for i, p in enumerate(self.calcs):
            out.append((f"calcification{i + 1}", c + p))
        uy = 0.1 * self.ay
        out += [
            ("apex_urethra", c + np.array([0.0, uy, -0.72 * self.az])),
            ("base_urethra", c + np.array([0.0, uy + 0.1 * self.ay, 0.72 * self.az])),
            ("verumontanum", c + np.array([0.0, uy - 0.12 * self.ay, -0.1 * self.az])),
            ("left_mid_pz", c + np.array([-0.6 * self.ax, -0.35 * self.ay, 0.0])),
            ("right_mid_pz", c + np.array([0.6 * self.ax, -0.35 * self.ay, 0.0])),
            ("left_base_tz", c + np.array([-0.3 * self.ax, 0.15 * self.ay, 0.4 * self.az])),
            ("right_base_tz", c + np.array([0.3 * self.ax, 0.15 * self.ay, 0.4 * self.az])),
            ("posterior_mid_pz", c + np.array([0.0, -0.6 * self.ay, 0.0])),
            ("left_apex_pz", c + np.array([-0.4 * self.ax, -0.3 * self.ay, -0.5 * self.az])),
            ("right_apex_pz", c + np.array([0.4 * self.ax, -0.3 * self.ay, -0.5 * self.az])),
            ("left_base_pz", c + np.array([-0.55 * self.ax, -0.3 * self.ay, 0.45 * self.az])),
            ("right_base_pz", c + np.array([0.55 * self.ax, -0.3 * self.ay, 0.45 * self.az])),
            ("anterior_tz", c + np.array([0.0, 0.35 * self.ay, 0.1 * self.az])),
        ]
        return out

    def props(self, pts: F32) -> _Props:
        q = pts - self.c.reshape((3,) + (1,) * (pts.ndim - 1))
        tex_fat, tex_gl, tex_tz, tex_mu = self.noise.sample(pts)
        qs = q + self.shape_amp * self.shape_noise.sample(pts)
        x, y, z = q
        a_mean = (self.ax + self.ay + self.az) / 3

        # Background: periprostatic fat.
        t2 = np.asarray(900.0 * (1 + 0.1 * tex_fat), dtype=np.float32)
        echo = np.asarray(0.5 * (1 + 0.25 * tex_fat), dtype=np.float32)
        att = np.zeros_like(t2)

        # Lateral pelvic side-wall muscle (obturator internus / levator ani).
        m = _sigmoid((np.abs(x) - (self.ax + 13 + 2 * tex_mu)) / 1.5)
        t2 = _mix(t2, 260 * (1 + 0.08 * tex_mu), m)
        echo = _mix(echo, 0.32 * (1 + 0.3 * tex_mu), m)

        # Pubic symphysis, anterior: dark on T2, bright surface and shadow on US.
        d_bone = np.sqrt((x / 13) ** 2 + ((y - (self.ay + 22)) / 8) ** 2)
        m = _sigmoid((1 - d_bone) * 8 / 1.0) * _sigmoid((28 - np.abs(z - 5)) / 2)
        t2 = _mix(t2, 160.0, m)
        echo = _mix(echo, 1.2, m * _sigmoid((d_bone - 0.8) * 8 / 0.8))
        att = att + 0.6 * m

        # Bladder above the gland: wall, then urine (very bright T2, anechoic, little attenuation).
        bc = (q[0] / 32, (q[1] - 0.3 * self.ay) / 26, (q[2] - (self.az + self.bladder_dz)) / 20)
        d_bl = np.sqrt(bc[0] ** 2 + bc[1] ** 2 + bc[2] ** 2)
        wall = _sigmoid((1 - d_bl) * 24 / 1.0)
        lumen = _sigmoid((1 - d_bl) * 24 / 1.0 - 3.0)
        t2 = _mix(t2, 320.0, wall)
        echo = _mix(echo, 0.7, wall)
        t2 = _mix(t2, 1450.0, lumen)
        echo = _mix(echo, 0.02, lumen)
        att = att - 0.012 * lumen

        # Rectum behind the gland: wall and lumen (gas or fluid).
        d_re = np.sqrt((x / 16) ** 2 + ((y + self.ay + 11) / 9) ** 2)
        wall = _sigmoid((1 - d_re) * 9 / 0.8)
        lumen = _sigmoid((1 - d_re) * 9 / 0.8 - 3.0 / 0.8)
        t2 = _mix(t2, 280.0, wall)
        echo = _mix(echo, 0.65, wall)
        t2 = _mix(t2, 110.0 if self.rectum_gas else 600.0, lumen)
        echo = _mix(echo, 0.08, lumen)

        # Gland and its zones (shape-perturbed coordinates).
        rho = self._rho(qs, self.ax, self.ay, self.az, self.p)
        sd = (1 - rho) * a_mean  # ~signed distance to the capsule, mm, positive inside
        gland_soft = _sigmoid(sd / 0.6)
        t2 = _mix(t2, 760 * (1 + 0.07 * tex_gl), gland_soft)
        echo = _mix(echo, 0.6 * (1 + 0.18 * tex_gl), gland_soft)
        tzc = np.stack([qs[0], qs[1] - 0.2 * self.ay, qs[2] - 0.15 * self.az])
        rho_tz = self._rho(
            tzc, self.tz_scale * self.ax, 0.6 * self.ay, self.tz_scale * 1.1 * self.az, 2.0
        )
        m_tz = _sigmoid((1 - rho_tz) * self.tz_scale * a_mean / 0.8) * gland_soft
        t2 = _mix(t2, 460 * (1 + 0.22 * tex_tz), m_tz)
        echo = _mix(echo, 0.44 * (1 + 0.4 * tex_tz), m_tz)
        m_af = _sigmoid((qs[1] - 0.62 * self.ay) / 1.2) * gland_soft
        t2 = _mix(t2, 230.0, m_af)
        echo = _mix(echo, 0.3, m_af)
        uy = 0.1 * self.ay + 0.1 * self.ay * np.clip(z / self.az, 0, 1)
        d_ur = np.sqrt(x**2 + (y - uy) ** 2)
        m_ur = _sigmoid((2.5 - d_ur) / 0.5) * gland_soft
        t2 = _mix(t2, 620.0, m_ur)
        echo = _mix(echo, 0.14, m_ur)

        for les in self.lesions:
            lq = [(qs[i] - les["local"][i]) / les["axes"][i] for i in range(3)]
            d = np.sqrt(lq[0] ** 2 + lq[1] ** 2 + lq[2] ** 2)
            m = _sigmoid((1 - d + 0.15 * tex_tz) * les["radius_mm"] / 0.8) * gland_soft
            k = les["conspicuity"]
            t2 = _mix(t2, 250.0, m * (0.35 + 0.65 * k))
            echo = _mix(echo, 0.18, m * (0.25 + 0.65 * k))
        for p, r in zip(self.cysts, self.cyst_r):
            d = np.sqrt(sum((q[i] - p[i]) ** 2 for i in range(3)))
            m = _sigmoid((r - d) / 0.4)
            t2 = _mix(t2, 1350.0, m)
            echo = _mix(echo, 0.03, m)
            att = att - 0.012 * m
        for p, r in zip(self.calcs, self.calc_r):
            d = np.sqrt(sum((q[i] - p[i]) ** 2 for i in range(3)))
            m = _sigmoid((r - d) / 0.3)
            t2 = _mix(t2, 90.0, m)
            echo = _mix(echo, 1.5, m)
            att = att + 0.8 * m

        # Capsule: a thin dark line on T2.
        cap = np.exp(-((sd / 0.8) ** 2)).astype(np.float32)
        t2 = t2 * (1 - 0.35 * cap)
        return _Props(
            t2=np.asarray(t2 * self.t2_gain, dtype=np.float32),
            echo=echo,
            atten=att,
            gland_soft=gland_soft,
            gland=rho < 1.0,
        )


class _RealAnatomy:
    """Anatomy read from a :class:`SimSource`, with optional lesions inserted into its T2."""

    def __init__(
        self, rng: np.random.Generator, src: SimSource, lesions: Sequence[LesionSpec]
    ) -> None:
        self.src = src
        pts = src.gland_points_world()
        self.c = pts.mean(axis=0)
        self.lesions: list[dict[str, Any]] = []
        depth = src.inner_depth_mm()
        idx = np.argwhere(src.mask > 0)
        world = pts
        rel = world - self.c
        ext = np.abs(rel).max(axis=0)
        for spec in lesions:
            s = -1.0 if spec.side == "left" else 1.0
            side_ok = rel[:, 0] * s > 0.15 * ext[0]
            if spec.zone == "pz":
                zone_ok = rel[:, 1] < -0.1 * ext[1]
            else:
                zone_ok = np.abs(rel[:, 1]) < 0.3 * ext[1]
            deep = depth[tuple(idx.T)] >= min(0.6 * spec.radius_mm, 4.0)
            ok = side_ok & zone_ok & deep
            if not ok.any():
                ok = side_ok & deep if (side_ok & deep).any() else side_ok
            choice = rng.choice(np.flatnonzero(ok))
            centre = world[choice]
            self.lesions.append(
                {
                    "side": spec.side,
                    "zone": spec.zone,
                    "radius_mm": float(spec.radius_mm),
                    "conspicuity": float(spec.conspicuity),
                    "center_world": centre.tolist(),
                    "axes": spec.radius_mm * rng.uniform(0.8, 1.2, 3),
                }
            )
        self.med = src.gland_median()
        self.t2_mr = self._t2_with_lesions()

    def _lesion_weight(self, pts: F32) -> F32:
        w = np.zeros(pts.shape[1:], dtype=np.float32)
        for les in self.lesions:
            cw = np.asarray(les["center_world"], dtype=np.float32)
            d = np.sqrt(sum(((pts[i] - cw[i]) / np.float32(les["axes"][i])) ** 2 for i in range(3)))
            m = _sigmoid((1 - d) * les["radius_mm"] / 0.8) * (0.35 + 0.6 * les["conspicuity"])
            w = np.maximum(w, m)
        return w

    def _t2_with_lesions(self) -> F32:
        t2 = self.src.t2.astype(np.float32)
        if not self.lesions:
            return t2
        pts = _grid_world(t2.shape, self.src.affine)
        w = self._lesion_weight(pts) * (self.src.smoothed_mask() > 0.3)
        # Lesions pull the T2 down towards ~35% of the gland's median (low-signal foci); voxels
        # already darker than that stay as they are.
        return np.asarray(t2 - w * np.maximum(t2 - 0.35 * self.med, 0), dtype=np.float32)

    def landmark_candidates(self) -> list[tuple[str, F64]]:
        pts = self.src.gland_points_world()
        c = self.c
        rel = pts - c
        out: list[tuple[str, F64]] = []
        for i, les in enumerate(self.lesions):
            out.append((f"lesion{i + 1}", np.asarray(les["center_world"], dtype=np.float64)))
        depth = self.src.inner_depth_mm()[tuple(np.argwhere(self.src.mask > 0).T)]
        inner = depth >= 3.0

        def centroid(sel: NDArray[np.bool_]) -> F64:
            sel = sel & inner if (sel & inner).sum() >= 5 else sel
            return np.asarray(pts[sel].mean(axis=0), dtype=np.float64)

        z, x, y = rel[:, 2], rel[:, 0], rel[:, 1]
        ext = np.abs(rel).max(axis=0)
        out += [
            ("apex", centroid(z <= np.percentile(z, 12))),
            ("base", centroid(z >= np.percentile(z, 88))),
            ("left_mid", centroid((x <= np.percentile(x, 15)) & (np.abs(z) < 8))),
            ("right_mid", centroid((x >= np.percentile(x, 85)) & (np.abs(z) < 8))),
            ("posterior_mid", centroid((y <= np.percentile(y, 15)) & (np.abs(x) < 8))),
            ("centre", np.asarray(c, dtype=np.float64)),
            ("anterior_mid", centroid((y >= np.percentile(y, 85)) & (np.abs(x) < 8))),
            ("left_base", centroid((x < -0.3 * ext[0]) & (z > 0.3 * ext[2]))),
            ("right_base", centroid((x > 0.3 * ext[0]) & (z > 0.3 * ext[2]))),
            ("left_apex", centroid((x < -0.2 * ext[0]) & (z < -0.3 * ext[2]))),
            ("right_apex", centroid((x > 0.2 * ext[0]) & (z < -0.3 * ext[2]))),
        ]
        return out

    def props(self, pts: F32) -> _Props:
        src = self.src
        vidx = _world_to_index(pts, src.affine).reshape(3, -1)
        shape = pts.shape[1:]
        t2 = ndimage.map_coordinates(self.t2_mr, vidx, order=1, mode="nearest").reshape(shape)
        soft = ndimage.map_coordinates(src.smoothed_mask(), vidx, order=1, mode="constant")
        soft = soft.reshape(shape).astype(np.float32)
        t = t2 / np.float32(self.med)
        # Crude T2 → echogenicity map: muscle (dark T2) dark, fat (bright T2) bright, fluid
        # anechoic. Fat reaches 1.5–3x the gland's median T2 depending on the protocol, so fluid
        # starts where the brightest 0.5% of this volume's T2 is (at least 3x the gland median).
        if "fluid_t" not in src._cache:
            src._cache["fluid_t"] = max(
                3.0, 0.75 * float(np.percentile(self.t2_mr, 99.5)) / self.med
            )
        tf = float(src._cache["fluid_t"])
        out_echo = np.interp(
            t, [0.0, 0.5, 1.0, 1.6, tf, 1.35 * tf], [0.12, 0.26, 0.4, 0.5, 0.55, 0.04]
        )
        in_echo = np.interp(t, [0.0, 0.4, 0.7, 1.0, 1.6], [0.14, 0.21, 0.37, 0.55, 0.6])
        echo = (out_echo + soft * (in_echo - out_echo)).astype(np.float32)
        att = (-0.012 * np.clip((t - tf) / (0.35 * tf), 0, 1)).astype(np.float32)
        return _Props(
            t2=t2.astype(np.float32),
            echo=echo,
            atten=att,
            gland_soft=soft,
            gland=soft >= 0.5,
        )


# ------------------------------------------------------------------------------------------------
# Landmarks


def _landmarks_choose(
    rng: np.random.Generator, candidates: list[tuple[str, F64]], n: int, min_sep: float
) -> list[tuple[str, F64]]:
    """Lesion/cyst/calcification points first (they are visible), then zone points, well apart.

    The separation is relaxed step by step (never below two maximal radii) until ``n`` are found.
    """
    visible = [c for c in candidates if c[0].startswith(("lesion", "cyst", "calc"))]
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


def _landmarks_raster(pts: F32, centres: Sequence[F64], radii: Sequence[float]) -> U8:
    out = np.zeros(pts.shape[1:], dtype=np.uint8)
    for k, (cw, r) in enumerate(zip(centres, radii), start=1):
        d2 = sum((pts[i] - np.float32(cw[i])) ** 2 for i in range(3))
        out[d2 <= np.float32(r * r)] = k
    return out


# ------------------------------------------------------------------------------------------------
# Ultrasound image formation


def _us_image(rng: np.random.Generator, props: _Props, fov: U8, spacing: float) -> F32:
    """The TRUS image of the anatomy: see :func:`inference.us_appearance.us_render`."""
    from inference.us_appearance import us_render

    # A child generator: the renderer's draws then leave the landmarks that follow unchanged.
    child = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
    return us_render(
        child,
        echo=props.echo,
        atten=props.atten,
        gland_soft=props.gland_soft,
        fov=fov,
        spacing=spacing,
    )


# ------------------------------------------------------------------------------------------------
# The pair


def _lesions_random(rng: np.random.Generator) -> list[LesionSpec]:
    n = int(rng.choice([0, 1, 1, 2]))
    sides: list[Side] = ["left", "right"]
    zones: list[Zone] = ["pz", "pz", "tz"]
    return [
        LesionSpec(
            side=sides[int(rng.integers(0, 2))],
            zone=zones[int(rng.integers(0, 3))],
            radius_mm=float(rng.uniform(3.0, 8.0)),
            conspicuity=float(rng.uniform(0.4, 1.0)),
        )
        for _ in range(n)
    ]


def _side_summary(lesions: Sequence[dict[str, Any]]) -> str:
    sides = {les["side"] for les in lesions}
    if not sides:
        return "none"
    return "bilateral" if len(sides) == 2 else next(iter(sides))


def simulate_pair(
    *,
    seed: int,
    source: SimSource | None = None,
    lesions: Sequence[LesionSpec] | None = None,
    n_landmarks: int | None = None,
    us_shape: Sequence[int] = US_SHAPE,
    us_spacing: float = US_SPACING,
    deformation_scale: float = 1.0,
    frame: Literal["own", "shared"] = "own",
) -> SimulatedPair:
    """Simulate one MR T2 / TRUS pair with a known deformation (see the module docstring).

    Args:
        seed: the only source of randomness; the same arguments give the same pair.
        source: a real T2 + gland mask, or None for the parametric phantom.
        lesions: lesions to simulate; None draws 0–2 at random, ``[]`` means none.
        n_landmarks: 3–6; None draws it.
        us_shape, us_spacing: the TRUS grid (isotropic spacing, mm).
        deformation_scale: multiplies every deformation amplitude (0 gives u = 0 up to rounding).
        frame: ``"own"`` (default, the clinical way): the TRUS affine is the probe's own frame
            (origin 0, axes of the probe), related to the MR scanner frame by an unknown rigid
            transform (any translation, rotations up to ±20° about each axis). ``"shared"``: the TRUS
            affine is given in the MR scanner frame (as µ-RegPro's pre-aligned data).
    """
    if frame not in ("own", "shared"):
        raise ValueError(f"frame must be 'own' or 'shared', got {frame!r}")
    if n_landmarks is not None and not 3 <= n_landmarks <= 6:
        raise ValueError(f"n_landmarks must be in 3..6, got {n_landmarks}")
    shape_us = tuple(int(s) for s in us_shape)
    if len(shape_us) != 3 or min(shape_us) < 16:
        raise ValueError(f"us_shape must be 3 sizes of at least 16, got {tuple(us_shape)}")
    if not 0.2 <= us_spacing <= 3.0:
        raise ValueError(f"us_spacing must be in 0.2..3.0 mm, got {us_spacing}")
    if not 0.0 <= deformation_scale <= 3.0:
        raise ValueError(f"deformation_scale must be in 0..3, got {deformation_scale}")
    rng = np.random.default_rng(int(seed))
    lesion_specs = list(lesions) if lesions is not None else _lesions_random(rng)
    n_lm = int(n_landmarks) if n_landmarks is not None else int(rng.integers(3, 7))

    # --- anatomy and the MR volume
    anatomy: _Phantom | _RealAnatomy
    if source is None:
        centre = rng.uniform(-25, 25, 3)
        anatomy = _Phantom(rng, centre, lesion_specs)
        obliq = _rotation(
            np.radians([rng.uniform(-12, 12), rng.uniform(-4, 4), rng.uniform(-4, 4)])
        )
        lin = obliq @ np.diag([-1.0, -1.0, 1.0]) @ np.diag(MR_SPACING)  # LPS voxel order
        mr_affine = np.eye(4)
        mr_affine[:3, :3] = lin
        grid_centre = centre + obliq @ np.array([0.0, 8.0, 0.0]) + rng.uniform(-4, 4, 3)
        mr_affine[:3, 3] = grid_centre - lin @ ((np.asarray(MR_SHAPE) - 1) / 2)
        mr_pts = _grid_world(MR_SHAPE, mr_affine)
        mp = anatomy.props(mr_pts)
        bias = 1 + 0.12 * np.tanh((mr_pts[1] - np.float32(centre[1])) / -40.0)
        sigma = np.float32(22.0)
        n1 = rng.standard_normal(MR_SHAPE, dtype=np.float32) * sigma
        n2 = rng.standard_normal(MR_SHAPE, dtype=np.float32) * sigma
        mr = np.sqrt((mp.t2 * bias + n1) ** 2 + n2**2).astype(np.float32)
        mr_label = mp.gland.astype(np.uint8)
        source_name = "phantom"
    else:
        anatomy = _RealAnatomy(rng, source, lesion_specs)
        centre = anatomy.c
        mr_affine = np.asarray(source.affine, dtype=np.float64)
        mr = anatomy.t2_mr
        mr_label = (source.mask > 0).astype(np.uint8)
        mr_pts = _grid_world(mr.shape, mr_affine)
        source_name = source.name

    # --- TRUS grid: the probe's axes (i → right, j → anterior = depth, k → superior), tilted
    # against the MR scanner axes by up to ±20° per axis in the "own" frame (the probe is held by
    # hand); the gland centre near _US_GLAND_VOXEL. The tilt comes from its own generator so that
    # a "shared" pair with the same seed is the same anatomy and deformation.
    sc = float(deformation_scale)
    frng = np.random.default_rng([int(seed), 20])
    tilt_deg = frng.uniform(-20, 20, 3) if frame == "own" else np.zeros(3)
    probe_rot = _rotation(np.radians(tilt_deg))
    us_affine = np.eye(4)
    us_affine[:3, :3] = probe_rot * us_spacing
    target = np.asarray(_US_GLAND_VOXEL) * (np.asarray(shape_us) - 1)
    jitter = rng.uniform(-3, 3, 3) * np.array([1.0, 0.5, 1.0])
    us_affine[:3, 3] = centre + probe_rot @ jitter - us_affine[:3, :3] @ target
    x_us = _grid_world(shape_us, us_affine)
    # Probe coordinates (mm along the grid axes from voxel 0): the compression acts along depth.
    x_probe = np.indices(shape_us, dtype=np.float32) * np.float32(us_spacing)
    c_probe = probe_rot.T @ (centre - us_affine[:3, 3])

    # --- the known deformation T: TRUS world -> MR world
    probe_y = float(_PROBE_J * us_spacing)
    probe_x = float(c_probe[0] + rng.uniform(-4, 4))
    probe_z = float(c_probe[2] + rng.uniform(-8, 8))
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
    bx, by, bz = (_bspline_basis(n, n_ctrl) for n in shape_us)
    bsp = np.einsum("cabd,ia,jb,kd->cijk", coef, bx, by, bz, optimize=True).astype(np.float32)
    v = bsp
    v -= d[None] * probe_rot[:, 1].astype(np.float32).reshape(3, 1, 1, 1)
    # The gland's own rotation in the pelvis is smaller than the probe tilt above.
    angles = np.radians(rng.uniform(-10, 10, 3)) * sc * (0.5 if frame == "own" else 1.0)
    scales = 1.0 + rng.uniform(-0.04, 0.04, 3) * sc
    mat = (_rotation(angles) @ np.diag(scales)).astype(np.float32)
    trans = (rng.uniform(-6, 6, 3) * sc).astype(np.float32)
    c32 = centre.astype(np.float32).reshape(3, 1, 1, 1)
    t_x = np.einsum("ij,j...->i...", mat, x_us + v - c32) + c32 + trans.reshape(3, 1, 1, 1)
    lin_inv = np.linalg.inv(us_affine[:3, :3]).astype(np.float32)
    disp = np.einsum("ij,j...->i...", lin_inv, t_x - x_us).astype(np.float32)

    # --- TRUS image and labels
    up = anatomy.props(t_x)
    fov = us_fan_mask(shape_us, us_spacing)
    us = _us_image(rng, up, fov, us_spacing)
    us_label = up.gland.astype(np.uint8)

    # --- landmarks (same continuous spheres evaluated on both grids)
    cands = anatomy.landmark_candidates()
    # Zone points are nominal positions; keep those that the (perturbed) gland really contains.
    cand_pts = np.array([p for _, p in cands], dtype=np.float32).T
    inside = anatomy.props(cand_pts).gland_soft > 0.7
    cands = [c for c, ok in zip(cands, inside) if ok or c[0].startswith(("lesion", "cyst", "calc"))]
    chosen = _landmarks_choose(rng, cands, n_lm, min_sep=9.0)
    radii = [float(rng.uniform(2.5, 3.5)) for _ in chosen]
    centres = [p for _, p in chosen]
    mr_lm = _landmarks_raster(mr_pts, centres, radii)
    us_lm = _landmarks_raster(t_x, centres, radii)

    # The TRUS as a probe stores it: its own frame, origin 0. ``frame_to_mr`` (kept in params and
    # on the pair) maps that frame into the MR scanner frame; registration never sees it.
    us_affine_mr = us_affine
    if frame == "own":
        us_affine = np.diag([us_spacing, us_spacing, us_spacing, 1.0])
    frame_to_mr = us_affine_mr @ np.linalg.inv(us_affine)
    params = {
        "generator": f"inference.simulate v{SIM_VERSION}",
        "frame": frame,
        "probe_tilt_deg": np.asarray(tilt_deg).round(3).tolist(),
        "frame_to_mr_world": np.asarray(frame_to_mr).round(6).tolist(),
        "compression_mm": comp,
        "compression_decay_mm": lam,
        "rotation_deg": np.degrees(angles).round(3).tolist(),
        "scaling": np.asarray(scales).round(4).tolist(),
        "translation_mm": trans.round(3).tolist(),
        "bspline_sigma_mm": 2.0 * sc,
        "gland_centre_world": np.asarray(centre).round(3).tolist(),
        "landmark_radii_mm": [round(r, 3) for r in radii],
    }
    lesion_info = tuple(
        {
            k: (np.asarray(v).round(3).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in les.items()
            if k != "local"
        }
        for les in anatomy.lesions
    )
    return SimulatedPair(
        mr=np.asarray(mr, dtype=np.float32),
        mr_affine=mr_affine,
        mr_label=mr_label,
        mr_landmarks=mr_lm,
        us=us,
        us_affine=us_affine,
        us_label=us_label,
        us_landmarks=us_lm,
        us_fov=fov,
        displacement=disp,
        landmark_names=tuple(name for name, _ in chosen),
        lesions=lesion_info,
        lesion_side=_side_summary(anatomy.lesions),
        seed=int(seed),
        source=source_name,
        params=params,
        us_affine_mr=us_affine_mr,
    )


# ------------------------------------------------------------------------------------------------
# Resampling helpers (the affine-only "mr_on_us" of the displacement convention)


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


# ------------------------------------------------------------------------------------------------
# Writers


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


def sim_sources_load(directory: str | os.PathLike[str]) -> list[SimSource]:
    """Real sources from a folder of ``prostate_T2_<n>.nii.gz`` + ``prostate_segm_<n>.nii.gz`` (Yale)."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"source folder {d} does not exist")
    out = []
    for t2 in sorted(d.glob("prostate_T2_*.nii*")):
        suffix = t2.name[len("prostate_T2_") :]
        mask = d / f"prostate_segm_{suffix}"
        if not mask.exists():
            raise FileNotFoundError(f"{t2} has no gland mask {mask.name} beside it")
        out.append(SimSource.from_files(t2, mask))
    if not out:
        raise FileNotFoundError(f"{d} holds no prostate_T2_<n>.nii.gz files")
    return out


def sim_sources_promise12(
    which: str, directory: str | os.PathLike[str] | None = None
) -> list[SimSource]:
    """PROMISE12 sources: ``"heldout"``, ``"training"`` (see :mod:`inference.datasets`) or names
    separated by commas (``"train04,train09"``)."""
    from inference.datasets import PROMISE12_HELDOUT, promise12_training

    if which == "heldout":
        names = list(PROMISE12_HELDOUT)
    elif which == "training":
        names = promise12_training(directory)
    else:
        names = [n.strip() for n in which.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no PROMISE12 cases selected by {which!r}")
    return [SimSource.from_promise12(n, directory) for n in names]


def _fresh_output(out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Check ``out_dir`` is absent or empty; return it and a temporary sibling to build into."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    return out, tmp


def _commit_output(tmp: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty, checked by _fresh_output
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary shared folder
    os.replace(tmp, out)


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
    out, tmp = _fresh_output(out_dir)
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
        _commit_output(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


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


MANIFEST_COLUMNS = [
    "case_code",
    "age",
    "reference_pirads",
    "cspca",
    "isup_grade",
    "gleason",
    "lesion_side",
    "mr_t2",
    "trus",
    "mr_label",
    "trus_label",
    "mr_landmarks",
    "trus_landmarks",
    "synthetic",
]


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
    out, tmp = _fresh_output(out_dir)
    try:
        rows = []
        for i, (pirads, (specs, isup)) in enumerate(zip(pirads_all, clinical)):
            code = f"SIM-{i + 1:03d}"
            src = sources[(i // 3) % len(sources)] if sources and i % 3 == 2 else None
            pair = simulate_pair(seed=int(seed) * 1000 + i, source=src, lesions=specs)
            case_dir = tmp / code
            paths: dict[str, tuple[NDArray[np.generic], F64]] = {
                "mr_t2": (pair.mr, pair.mr_affine),
                "trus": (pair.us, pair.us_affine),
                "mr_label": (pair.mr_label, pair.mr_affine),
                "trus_label": (pair.us_label, pair.us_affine),
                "mr_landmarks": (pair.mr_landmarks, pair.mr_affine),
                "trus_landmarks": (pair.us_landmarks, pair.us_affine),
            }
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
            for col, (arr, aff) in paths.items():
                volume_save(case_dir / f"{col}.nii.gz", arr, aff)
                row[col] = f"{code}/{col}.nii.gz"
            rows.append(row)
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
        _commit_output(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "manifest.csv"


# ------------------------------------------------------------------------------------------------
# CLI


def _progress_print(done: int, total: int) -> None:
    print(f"  {done}/{total}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.simulate",
        description="Write SIMULATED MR/TRUS data (synthetic; see the module docstring).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a demo cohort folder with manifest.csv")
    demo.add_argument("--out", required=True)
    demo.add_argument("--cases", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--yale", default=None, help="folder of real T2 + gland masks (Yale layout)")
    ds = sub.add_parser("dataset", help="a DeepReg paired training folder")
    ds.add_argument("--out", required=True)
    ds.add_argument("--pairs", type=int, default=64)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--yale", default=None, help="folder of real T2 + gland masks (Yale layout)")
    ds.add_argument(
        "--promise12",
        default=None,
        help="real PROMISE12 glands: heldout, training or names (train04,train09); "
        "with it every pair is built on a real gland",
    )
    ds.add_argument("--moving-grid", choices=["fixed", "own"], default="own")
    ds.add_argument(
        "--frame",
        choices=["own", "shared"],
        default="own",
        help="own (default): each TRUS in its own probe frame; shared: in the MR scanner frame",
    )
    ds.add_argument(
        "--displacements",
        action="store_true",
        help="also write the ground-truth fields (~9 MB each)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.command == "demo":
            path = write_demo_cohort(
                args.out,
                n_cases=args.cases,
                seed=args.seed,
                yale_dir=args.yale,
                progress=_progress_print,
            )
        else:
            extra = sim_sources_promise12(args.promise12) if args.promise12 else []
            path = write_dataset(
                args.out,
                n_pairs=args.pairs,
                seed=args.seed,
                yale_dir=args.yale,
                sources=extra,
                real_fraction=1.0 if extra else 0.5,
                moving_grid=args.moving_grid,
                frame=args.frame,
                with_displacement=args.displacements,
                progress=_progress_print,
            )
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (SIMULATED data) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
