"""One simulated MR T2 / TRUS pair: anatomy, MR appearance, deformation, TRUS image, landmarks.

Deterministic per seed; numpy + scipy only (see :mod:`inference.simulate` for the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from inference.simulate.deformation import Deformation, TrusGrid, deformation_draw, trus_grid
from inference.simulate.fields import grid_world, rotation, us_fan_mask
from inference.simulate.landmarks import landmarks_place
from inference.simulate.phantom import Phantom, Props
from inference.simulate.real_anatomy import RealAnatomy
from inference.simulate.specs import (
    F32,
    F64,
    MR_SHAPE,
    MR_SPACING,
    SIM_VERSION,
    U8,
    US_SHAPE,
    US_SPACING,
    LesionSpec,
    Side,
    SimSource,
    SimulatedPair,
    Zone,
)


def _us_image(rng: np.random.Generator, props: Props, fov: U8, spacing: float) -> F32:
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


@dataclass
class _MrSide:
    """The anatomy and its MR volume: ``mr`` (X, Y, Z) ``float32``, ``points`` (3, X, Y, Z) world."""

    anatomy: Phantom | RealAnatomy
    centre: F64
    mr: F32
    affine: F64
    label: U8
    points: F32
    source_name: str


def _mr_simulate(
    rng: np.random.Generator, source: SimSource | None, lesions: Sequence[LesionSpec]
) -> _MrSide:
    """The phantom on an oblique axial grid with coil bias and Rician noise, or a real source's own
    volume, grid and affine (plus any inserted lesion)."""
    if source is not None:
        real = RealAnatomy(rng, source, lesions)
        mr_affine = np.asarray(source.affine, dtype=np.float64)
        return _MrSide(
            anatomy=real,
            centre=real.c,
            mr=real.t2_mr,
            affine=mr_affine,
            label=(source.mask > 0).astype(np.uint8),
            points=grid_world(real.t2_mr.shape, mr_affine),
            source_name=source.name,
        )
    centre = rng.uniform(-25, 25, 3)
    anatomy = Phantom(rng, centre, lesions)
    obliq = rotation(np.radians([rng.uniform(-12, 12), rng.uniform(-4, 4), rng.uniform(-4, 4)]))
    lin = obliq @ np.diag([-1.0, -1.0, 1.0]) @ np.diag(MR_SPACING)  # LPS voxel order
    mr_affine = np.eye(4)
    mr_affine[:3, :3] = lin
    grid_centre = centre + obliq @ np.array([0.0, 8.0, 0.0]) + rng.uniform(-4, 4, 3)
    mr_affine[:3, 3] = grid_centre - lin @ ((np.asarray(MR_SHAPE) - 1) / 2)
    mr_pts = grid_world(MR_SHAPE, mr_affine)
    mp = anatomy.props(mr_pts)
    bias = 1 + 0.12 * np.tanh((mr_pts[1] - np.float32(centre[1])) / -40.0)
    sigma = np.float32(22.0)
    n1 = rng.standard_normal(MR_SHAPE, dtype=np.float32) * sigma
    n2 = rng.standard_normal(MR_SHAPE, dtype=np.float32) * sigma
    mr = np.sqrt((mp.t2 * bias + n1) ** 2 + n2**2).astype(np.float32)
    return _MrSide(
        anatomy=anatomy,
        centre=centre,
        mr=mr,
        affine=mr_affine,
        label=mp.gland.astype(np.uint8),
        points=mr_pts,
        source_name="phantom",
    )


def _args_check(
    *, n_landmarks: int | None, us_shape: Sequence[int], us_spacing: float, scale: float, frame: str
) -> None:
    if frame not in ("own", "shared"):
        raise ValueError(f"frame must be 'own' or 'shared', got {frame!r}")
    if n_landmarks is not None and not 3 <= n_landmarks <= 6:
        raise ValueError(f"n_landmarks must be in 3..6, got {n_landmarks}")
    shape_us = tuple(int(s) for s in us_shape)
    if len(shape_us) != 3 or min(shape_us) < 16:
        raise ValueError(f"us_shape must be 3 sizes of at least 16, got {tuple(us_shape)}")
    if not 0.2 <= us_spacing <= 3.0:
        raise ValueError(f"us_spacing must be in 0.2..3.0 mm, got {us_spacing}")
    if not 0.0 <= scale <= 3.0:
        raise ValueError(f"deformation_scale must be in 0..3, got {scale}")


def _params(
    *,
    frame: str,
    grid: TrusGrid,
    frame_to_mr: F64,
    deformation: Deformation,
    scale: float,
    centre: F64,
    radii: Sequence[float],
) -> dict[str, Any]:
    """The pair's parameters as JSON-ready values (``params`` of :class:`SimulatedPair`)."""
    return {
        "generator": f"inference.simulate v{SIM_VERSION}",
        "frame": frame,
        "probe_tilt_deg": np.asarray(grid.tilt_deg).round(3).tolist(),
        "frame_to_mr_world": np.asarray(frame_to_mr).round(6).tolist(),
        "compression_mm": deformation.compression_mm,
        "compression_decay_mm": deformation.compression_decay_mm,
        "rotation_deg": np.degrees(deformation.angles_rad).round(3).tolist(),
        "scaling": np.asarray(deformation.scales).round(4).tolist(),
        "translation_mm": deformation.translation_mm.round(3).tolist(),
        "bspline_sigma_mm": 2.0 * scale,
        "gland_centre_world": np.asarray(centre).round(3).tolist(),
        "landmark_radii_mm": [round(r, 3) for r in radii],
    }


