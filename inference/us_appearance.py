"""Ultrasound appearance: measure TRUS volumes, and render the simulator's TRUS (numpy + scipy only).

A volume is ``(X, Y, Z)`` = (lateral i, depth j, elevation k), ``spacing`` in mm per axis, probe at
low j. A real stepper volume is first put onto the simulator's grid (0.8 mm, probe at j = 3) by
:func:`inference.trus_real.trus_to_sim_grid`; then both are measured alike, as the networks see
them. Figures are on display grey levels (0–255) inside the imaged fan ``mask``:

* :func:`grey_levels`, :func:`histogram_distance` — grey levels over their 99th percentile (gain
  free, like the networks' normalisation): Wasserstein-1 and Jensen–Shannon distance.
* :func:`speckle_snr` — median μ/σ over the more homogeneous half of 4 mm patches. A Rayleigh
  envelope (fully developed speckle) has :data:`RAYLEIGH_SNR` = 1.91; log-compressed display grey
  levels have more, so compare volumes with each other.
* :func:`autocorrelation_fwhm` — FWHM (mm) of the autocorrelation along i, j, k after removing
  the local mean (the anatomy).
* :func:`gland_contrast` — gland over surrounding ring, and capsule peak over gland.
* :func:`depth_profile` — mean grey level in depth bins from the probe (attenuation, shadowing).

:func:`us_render` turns echogenicity and attenuation into TRUS whose figures were fitted to the
real volume (``python bench/us_appearance_bench.py`` prints both, before and after).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial.distance import jensenshannon

__all__ = [
    "RAYLEIGH_SNR",
    "RenderParams",
    "analysis_mask",
    "appearance_summary",
    "autocorrelation_fwhm",
    "depth_profile",
    "gland_contrast",
    "grey_levels",
    "histogram_distance",
    "speckle_snr",
    "us_render",
]

F32 = NDArray[np.float32]
Bool = NDArray[np.bool_]
Spacing = Sequence[float]

RAYLEIGH_SNR = float(np.sqrt(np.pi / (4.0 - np.pi)))  # 1.913
SIM_PROBE_J = 3.0  # inference.simulate puts the probe surface at this j index


def _vox(mm: float, spacing: Spacing) -> NDArray[np.float64]:
    return np.asarray([mm / s for s in spacing], dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# Measurements


def grey_levels(volume: NDArray[np.generic], *, mask: Bool) -> F32:
    """Grey levels inside ``mask`` divided by their 99th percentile and clipped to [0, 1]."""
    v = np.asarray(volume, dtype=np.float32)[mask]
    if v.size == 0:
        raise ValueError("empty mask")
    p99 = float(np.percentile(v, 99))
    return np.clip(v / p99, 0.0, 1.0) if p99 > 0 else np.zeros_like(v)


def histogram_distance(
    a: NDArray[np.floating], b: NDArray[np.floating], *, bins: int = 64
) -> dict[str, float]:
    """Wasserstein-1 (units of the normalised grey level) and Jensen–Shannon distance (base 2,
    0..1) between two samples of normalised grey levels (:func:`grey_levels`)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ha = np.histogram(a, edges)[0].astype(np.float64)
    hb = np.histogram(b, edges)[0].astype(np.float64)
    ha, hb = ha / ha.sum(), hb / hb.sum()
    # Sorting-free W1 on a fine grid: the integral of |CDF_a − CDF_b|.
    fine = np.linspace(0.0, 1.0, 1025)
    ca = np.searchsorted(np.sort(a), fine, side="right") / a.size
    cb = np.searchsorted(np.sort(b), fine, side="right") / b.size
    w1 = float(np.sum(np.abs(ca - cb)[:-1] * np.diff(fine)))
    return {"wasserstein": w1, "js": float(jensenshannon(ha, hb, base=2))}


def _patches(shape: Sequence[int], size: NDArray[np.int64]) -> list[tuple[slice, ...]]:
    ranges = [range(0, n - s + 1, s) for n, s in zip(shape, size)]
    return [tuple(slice(a, a + n) for a, n in zip(c, size)) for c in product(*ranges)]


