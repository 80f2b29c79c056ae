"""Geometry of an MR → TRUS registration whose two images share no frame of reference (numpy/scipy).

A TRUS volume's affine describes the probe's frame (origin near the probe, axes of the probe), not
the MR scanner's: the two affines only agree on the *orientation convention* (both are RAS+ in the
patient's terms, up to how the probe was held: a tilt of some degrees). Everything is therefore
expressed as one transform from TRUS voxels ``p`` to MR voxels ``q``::

    q(p) = A_mr⁻¹ · W · A_us · (p + u(p))

``A_us``/``A_mr`` are the images' affines, ``W`` (4×4) maps TRUS world mm to MR world mm (the
*frame alignment*, found from the gland labels by :func:`frame_align`) and ``u`` ``(3, X, Y, Z)`` is
the deformable part in TRUS voxels (network and/or instance optimisation; zero for "initial").
Images and labels are sampled from the ORIGINAL MR once through ``q`` (:func:`mr_sample`): one
interpolation, zero outside the MR's field of view. Landmarks are mapped as points
(:func:`points_mr_to_us`), never resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

__all__ = [
    "FrameAlignment",
    "frame_align",
    "mr_sample",
    "mr_voxel_map",
    "points_mr_to_us",
    "spacing_of",
]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]


def spacing_of(affine: NDArray[np.floating]) -> F64:
    """Voxel sizes (mm) of a 4×4 affine: the column norms of its linear part."""
    return np.asarray(np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))


@dataclass(frozen=True)
class FrameAlignment:
    """Result of :func:`frame_align`.

    Attributes:
        matrix: 4×4, TRUS world (mm) → MR world (mm).
        kind: ``"rigid"`` or ``"affine"`` (rigid plus anisotropic scaling along the TRUS axes).
        dsc: Dice of the two gland labels at this alignment, on the TRUS grid.
        rotation_deg: angle of the rotation between the two frames' axes.
        scales: the scaling factors (1, 1, 1 for ``rigid``).
    """

    matrix: F64
    kind: str
    dsc: float
    rotation_deg: float
    scales: tuple[float, float, float]


def _check_label(name: str, label: NDArray[np.generic], affine: NDArray[np.floating]) -> None:
    if np.asarray(label).ndim != 3:
        raise ValueError(f"{name} must be a 3-D label (X, Y, Z), got shape {np.shape(label)}")
    if np.asarray(affine).shape != (4, 4):
        raise ValueError(f"{name} affine must be 4x4, got {np.shape(affine)}")


def _centroid_world(label: NDArray[np.bool_], affine: F64) -> F64:
    c = np.asarray(ndimage.center_of_mass(label), dtype=np.float64)
    return np.asarray(affine[:3, :3] @ c + affine[:3, 3])


def _axes_world(label: NDArray[np.bool_], affine: F64) -> F64:
    pts = np.argwhere(label).astype(np.float64) @ affine[:3, :3].T
    _, vec = np.linalg.eigh(np.cov(pts, rowvar=False))
    return np.asarray(vec[:, ::-1])  # columns: major → minor axis


def _pca_rotation(mr: NDArray[np.bool_], a_mr: F64, us: NDArray[np.bool_], a_us: F64) -> F64:
    """Rotation taking the TRUS gland's principal axes onto the MR gland's, the sign choice
    closest to the identity (both frames share the RAS convention, so a flip is never right)."""
    e_mr, e_us = _axes_world(mr, a_mr), _axes_world(us, a_us)
    best, best_tr = np.eye(3), -np.inf
    for sx in (1.0, -1.0):
        for sy in (1.0, -1.0):
            d = np.diag([sx, sy, sx * sy * np.linalg.det(e_mr) * np.linalg.det(e_us)])
            r = e_mr @ d @ e_us.T
            if np.trace(r) > best_tr:
                best, best_tr = r, float(np.trace(r))
    return np.asarray(best)


class _Objective:
    """Soft Dice of the blurred labels on sample points of the TRUS label's neighbourhood."""

    def __init__(
        self,
        *,
        mr_soft: F32,
        a_mr: F64,
        us_soft: F32,
        a_us: F64,
        c_us: F64,
        c_mr: F64,
        step_mm: float,
        margin_mm: float = 10.0,
    ) -> None:
        sp = spacing_of(a_us)
        box = np.argwhere(us_soft > 0.05)
        lo = np.maximum(box.min(0) - np.ceil(margin_mm / sp), 0).astype(int)
        hi = np.minimum(box.max(0) + np.ceil(margin_mm / sp) + 1, us_soft.shape).astype(int)
        step = np.maximum(np.round(step_mm / sp), 1).astype(int)
        sl = tuple(slice(int(a), int(b), int(s)) for a, b, s in zip(lo, hi, step))
        idx = np.stack(
            np.meshgrid(*[np.arange(s.start, s.stop, s.step) for s in sl], indexing="ij")
        )
        self.f = us_soft[sl].reshape(-1).astype(np.float64)
        pts = idx.reshape(3, -1).astype(np.float64)
        self.x = a_us[:3, :3] @ pts + a_us[:3, 3:4] - c_us[:, None]  # relative to the TRUS centroid
        self.c_mr = c_mr
        self.inv_mr = np.linalg.inv(a_mr)
        self.mr_soft = mr_soft
        self.sum_f = float(self.f.sum())
        # The blurred labels' Dice with themselves is below 1; scores are relative to it.
        self.self_dice = float(np.dot(self.f, self.f) / max(self.sum_f, 1e-9))

    def _moving(self, params: F64) -> F64:
        y = self.linear(params) @ self.x + (self.c_mr + params[3:6])[:, None]
        q = self.inv_mr[:3, :3] @ y + self.inv_mr[:3, 3:4]
        return np.asarray(ndimage.map_coordinates(self.mr_soft, q, order=1, mode="constant"))

    def binary_dice(self, params: F64) -> float:
        m, f = self._moving(params) > 0.5, self.f > 0.5
        return float(2.0 * np.sum(m & f) / max(int(m.sum() + f.sum()), 1))

    def linear(self, params: F64) -> F64:
        rot = Rotation.from_rotvec(np.radians(params[:3])).as_matrix()
        scales = np.exp(params[6:9]) if params.size > 6 else np.ones(3)
        return np.asarray(rot @ np.diag(scales))

    def matrix(self, params: F64, c_us: F64) -> F64:
        lin = self.linear(params)
        out = np.eye(4)
        out[:3, :3] = lin
        out[:3, 3] = self.c_mr + params[3:6] - lin @ c_us
        return out

    def dice(self, params: F64) -> float:
        m = self._moving(params)
        return float(2.0 * np.dot(m, self.f) / (m.sum() + self.sum_f + 1e-9)) / self.self_dice

    def cost(self, params: F64, max_rot: float) -> float:
        angle = float(np.linalg.norm(params[:3]))
        penalty = max(angle - max_rot, 0.0) * 0.05
        if params.size > 6:
            penalty += float(np.sum(np.maximum(np.abs(params[6:9]) - np.log(1.35), 0.0))) * 10
        return 1.0 - self.dice(params) + penalty