def _stored_frame(grid: TrusGrid, frame: str) -> tuple[F64, F64]:
    """The TRUS affine as stored, and the map from that frame into the MR scanner frame.

    The TRUS as a probe stores it: its own frame, origin 0. ``frame_to_mr`` (kept in params and
    on the pair) maps that frame into the MR scanner frame; registration never sees it.
    """
    us_affine = grid.affine
    if frame == "own":
        us_affine = np.diag([grid.spacing, grid.spacing, grid.spacing, 1.0])
    return us_affine, grid.affine @ np.linalg.inv(us_affine)


def _lesions_json(lesions: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The lesions as JSON-ready dicts (arrays as rounded lists, without the phantom's ``local``)."""
    return tuple(
        {
            k: (np.asarray(v).round(3).tolist() if isinstance(v, np.ndarray) else v)
            for k, v in les.items()
            if k != "local"
        }
        for les in lesions
    )


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
    """Simulate one MR T2 / TRUS pair with a known deformation (see :mod:`inference.simulate`).

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
    _args_check(
        n_landmarks=n_landmarks,
        us_shape=us_shape,
        us_spacing=us_spacing,
        scale=deformation_scale,
        frame=frame,
    )
    rng = np.random.default_rng(int(seed))
    lesion_specs = list(lesions) if lesions is not None else _lesions_random(rng)
    n_lm = int(n_landmarks) if n_landmarks is not None else int(rng.integers(3, 7))
    side = _mr_simulate(rng, source, lesion_specs)
    grid = trus_grid(
        rng, seed=seed, centre=side.centre, shape=us_shape, spacing=us_spacing, frame=frame
    )
    deformation = deformation_draw(
        rng, grid, centre=side.centre, scale=deformation_scale, frame=frame
    )
    up = side.anatomy.props(deformation.t_x)
    fov = us_fan_mask(grid.shape, us_spacing)
    us = _us_image(rng, up, fov, us_spacing)
    names, radii, mr_lm, us_lm = landmarks_place(
        rng, side.anatomy, n=n_lm, mr_pts=side.points, us_pts=deformation.t_x
    )
    us_affine, frame_to_mr = _stored_frame(grid, frame)
    lesion_info = _lesions_json(side.anatomy.lesions)
    return SimulatedPair(
        mr=np.asarray(side.mr, dtype=np.float32),
        mr_affine=side.affine,
        mr_label=side.label,
        mr_landmarks=mr_lm,
        us=us,
        us_affine=us_affine,
        us_label=up.gland.astype(np.uint8),
        us_landmarks=us_lm,
        us_fov=fov,
        displacement=deformation.displacement,
        landmark_names=names,
        lesions=lesion_info,
        lesion_side=_side_summary(side.anatomy.lesions),
        seed=int(seed),
        source=side.source_name,
        params=_params(
            frame=frame,
            grid=grid,
            frame_to_mr=frame_to_mr,
            deformation=deformation,
            scale=float(deformation_scale),
            centre=side.centre,
            radii=radii,
        ),
        us_affine_mr=grid.affine,
    )