def speckle_snr(
    volume: NDArray[np.generic], *, spacing: Spacing, mask: Bool, patch_mm: float = 4.0
) -> dict[str, float]:
    """Median μ/σ over the more homogeneous half of ``patch_mm`` patches inside ``mask``.

    Homogeneity is judged from the anatomy, not the speckle: the spread of a coarse (σ = half a
    patch) smoothed image within the patch relative to its mean. Patches darker than 5% of the
    99th percentile (anechoic, clipped to 0) are left out.
    """
    v = np.asarray(volume, dtype=np.float32)
    size = np.maximum(np.rint(_vox(patch_mm, spacing)), 1).astype(np.int64)
    coarse = ndimage.gaussian_filter(v, size / 2.0)
    floor = 0.05 * float(np.percentile(v[mask], 99))
    snr, hetero = [], []
    for p in _patches(v.shape, size):
        if not mask[p].all():
            continue
        x = v[p].astype(np.float64)
        mu, sd = float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0
        if mu < floor or sd <= 0:
            continue
        snr.append(mu / sd)
        hetero.append(float(np.ptp(coarse[p])) / mu)
    if not snr:
        return {"snr": float("nan"), "snr_all": float("nan"), "n_patches": 0.0}
    s, h = np.asarray(snr), np.asarray(hetero)
    keep = h <= np.median(h)
    return {
        "snr": float(np.median(s[keep])),
        "snr_all": float(np.median(s)),
        "n_patches": float(keep.sum()),
    }


def _detrend(v: F32, mask: Bool, sigma_vox: NDArray[np.float64]) -> F32:
    m = mask.astype(np.float32)
    num = ndimage.gaussian_filter(v * m, sigma_vox)
    den = ndimage.gaussian_filter(m, sigma_vox)
    return np.asarray((v - num / np.maximum(den, 1e-3)) * m, dtype=np.float32)


def autocorrelation_fwhm(
    volume: NDArray[np.generic],
    *,
    spacing: Spacing,
    mask: Bool,
    detrend_mm: float | None = 3.0,
    max_lag: int = 40,
) -> tuple[float, float, float]:
    """FWHM (mm) of the normalised autocorrelation along i, j, k inside ``mask``.

    ``detrend_mm`` subtracts a masked Gaussian local mean of that σ (at least 2 voxels) first, so
    the anatomy does not widen the peak; ``None`` keeps the raw field minus its mean. The half
    maximum is found by linear interpolation between lags: white noise gives 1 voxel.
    """
    v = np.asarray(volume, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if detrend_mm is None:
        x = np.where(m, v - v[m].mean(), 0.0).astype(np.float32)
    else:
        x = _detrend(v, m, np.maximum(_vox(detrend_mm, spacing), 2.0))
    out = []
    for axis in range(3):
        prev = 1.0
        width = float("nan")
        for lag in range(1, min(max_lag, v.shape[axis] - 1) + 1):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis], b[axis] = slice(0, -lag), slice(lag, None)
            both = m[tuple(a)] & m[tuple(b)]
            xa, xb = x[tuple(a)][both], x[tuple(b)][both]
            r = float(np.dot(xa, xb) / np.sqrt(np.dot(xa, xa) * np.dot(xb, xb)))
            if r < 0.5:
                width = 2.0 * (lag - 1 + (prev - 0.5) / (prev - r)) * float(spacing[axis])
                break
            prev = r
        out.append(width)
    return out[0], out[1], out[2]