def _minimise(obj: _Objective, x0: F64, max_rot: float, maxfev: int) -> tuple[F64, float]:
    res = optimize.minimize(
        obj.cost,
        x0,
        args=(max_rot,),
        method="Powell",
        options={"maxfev": maxfev, "xtol": 1e-2, "ftol": 1e-5},
    )
    return np.asarray(res.x, dtype=np.float64), float(res.fun)


def frame_align(
    *,
    mr_label: NDArray[np.generic],
    mr_affine: NDArray[np.floating],
    us_label: NDArray[np.generic],
    us_affine: NDArray[np.floating],
    max_rotation_deg: float = 30.0,
    use_affine: bool = True,
) -> FrameAlignment:
    """Align the TRUS frame to the MR frame from the two gland labels, each in its own frame.

    Centroids give the translation (any size); the rotation starts from the identity (both affines
    follow the RAS convention; a probe tilts by some degrees) and from the principal-axes rotation,
    then a rigid fit maximises the Dice of the Gaussian-blurred labels (Powell; coarse 4 mm, then
    2.5 mm samples), bounded to ``max_rotation_deg``. With ``use_affine`` an anisotropic scaling
    (probe compression, within ±35%) is added when it raises the Dice by more than 0.005.

    Args:
        mr_label: ``(X, Y, Z)`` MR gland label on the MR grid; ``mr_affine`` its 4×4 affine.
        us_label: ``(X', Y', Z')`` TRUS gland label on the TRUS grid; ``us_affine`` its 4×4 affine.

    Raises:
        ValueError: a label is not 3-D or is empty.
    """
    # Thousands of tiny BLAS calls: BLAS threads only spin against each other (10x slower on a
    # busy machine), so they are pinned to one for the search.
    with threadpool_limits(limits=1):
        return _frame_align(
            mr_label=mr_label,
            mr_affine=mr_affine,
            us_label=us_label,
            us_affine=us_affine,
            max_rotation_deg=max_rotation_deg,
            use_affine=use_affine,
        )


