"""The parametric prostate phantom: T2, echogenicity and attenuation as functions of world position.

Points are ``(3, ...)`` world coordinates in mm (RAS+); every property array has shape ``(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.simulate.fields import NoiseField, mix, power, sigmoid
from inference.simulate.specs import F32, F64, LesionSpec


@dataclass
class Props:
    t2: F32
    echo: F32  # echogenicity (backscatter amplitude, ~0..1.5)
    atten: F32  # attenuation per mm beyond the compensated tissue average
    gland_soft: F32  # ~0..1, 0.5 at the boundary
    gland: NDArray[np.bool_]


class Phantom:
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
        self.noise = NoiseField(rng, centre, channels=4, step_mm=2.5, sigma=2.0)
        # Read on every 2nd grid point only (halvings=1): the gland boundary then differs between
        # the two grids by < 0.1 mm at the 99th percentile; every 4th point would give ~0.2 mm.
        self.shape_noise = NoiseField(rng, centre, channels=3, step_mm=4.0, sigma=3.0)
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
        v = (
            power(np.abs(x) / (ax * taper), p)
            + power(np.abs(yy) / ay, p)
            + power(np.abs(z) / az, p)
        )
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

    def props(self, pts: F32) -> Props:
        """T2, echogenicity, attenuation and gland masks at world points ``pts`` (3, ...)."""
        if pts.shape[0] != 3:
            raise ValueError(f"points must be (3, ...) world coordinates, got shape {pts.shape}")
        q = pts - self.c.reshape((3,) + (1,) * (pts.ndim - 1))
        tex_fat, tex_gl, tex_tz, tex_mu = self.noise.sample(pts)
        qs = q + self.shape_amp * self.shape_noise.sample(pts)
        t2, echo, att = self._surroundings(q, tex_fat, tex_mu)
        return self._gland(q, qs, tex_gl, tex_tz, t2=t2, echo=echo, att=att)

    def _surroundings(self, q: F32, tex_fat: F32, tex_mu: F32) -> tuple[F32, F32, F32]:
        """Fat, side-wall muscle, pubic bone, bladder and rectum around the gland centre."""
        x, y, z = q
        # Background: periprostatic fat.
        t2 = np.asarray(900.0 * (1 + 0.1 * tex_fat), dtype=np.float32)
        echo = np.asarray(0.5 * (1 + 0.25 * tex_fat), dtype=np.float32)
        att = np.zeros_like(t2)

        # Lateral pelvic side-wall muscle (obturator internus / levator ani).
        m = sigmoid((np.abs(x) - (self.ax + 13 + 2 * tex_mu)) / 1.5)
        t2 = mix(t2, 260 * (1 + 0.08 * tex_mu), m)
        echo = mix(echo, 0.32 * (1 + 0.3 * tex_mu), m)

        # Pubic symphysis, anterior: dark on T2, bright surface and shadow on US.
        d_bone = np.sqrt((x / 13) ** 2 + ((y - (self.ay + 22)) / 8) ** 2)
        m = sigmoid((1 - d_bone) * 8 / 1.0) * sigmoid((28 - np.abs(z - 5)) / 2)
        t2 = mix(t2, 160.0, m)
        echo = mix(echo, 1.2, m * sigmoid((d_bone - 0.8) * 8 / 0.8))
        att = att + 0.6 * m

        # Bladder above the gland: wall, then urine (very bright T2, anechoic, little attenuation).
        bc = (q[0] / 32, (q[1] - 0.3 * self.ay) / 26, (q[2] - (self.az + self.bladder_dz)) / 20)
        d_bl = np.sqrt(bc[0] ** 2 + bc[1] ** 2 + bc[2] ** 2)
        wall = sigmoid((1 - d_bl) * 24 / 1.0)
        lumen = sigmoid((1 - d_bl) * 24 / 1.0 - 3.0)
        t2 = mix(t2, 320.0, wall)
        echo = mix(echo, 0.7, wall)
        t2 = mix(t2, 1450.0, lumen)
        echo = mix(echo, 0.02, lumen)
        att = att - 0.012 * lumen

        # Rectum behind the gland: wall and lumen (gas or fluid).
        d_re = np.sqrt((x / 16) ** 2 + ((y + self.ay + 11) / 9) ** 2)
        wall = sigmoid((1 - d_re) * 9 / 0.8)
        lumen = sigmoid((1 - d_re) * 9 / 0.8 - 3.0 / 0.8)
        t2 = mix(t2, 280.0, wall)
        echo = mix(echo, 0.65, wall)
        t2 = mix(t2, 110.0 if self.rectum_gas else 600.0, lumen)
        echo = mix(echo, 0.08, lumen)
        return t2, echo, att

    def _gland(
        self, q: F32, qs: F32, tex_gl: F32, tex_tz: F32, *, t2: F32, echo: F32, att: F32
    ) -> Props:
        """The gland, its zones, lesions, cysts, calcifications and capsule over the surroundings."""
        x, y, z = q
        a_mean = (self.ax + self.ay + self.az) / 3
        # Gland and its zones (shape-perturbed coordinates).
        rho = self._rho(qs, self.ax, self.ay, self.az, self.p)
        sd = (1 - rho) * a_mean  # ~signed distance to the capsule, mm, positive inside
        gland_soft = sigmoid(sd / 0.6)
        t2 = mix(t2, 760 * (1 + 0.07 * tex_gl), gland_soft)
        echo = mix(echo, 0.6 * (1 + 0.18 * tex_gl), gland_soft)
        tzc = np.stack([qs[0], qs[1] - 0.2 * self.ay, qs[2] - 0.15 * self.az])
        rho_tz = self._rho(
            tzc, self.tz_scale * self.ax, 0.6 * self.ay, self.tz_scale * 1.1 * self.az, 2.0
        )
        m_tz = sigmoid((1 - rho_tz) * self.tz_scale * a_mean / 0.8) * gland_soft
        t2 = mix(t2, 460 * (1 + 0.22 * tex_tz), m_tz)
        echo = mix(echo, 0.44 * (1 + 0.4 * tex_tz), m_tz)
        m_af = sigmoid((qs[1] - 0.62 * self.ay) / 1.2) * gland_soft
        t2 = mix(t2, 230.0, m_af)
        echo = mix(echo, 0.3, m_af)
        uy = 0.1 * self.ay + 0.1 * self.ay * np.clip(z / self.az, 0, 1)
        d_ur = np.sqrt(x**2 + (y - uy) ** 2)
        m_ur = sigmoid((2.5 - d_ur) / 0.5) * gland_soft
        t2 = mix(t2, 620.0, m_ur)
        echo = mix(echo, 0.14, m_ur)

        for les in self.lesions:
            lq = [(qs[i] - les["local"][i]) / les["axes"][i] for i in range(3)]
            d = np.sqrt(lq[0] ** 2 + lq[1] ** 2 + lq[2] ** 2)
            m = sigmoid((1 - d + 0.15 * tex_tz) * les["radius_mm"] / 0.8) * gland_soft
            k = les["conspicuity"]
            t2 = mix(t2, 250.0, m * (0.35 + 0.65 * k))
            echo = mix(echo, 0.18, m * (0.25 + 0.65 * k))
        for p, r in zip(self.cysts, self.cyst_r):
            d = np.sqrt(sum((q[i] - p[i]) ** 2 for i in range(3)))
            m = sigmoid((r - d) / 0.4)
            t2 = mix(t2, 1350.0, m)
            echo = mix(echo, 0.03, m)
            att = att - 0.012 * m
        for p, r in zip(self.calcs, self.calc_r):
            d = np.sqrt(sum((q[i] - p[i]) ** 2 for i in range(3)))
            m = sigmoid((r - d) / 0.3)
            t2 = mix(t2, 90.0, m)
            echo = mix(echo, 1.5, m)
            att = att + 0.8 * m

        # Capsule: a thin dark line on T2.
        cap = np.exp(-((sd / 0.8) ** 2)).astype(np.float32)
        t2 = t2 * (1 - 0.35 * cap)
        return Props(
            t2=np.asarray(t2 * self.t2_gain, dtype=np.float32),
            echo=echo,
            atten=att,
            gland_soft=gland_soft,
            gland=rho < 1.0,
        )