def gland_contrast(
    volume: NDArray[np.generic],
    *,
    gland: Bool,
    mask: Bool,
    spacing: Spacing,
    margin_mm: float = 4.0,
    sectors: int = 16,
) -> dict[str, float]:
    """Gland/background and capsule/gland grey-level ratios, tolerant of a rough gland mask.

    ``gland_bg``: mean of the gland ≥ ``margin_mm`` inside the boundary over a ring ``margin_mm``
    to ``margin_mm + 5`` mm outside. ``capsule_gland``: in each transverse frame and each of
    ``sectors`` angular sectors about the gland's centre, the brightest voxel of the image
    smoothed by 0.8 mm within ±``margin_mm`` of the boundary (where the capsule is, even when the
    mask is ~3 mm off), averaged, over the same smoothed gland mean.
    """
    v = np.asarray(volume, dtype=np.float32)
    g = np.asarray(gland, dtype=bool)
    inside = ndimage.distance_transform_edt(g, sampling=spacing)
    outside = ndimage.distance_transform_edt(~g, sampling=spacing)
    inner = (inside >= margin_mm) & mask
    ring = (outside >= margin_mm) & (outside <= margin_mm + 5.0) & mask
    band = (np.maximum(inside, outside) <= margin_mm) & mask
    if not (inner.any() and ring.any() and band.any()):
        return {"gland_bg": float("nan"), "capsule_gland": float("nan")}
    sm = ndimage.gaussian_filter(v, _vox(0.8, spacing))
    ii, jj, kk = np.nonzero(band)
    gf = g.astype(np.float32)
    count = gf.sum(axis=(0, 1))
    grid = np.indices(g.shape[:2], dtype=np.float32)
    ci = np.einsum("ij,ijk->k", grid[0], gf) / np.maximum(count, 1.0)
    cj = np.einsum("ij,ijk->k", grid[1], gf) / np.maximum(count, 1.0)
    ok = count[kk] > 0
    ang = np.arctan2((jj - cj[kk]) * spacing[1], (ii - ci[kk]) * spacing[0])
    sector = (((ang + np.pi) / (2 * np.pi) * sectors).astype(int)) % sectors
    peak = np.full(g.shape[2] * sectors, -np.inf)
    np.maximum.at(peak, (kk * sectors + sector)[ok], sm[ii, jj, kk][ok])
    peaks = peak[np.isfinite(peak)]
    return {
        "gland_bg": float(v[inner].mean() / v[ring].mean()),
        "capsule_gland": float(peaks.mean() / sm[inner].mean()),
    }


def depth_profile(
    volume: NDArray[np.generic],
    *,
    spacing: Spacing,
    mask: Bool,
    bin_mm: float = 10.0,
    max_mm: float = 60.0,
) -> F32:
    """Mean grey level in ``bin_mm`` depth bins from the probe surface (j = 3, along +j)."""
    v = np.asarray(volume, dtype=np.float32)
    depth = (np.arange(v.shape[1]) - SIM_PROBE_J) * float(spacing[1])
    out = []
    for lo in np.arange(0.0, max_mm, bin_mm):
        sel = (depth >= lo) & (depth < lo + bin_mm)
        mm = mask[:, sel]
        out.append(float(v[:, sel][mm].mean()) if mm.any() else float("nan"))
    return np.asarray(out, dtype=np.float32)


def analysis_mask(
    fov: NDArray[np.generic],
    *,
    spacing: Spacing,
    max_depth_mm: float = 60.0,
    half_elev_mm: float = 28.0,
) -> Bool:
    """``fov`` (eroded by a voxel) limited to what the real stepper volume covers on the grid:
    depth ≤ ``max_depth_mm`` from the probe and ±``half_elev_mm`` about the middle frame."""
    m = ndimage.binary_erosion(np.asarray(fov) > 0, iterations=1)
    depth = (np.arange(m.shape[1]) - SIM_PROBE_J) * float(spacing[1])
    elev = (np.arange(m.shape[2]) - (m.shape[2] - 1) / 2) * float(spacing[2])
    return np.asarray(
        m & (depth <= max_depth_mm)[None, :, None] & (np.abs(elev) <= half_elev_mm)[None, None, :]
    )


def appearance_summary(
    volume: NDArray[np.generic],
    *,
    spacing: Spacing,
    mask: NDArray[np.generic],
    gland: Bool | None = None,
) -> dict[str, Any]:
    """Every figure above for one volume on the simulator's grid (probe at low j), inside
    :func:`analysis_mask` of ``mask``."""
    m = analysis_mask(mask, spacing=spacing)
    v = np.asarray(volume, dtype=np.float32)
    out: dict[str, Any] = {
        "median_grey": float(np.median(v[m])),
        "p95_grey": float(np.percentile(v[m], 95)),
        "zero_fraction": float((v[m] < 0.5).mean()),
        **speckle_snr(v, spacing=spacing, mask=m),
        "fwhm_mm": autocorrelation_fwhm(v, spacing=spacing, mask=m),
        "depth_profile": depth_profile(v, spacing=spacing, mask=m).tolist(),
    }
    if gland is not None:
        out.update(gland_contrast(v, gland=gland, mask=m, spacing=spacing))
    return out