def _frame_align(
    *,
    mr_label: NDArray[np.generic],
    mr_affine: NDArray[np.floating],
    us_label: NDArray[np.generic],
    us_affine: NDArray[np.floating],
    max_rotation_deg: float,
    use_affine: bool,
) -> FrameAlignment:
    _check_label("mr_label", mr_label, mr_affine)
    _check_label("us_label", us_label, us_affine)
    m = np.asarray(mr_label) > 0
    f = np.asarray(us_label) > 0
    if not m.any():
        raise ValueError("the MR gland label is empty: nothing to align")
    if not f.any():
        raise ValueError("the TRUS gland label is empty: nothing to align")
    a_mr = np.asarray(mr_affine, dtype=np.float64)
    a_us = np.asarray(us_affine, dtype=np.float64)
    c_mr, c_us = _centroid_world(m, a_mr), _centroid_world(f, a_us)
    # Blur by ~2 mm: a wider basin of attraction than the binary labels give.
    mr_soft = ndimage.gaussian_filter(m.astype(np.float32), 2.0 / spacing_of(a_mr))
    us_soft = ndimage.gaussian_filter(f.astype(np.float32), 2.0 / spacing_of(a_us))
    common = {"mr_soft": mr_soft, "a_mr": a_mr, "us_soft": us_soft, "a_us": a_us}
    coarse = _Objective(**common, c_us=c_us, c_mr=c_mr, step_mm=4.0)
    starts = [np.zeros(6)]
    if m.sum() >= 20 and f.sum() >= 20:
        rv = np.degrees(Rotation.from_matrix(_pca_rotation(m, a_mr, f, a_us)).as_rotvec())
        if np.linalg.norm(rv) <= max_rotation_deg:
            starts.append(np.concatenate([rv, np.zeros(3)]))
    results = [_minimise(coarse, x0, max_rotation_deg, 300) for x0 in starts]
    if min(r[1] for r in results) > 0.15:  # poor fit: widen the search over tilts
        for axis in range(3):
            for sign in (1.0, -1.0):
                x0 = np.zeros(6)
                x0[axis] = sign * 0.5 * max_rotation_deg
                results.append(_minimise(coarse, x0, max_rotation_deg, 300))
    best = min(results, key=lambda r: r[1])[0]
    fine = _Objective(**common, c_us=c_us, c_mr=c_mr, step_mm=2.5)
    best, _ = _minimise(fine, best, max_rotation_deg, 300)
    dsc, kind, params = fine.dice(best), "rigid", best
    if use_affine:
        aff, _ = _minimise(fine, np.concatenate([best, np.zeros(3)]), max_rotation_deg, 500)
        adsc = fine.dice(aff)
        if adsc > dsc + 0.005 and np.all(np.abs(aff[6:9]) <= np.log(1.35)):
            dsc, kind, params = adsc, "affine", aff
    scales = np.exp(params[6:9]) if params.size > 6 else np.ones(3)
    return FrameAlignment(
        matrix=fine.matrix(params, c_us),
        kind=kind,
        dsc=fine.binary_dice(params),
        rotation_deg=float(np.linalg.norm(params[:3])),
        scales=(float(scales[0]), float(scales[1]), float(scales[2])),
    )


