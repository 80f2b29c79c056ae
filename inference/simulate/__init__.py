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

Layout: ``specs`` (constants, :class:`LesionSpec`, :class:`SimSource`, :class:`SimulatedPair`),
``fields`` (grids, smooth random fields, the TRUS fan), ``phantom`` and ``real_anatomy`` (the
anatomy), ``deformation`` (TRUS grid and ``T``), ``landmarks``, ``pair`` (:func:`simulate_pair`),
``resample``, ``dataset`` and ``cohort`` (the writers), ``cli``.
"""

from __future__ import annotations

from inference.simulate.cli import main
from inference.simulate.cohort import write_demo_cohort
from inference.simulate.dataset import write_dataset, write_pair_deepreg
from inference.simulate.fields import us_fan_mask
from inference.simulate.pair import simulate_pair
from inference.simulate.resample import mr_resample_to_us, volume_to_grid
from inference.simulate.specs import (
    MR_SHAPE,
    MR_SPACING,
    SIM_VERSION,
    US_SHAPE,
    US_SPACING,
    LesionSpec,
    SimSource,
    SimulatedPair,
    sim_sources_load,
    sim_sources_promise12,
)

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