# ------------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class RenderParams:
    """Image-formation settings of :func:`us_render`.

    The defaults were fitted (coordinate search on the figures of ``bench/us_appearance_bench.py``,
    phantom + PROMISE12 anatomies) to the one real volume ``trus-real-case001`` on the 0.8 mm grid.
    """

    coherent_mm: tuple[float, float, float] = (0.65, 0.57, 2.0)  # σ of the complex PSF field
    incoherent_mm: tuple[float, float] = (0.4, 0.625)  # averaging of the log envelope (i, j)
    frame_mm: float = 2.0  # stepper frame pitch: speckle is drawn per frame, then interpolated
    fine: int = 2  # speckle is formed on a grid this many times finer in-plane
    speckle_scale: float = 0.425  # × the speckle dB: the real display averages more looks
    texture_mm: tuple[float, float, float] = (1.8, 0.9, 2.0)  # streaky tissue texture
    texture_db: tuple[float, float] = (3.2, 0.8)  # its amplitude outside / inside the gland
    capsule: float = 1.75  # specular capsule brightness (× the local echo, beam-normal part)
    capsule_dark: float = 0.3  # darker band just inside the capsule
    wall_mm: float = 3.0  # rectal wall pressed on the probe: a bright layer this thick
    wall_echo: float = 0.9
    atten_db_cm: float = 1.2  # residual attenuation (one way) after time-gain compensation
    dyn_range_db: float = 42.0
    gain_db: float = 21.5  # amplitude level (dB re 1) displayed as white (255)
    jitter: float = 1.0  # scales the per-volume random variation of gain, range, attenuation


def _speckle_formed(rng: np.random.Generator, size: tuple[int, ...], sigma: Sequence[float]) -> F32:
    """20·log10 of a Rayleigh envelope (unit power): a complex Gaussian field through the PSF."""
    re = ndimage.gaussian_filter(rng.standard_normal(size, dtype=np.float32), sigma)
    im = ndimage.gaussian_filter(rng.standard_normal(size, dtype=np.float32), sigma)
    env2 = re * re + im * im
    return np.asarray(10.0 * np.log10(env2 / env2.mean() + 1e-12), dtype=np.float32)


def _speckle_db(
    rng: np.random.Generator, shape: tuple[int, ...], spacing: float, p: RenderParams
) -> F32:
    """Log-compressed speckle (dB, zero mean) as the real volume has it on the 0.8 mm grid.

    Fully developed speckle (the Rayleigh envelope of a complex Gaussian field filtered by the
    point-spread function) is formed per stepper frame on a grid twice as fine in-plane,
    log-compressed there as a scanner displays it, then anti-aliased and subsampled onto the
    grid like :func:`inference.trus_real.trus_to_sim_grid` does with a real volume, and
    linearly interpolated between frames in elevation.
    """
    nx, ny, nz = shape
    f = p.fine
    fine = spacing / f
    pitch = p.frame_mm / spacing  # frames in grid voxels
    offset = float(rng.uniform(0.0, pitch))
    nf = int(np.ceil((nz - 1 + offset) / pitch)) + 2
    sig = (p.coherent_mm[0] / fine, p.coherent_mm[1] / fine, p.coherent_mm[2] / p.frame_mm)
    db = _speckle_formed(rng, (nx * f, ny * f, nf), sig)
    inc = (p.incoherent_mm[0] / fine, p.incoherent_mm[1] / fine, 0.0)
    db = ndimage.gaussian_filter(db, inc)[::f, ::f]
    pos = (np.arange(nz) + offset) / pitch
    lo = np.floor(pos).astype(int)
    w = (pos - lo).astype(np.float32)
    out = db[:, :, lo] * (1 - w) + db[:, :, lo + 1] * w
    return np.asarray((out - out.mean()) * p.speckle_scale, dtype=np.float32)


