"""Numerical helpers of the simulator: world grids, smooth random fields, rotations, the TRUS fan.

Arrays: points are ``(3, ...)`` world coordinates in mm (RAS+); grids are ``(X, Y, Z)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from inference.simulate.specs import F32, F64, PROBE_J, U8, US_SHAPE, US_SPACING

_FAN_HALF_ANGLE_DEG = 55.0
_FAN_APEX_MM = 12.0  # virtual apex of the transverse sector behind the grid's posterior face
_FAN_SAG_HALF_ANGLE_DEG = 50.0
_FAN_SAG_APEX_MM = 20.0


def grid_world(shape: Sequence[int], affine: F64) -> F32:
    """World coordinates (3, X, Y, Z) float32 of every voxel centre."""
    idx = np.indices(tuple(shape), dtype=np.float32)
    a = affine.astype(np.float32)
    return np.einsum("ij,j...->i...", a[:3, :3], idx) + a[:3, 3].reshape(3, 1, 1, 1)


def world_to_index(points: F32, affine: F64) -> F32:
    inv = np.linalg.inv(affine).astype(np.float32)
    return np.einsum("ij,j...->i...", inv[:3, :3], points) + inv[:3, 3].reshape(
        (3,) + (1,) * (points.ndim - 1)
    )


def sigmoid(x: F32) -> F32:
    # tanh form: no overflow warnings for large |x|; in place because it runs ~30 times per volume.
    y = np.multiply(x, 0.5, dtype=np.float32)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def mix(base: F32, value: F32 | float, weight: F32) -> F32:
    return np.asarray(base + weight * (value - base), dtype=np.float32)


def power(a: F32, p: float) -> F32:
    # Generic float powers are ~5x slower than products; the phantom only needs these three.
    if p == 2.0:
        return a * a
    if p == 2.5:
        return a * a * np.sqrt(a)
    if p == 3.0:
        return a * a * a
    return np.asarray(a**p, dtype=np.float32)


def rotation(angles_rad: Sequence[float] | F64) -> F64:
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


def bspline_basis(n: int, n_ctrl: int) -> F32:
    """(n, n_ctrl) cubic B-spline weights of control points spread evenly over indices 0..n-1."""
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1) * (n_ctrl - 3) + 1.0
    d = np.abs(t[:, None] - np.arange(n_ctrl)[None, :])
    w = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    return w.astype(np.float32)


class NoiseField:
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
    trans = (ang <= _FAN_HALF_ANGLE_DEG) & (r >= _FAN_APEX_MM + PROBE_J * spacing)
    ys = np.arange(ny) * spacing + _FAN_SAG_APEX_MM
    sag = np.degrees(np.arctan2(np.abs(z[None, :]), ys[:, None])) <= _FAN_SAG_HALF_ANGLE_DEG
    return (trans[:, :, None] & sag[None, :, :]).astype(np.uint8)