def mr_voxel_map(
    *,
    us_shape: tuple[int, ...],
    us_affine: NDArray[np.floating],
    mr_affine: NDArray[np.floating],
    world: NDArray[np.floating],
    displacement: NDArray[np.floating] | None = None,
) -> F64:
    """MR voxel coordinates ``q(p)`` ``(3, X, Y, Z)`` of every TRUS voxel ``p`` (module docstring).

    ``displacement``: ``(3, X, Y, Z)`` in TRUS voxels on the TRUS grid ``us_shape``, or None.
    """
    shape = tuple(int(s) for s in us_shape)
    if displacement is not None and np.shape(displacement) != (3, *shape):
        raise ValueError(
            f"displacement must be (3, {', '.join(map(str, shape))}), got {np.shape(displacement)}"
        )
    m = np.linalg.inv(np.asarray(mr_affine, dtype=np.float64)) @ np.asarray(world) @ us_affine
    p = np.indices(shape, dtype=np.float64).reshape(3, -1)
    if displacement is not None:
        p = p + np.asarray(displacement, dtype=np.float64).reshape(3, -1)
    return np.asarray((m[:3, :3] @ p + m[:3, 3:4]).reshape(3, *shape))


def mr_sample(
    volume: NDArray[np.generic],
    *,
    mr_affine: NDArray[np.floating],
    us_shape: tuple[int, ...],
    us_affine: NDArray[np.floating],
    world: NDArray[np.floating],
    displacement: NDArray[np.floating] | None = None,
    order: int = 1,
) -> F32:
    """Sample an MR-grid volume ``(X, Y, Z)`` on the TRUS grid through ``q(p)``: one interpolation
    of the original, 0 outside the MR's field of view (no border padding, so no streaks)."""
    q = mr_voxel_map(
        us_shape=us_shape,
        us_affine=us_affine,
        mr_affine=mr_affine,
        world=world,
        displacement=displacement,
    )
    out = ndimage.map_coordinates(
        np.asarray(volume, dtype=np.float32), q, order=order, mode="grid-constant", cval=0.0
    )
    return np.asarray(out, dtype=np.float32)


def points_mr_to_us(
    points: NDArray[np.floating],
    *,
    world: NDArray[np.floating],
    us_affine: NDArray[np.floating],
    displacement: NDArray[np.floating] | None = None,
    iterations: int = 40,
) -> F64:
    """Map MR world points ``(N, 3)`` (mm) to TRUS voxel coordinates ``(N, 3)``: the ``p`` with
    ``A_us (p + u(p)) = W⁻¹ y``, found by fixed-point iteration ``p ← p₀ − u(p)`` (converges for any
    field whose Jacobian has norm < 1, i.e. without folding)."""
    y = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    x = (np.linalg.inv(np.asarray(world, dtype=np.float64)) @ np.c_[y, np.ones(len(y))].T)[:3]
    a_us = np.asarray(us_affine, dtype=np.float64)
    p0 = np.linalg.solve(a_us[:3, :3], x - a_us[:3, 3:4])
    if displacement is None:
        return np.asarray(p0.T)
    u = np.asarray(displacement, dtype=np.float64)
    p = p0.copy()
    for _ in range(iterations):
        up = np.stack([ndimage.map_coordinates(u[c], p, order=1, mode="nearest") for c in range(3)])
        p = p0 - up
    return np.asarray(p.T)