def us_render(
    rng: np.random.Generator,
    *,
    echo: F32,
    atten: F32,
    gland_soft: F32,
    fov: NDArray[np.uint8],
    spacing: float,
    params: RenderParams | None = None,
) -> F32:
    """A TRUS volume (0–255 grey levels, float32, 0 outside ``fov``) on an isotropic grid with the
    probe at low j. ``echo``: backscatter amplitude (~0..1.5); ``atten``: attenuation per mm
    beyond the compensated tissue average; ``gland_soft``: ~0..1, 0.5 at the capsule."""
    p = params or RenderParams()
    shape = echo.shape
    gain = p.gain_db + p.jitter * float(rng.uniform(-2.0, 2.0))
    dyn = p.dyn_range_db + p.jitter * float(rng.uniform(-4.0, 4.0))
    alpha = p.atten_db_cm * (1.0 + p.jitter * float(rng.uniform(-0.3, 0.3)))
    # Depth below the probe surface: from the first imaged voxel of each beam line (j).
    on = fov > 0
    first = np.where(on.any(axis=1), on.argmax(axis=1), shape[1]).astype(np.float32)
    depth = (np.arange(shape[1], dtype=np.float32)[None, :, None] - first[:, None, :]) * spacing
    soft = gland_soft.astype(np.float32)
    # Specular capsule: bright where the boundary faces the beam (normal along j), which is what
    # makes real capsules bright anteriorly and posteriorly and faint at the lateral edges.
    gi, gj, gk = np.gradient(ndimage.gaussian_filter(soft, 0.7))
    facing = np.abs(gj) / (np.sqrt(gi * gi + gj * gj + gk * gk) + 1e-6)
    band_out = np.exp(-(((soft - 0.2) / 0.15) ** 2))
    band_in = np.exp(-(((soft - 0.8) / 0.12) ** 2))
    e = np.maximum(echo, 0.0) * (1.0 + p.capsule * band_out * (0.3 + 0.7 * facing))
    e *= 1.0 - p.capsule_dark * band_in
    # Streaky tissue texture (fat lobules, fascia): log-normal, stronger outside the gland.
    tex = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), [m / spacing for m in p.texture_mm]
    )
    tex /= tex.std() + 1e-6
    tex_db = p.texture_db[0] + (p.texture_db[1] - p.texture_db[0]) * soft
    tex_lin = np.power(10.0, tex * tex_db / 20.0).astype(np.float32)
    e *= tex_lin
    # The probe sits in the rectum: no lumen between it and the gland, but the wall pressed on
    # the probe (bright, with a dark muscular layer) and perirectal tissue up to the gland. The
    # MR's own rectum (often a dark lumen) is overwritten there, up to wall_mm + 12 mm deep.
    hit = soft >= 0.5
    gd = np.where(hit.any(axis=1), hit.argmax(axis=1) - first, np.inf) * spacing
    limit = np.clip(gd - 0.5, p.wall_mm, p.wall_mm + 12.0)[:, None, :]
    layer = 1.0 - 0.6 * np.exp(-(((depth - 0.45 * p.wall_mm) / 0.5) ** 2))
    wall_e = np.where(depth < p.wall_mm, p.wall_echo * layer, 0.55 * p.wall_echo * tex_lin)
    wall = ((depth >= 0) & (depth < limit)).astype(np.float32) * (1.0 - soft)
    e = e + wall * (wall_e - e)
    e = ndimage.gaussian_filter(e, (0.6, 0.4, 0.8))
    # Attenuation along depth: residual tissue loss plus the anatomy's own (fluid < 0, bone > 0).
    loss = np.clip(alpha / 8.686 / 10.0 * 2.0 + atten, 0.0, None) * spacing * (depth >= 0)
    amp = e * np.exp(-np.cumsum(loss, axis=1, dtype=np.float32))
    db = 20.0 * np.log10(amp + 1e-6) + _speckle_db(rng, shape, spacing, p)
    img = np.clip((db - gain) / dyn + 1.0, 0.0, 1.0) * 255.0 * on
    return np.asarray(np.rint(img), dtype=np.float32)
