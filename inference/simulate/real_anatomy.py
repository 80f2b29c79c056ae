"""Anatomy read from a real T2 + gland mask (:class:`SimSource`), with lesions inserted into the T2.

Points are ``(3, ...)`` world coordinates in mm (RAS+); every property array has shape ``(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.simulate.fields import grid_world, sigmoid, world_to_index
from inference.simulate.phantom import Props
from inference.simulate.specs import F32, F64, LesionSpec, SimSource


class RealAnatomy:
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
            m = sigmoid((1 - d) * les["radius_mm"] / 0.8) * (0.35 + 0.6 * les["conspicuity"])
            w = np.maximum(w, m)
        return w

    def _t2_with_lesions(self) -> F32:
        t2 = self.src.t2.astype(np.float32)
        if not self.lesions:
            return t2
        pts = grid_world(t2.shape, self.src.affine)
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

    def props(self, pts: F32) -> Props:
        src = self.src
        vidx = world_to_index(pts, src.affine).reshape(3, -1)
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
        return Props(
            t2=t2.astype(np.float32),
            echo=echo,
            atten=att,
            gland_soft=soft,
            gland=soft >= 0.5,
        )
