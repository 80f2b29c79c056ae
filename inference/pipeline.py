"""``register_case``: the one MR→TRUS registration entry point used by the workers and the CLIs.

Stages (each timed in ``RegistrationResult.stage_seconds``; ``should_cancel`` is checked between them):

1. ``resample``  — MR, its gland label and landmark centroids onto the TRUS grid through the affines.
2. ``segment``   — gland labels by the attention U-Nets when a label is missing and a model exists.
3. ``initial``   — centroid alignment of the gland labels, then a moment-matched affine (kept only
   when it raises the Dice). numpy only.
4. ``network``   — RERN (or LocalNet) on the initially aligned pair (methods ``rern``, ``rern+io``,
   ``localnet``).
5. ``refine``    — instance optimisation: Adam on a coarse displacement grid minimising
   ``DiceLoss(warp(L_mr), L_us) + λ·BendingEnergy`` on the pair's own gland labels (``rern+io``, ``io``).
   Needs no trained weights.
6. ``metrics``   — DSC/HD95/accuracy/precision/recall before (affine resampling only) and after, TRE
   from landmark centroids, folding fraction.

The displacement is ``(3, X, Y, Z)`` in TRUS-grid voxels: ``warped(p) = mr_on_us(p + u(p))``.
``method="initial"`` never imports torch, so it is safe and fast in any process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference import metrics as M
from inference.preprocess import (
    ENHANCEMENTS,
    intensity_enhance,
    intensity_normalise,
    volume_resample,
    volume_warp,
)
from inference.registry import CheckpointError, checkpoint_resolve, code_version

if TYPE_CHECKING:
    import torch

__all__ = [
    "METHODS",
    "RegistrationCancelled",
    "RegistrationConfig",
    "RegistrationResult",
    "case_metrics",
    "displacement_compose",
    "initial_alignment",
    "instance_optimise",
    "register_case",
]

METHODS = ("initial", "rern", "rern+io", "localnet", "io")
Float32 = NDArray[np.float32]


class RegistrationCancelled(Exception):
    """Raised by :func:`register_case` when ``should_cancel()`` returns True between stages."""


@dataclass(frozen=True)
class RegistrationConfig:
    """How to register one case.

    Attributes:
        method: ``initial`` | ``rern`` | ``rern+io`` (default) | ``localnet`` | ``io``.
        checkpoint: registry key or ``.pt`` path of the network; None = registry default.
        affine_init: try the moment-matched affine after the centroid alignment.
        segment_missing: segment missing gland labels when a segmentation model is registered.
        enhance: contrast options applied to both images before the network (``histeq``, ``gamma``,
            ``laplacian``), for external cohorts.
        io_steps, io_learning_rate, io_bending_weight, io_grid_stride, io_downsample: instance
            optimisation settings (Adam steps, step size in voxels, bending-energy weight, control-point
            spacing in working-grid voxels, working-grid downsampling factor).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads during the call (None = leave as is).
        seed: seeds torch for reproducible refinement.
    """

    method: str = "rern+io"
    checkpoint: str | None = None
    affine_init: bool = True
    segment_missing: bool = True
    enhance: tuple[str, ...] = ()
    io_steps: int = 40
    io_learning_rate: float = 0.3
    io_bending_weight: float = 30.0
    io_grid_stride: int = 4
    io_downsample: int = 2
    device: str = "auto"
    num_threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {METHODS}")
        bad = [e for e in self.enhance if e not in ENHANCEMENTS]
        if bad:
            raise ValueError(f"unknown enhancement(s) {bad}; choose from {ENHANCEMENTS}")
        if self.io_steps < 0 or self.io_grid_stride < 1 or self.io_downsample < 1:
            raise ValueError("io_steps must be >= 0, io_grid_stride and io_downsample >= 1")
        if self.io_learning_rate <= 0 or self.io_bending_weight < 0:
            raise ValueError("io_learning_rate must be > 0 and io_bending_weight >= 0")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")


@dataclass
class RegistrationResult:
    """Output of :func:`register_case`; all volumes are on the TRUS grid (``affine``)."""

    displacement: Float32
    warped_mr: Float32
    warped_mr_label: NDArray[np.uint8] | None
    mr_on_us: Float32
    affine: NDArray[np.float64]
    metrics: dict[str, float]
    stage_seconds: dict[str, float]
    model: dict[str, Any]
    mr_label_on_us: NDArray[np.uint8] | None = None
    us_label: NDArray[np.uint8] | None = None
    notes: list[str] = field(default_factory=list)


ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


def _check_volume(name: str, arr: Any, affine: Any | None = None) -> NDArray[np.generic]:
    a = np.asarray(arr)
    if a.ndim != 3 or min(a.shape) < 2:
        raise ValueError(
            f"{name} must be a 3-D volume (X, Y, Z) with >= 2 voxels per axis, got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if affine is not None:
        af = np.asarray(affine, dtype=np.float64)
        if af.shape != (4, 4) or abs(np.linalg.det(af[:3, :3])) < 1e-9:
            raise ValueError(
                f"{name} affine must be an invertible 4x4 matrix, got shape {af.shape}"
            )
    return a


def _check_same_grid(name: str, arr: Any | None, shape: tuple[int, ...]) -> None:
    if arr is not None and np.asarray(arr).shape != shape:
        raise ValueError(
            f"{name} has shape {np.asarray(arr).shape}, expected {shape} (its image's grid)"
        )


# ---------------------------------------------------------------------------------------------
# initial alignment (numpy)


def _centroid_mm(mask: NDArray[np.bool_], spacing: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(ndimage.center_of_mass(mask), dtype=np.float64) * spacing


def _cov_mm(mask: NDArray[np.bool_], spacing: NDArray[np.float64]) -> NDArray[np.float64]:
    pts = np.argwhere(mask).astype(np.float64) * spacing
    return np.asarray(np.cov(pts, rowvar=False)) + np.eye(3) * 1e-6


def _sqrtm(c: NDArray[np.float64], power: float) -> NDArray[np.float64]:
    w, v = np.linalg.eigh(c)
    return np.asarray((v * np.power(np.maximum(w, 1e-9), power)) @ v.T)


def _affine_field(
    linear_vox: NDArray[np.float64], offset_vox: NDArray[np.float64], shape: tuple[int, ...]
) -> Float32:
    """Displacement of ``q = L p + o``: ``u(p) = (L − I) p + o``."""
    grid = np.indices(shape, dtype=np.float64).reshape(3, -1)
    disp = (linear_vox - np.eye(3)) @ grid + offset_vox[:, None]
    return disp.reshape(3, *shape).astype(np.float32)


def initial_alignment(
    *,
    mr_label: NDArray[np.generic],
    us_label: NDArray[np.generic],
    spacing: tuple[float, float, float],
    use_affine: bool = True,
) -> tuple[Float32, NDArray[np.float64], str]:
    """Centroid, then moment-matched affine alignment of two gland labels on the same (TRUS) grid.

    The fixed (TRUS) point ``x`` (mm) maps to ``y = M (x − c_us) + c_mr`` with
    ``M = C_mr^{1/2} C_us^{-1/2}`` (covariance matching; eigenvalues of M clamped to [0.7, 1.4]).
    The affine is kept only when it gives a higher Dice than the centroid shift.

    Returns:
        ``(displacement (3, X, Y, Z), voxel linear part L (3, 3), kind "centroid"|"affine"|"none")``.
    """
    m = np.asarray(mr_label) > 0
    f = np.asarray(us_label) > 0
    shape = f.shape
    eye = np.eye(3)
    if not m.any() or not f.any():
        return np.zeros((3, *shape), dtype=np.float32), eye, "none"
    s = np.asarray(spacing, dtype=np.float64)
    c_m, c_f = _centroid_mm(m, s), _centroid_mm(f, s)
    shift_vox = (c_m - c_f) / s
    best = _affine_field(eye, shift_vox, shape)
    best_l, kind = eye, "centroid"
    best_dsc = M.dice(volume_warp(m.astype(np.float32), best) > 0.5, f)
    if use_affine and m.sum() >= 10 and f.sum() >= 10:
        mat = _sqrtm(_cov_mm(m, s), 0.5) @ _sqrtm(_cov_mm(f, s), -0.5)
        w, v = np.linalg.eigh((mat + mat.T) / 2)
        mat = (v * np.clip(w, 0.7, 1.4)) @ v.T
        lin_vox = np.diag(1 / s) @ mat @ np.diag(s)
        off_vox = (c_m - mat @ c_f) / s
        cand = _affine_field(lin_vox, off_vox, shape)
        dsc = M.dice(volume_warp(m.astype(np.float32), cand) > 0.5, f)
        if dsc > best_dsc:
            best, best_l, kind = cand, lin_vox, "affine"
    return best, best_l, kind


# ---------------------------------------------------------------------------------------------
# torch stages (imported lazily so that method="initial" stays numpy-only)


def _to_tensor(arr: NDArray[np.generic], device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None].to(device)


def _network_stage(
    *,
    kind: str,
    checkpoint: str | None,
    moving: Float32,
    fixed: Float32,
    device_name: str,
) -> tuple[Float32, dict[str, Any]]:
    """Run RERN/LocalNet on its training grid and return the field on the TRUS grid (voxels)."""
    import torch
    import torch.nn.functional as F

    from inference.models import checkpoint_load, device_pick

    info = checkpoint_resolve(kind=kind, key_or_path=checkpoint)
    device = device_pick(device_name)
    model, meta = checkpoint_load(info, device=device)
    shape = moving.shape
    net_shape = tuple(int(v) for v in (meta.get("input_shape") or shape))
    x = torch.cat([_to_tensor(moving, device), _to_tensor(fixed, device)], dim=1)
    if net_shape != shape:
        x = F.interpolate(x, size=net_shape, mode="trilinear", align_corners=True)
    with torch.no_grad():
        ddf = model(x)
    if net_shape != shape:
        ddf = F.interpolate(ddf, size=shape, mode="trilinear", align_corners=True)
        scale = torch.tensor(
            [(s - 1) / max(n - 1, 1) for s, n in zip(shape, net_shape)], device=ddf.device
        )
        ddf = ddf * scale.view(1, 3, 1, 1, 1)
    info_out = {
        "name": meta["architecture"],
        "checkpoint": info.key,
        "sha256": info.sha256,
        "code_version": meta.get("code_version", ""),
        "synthetic_training": bool(meta.get("training_data", {}).get("synthetic", False)),
        "training_data": meta.get("training_data", {}),
        "validation": meta.get("validation", {}),
    }
    return ddf[0].cpu().numpy().astype(np.float32), info_out


def instance_optimise(
    *,
    mr_label: NDArray[np.generic],
    us_label: NDArray[np.generic],
    initial: Float32,
    steps: int,
    learning_rate: float,
    bending_weight: float,
    grid_stride: int,
    downsample: int,
    device_name: str = "cpu",
    seed: int = 0,
) -> Float32:
    """Refine a displacement field on one pair's gland labels.

    The refinement ``w`` lives on a control grid (``grid_stride`` voxels of a working grid
    ``downsample`` times coarser than TRUS), is upsampled trilinearly and added to ``initial``:
    ``u = initial + up(w)``. Adam minimises ``DiceLoss(warp(smooth(L_mr), u), smooth(L_us))
    + λ·BE(up(w))``; labels are Gaussian-smoothed (σ = 1 working voxel) to widen the capture range.

    Shapes: labels ``(X, Y, Z)``; ``initial`` and the result ``(3, X, Y, Z)`` in TRUS voxels.
    """
    import torch
    import torch.nn.functional as F
    from monai.losses import BendingEnergyLoss, DiceLoss
    from monai.networks.blocks import Warp

    from inference.models import device_pick

    torch.manual_seed(seed)
    device = device_pick(device_name)
    shape = tuple(int(v) for v in us_label.shape)
    work = tuple(max(int(math.ceil(s / downsample)), 8) for s in shape)
    ctrl = tuple(max(int(math.ceil(s / grid_stride)), 4) for s in work)
    to_work = torch.tensor([(w - 1) / (s - 1) for w, s in zip(work, shape)], device=device)

    def smooth(lab: NDArray[np.generic]) -> torch.Tensor:
        t = _to_tensor((np.asarray(lab) > 0).astype(np.float32), device)
        t = F.interpolate(t, size=work, mode="trilinear", align_corners=True)
        return torch.from_numpy(
            ndimage.gaussian_filter(t[0, 0].cpu().numpy(), 1.0).astype(np.float32)
        )[None, None].to(device)

    mov, fix = smooth(mr_label), smooth(us_label)
    u0 = torch.from_numpy(np.ascontiguousarray(initial, dtype=np.float32))[None].to(device)
    u0_work = F.interpolate(u0, size=work, mode="trilinear", align_corners=True)
    u0_work = u0_work * to_work.view(1, 3, 1, 1, 1)
    w = torch.zeros((1, 3, *ctrl), device=device, requires_grad=True)
    opt = torch.optim.Adam([w], lr=learning_rate)
    warp = Warp(mode="bilinear", padding_mode="border")
    dice_loss = DiceLoss(smooth_nr=1e-5, smooth_dr=1e-5)
    bending = BendingEnergyLoss()
    for _ in range(steps):
        opt.zero_grad()
        refine = F.interpolate(w, size=work, mode="trilinear", align_corners=True)
        warped = warp(mov, u0_work + refine)
        loss = dice_loss(warped, fix) + bending_weight * bending(refine)
        loss.backward()
        opt.step()
    with torch.no_grad():
        refine = F.interpolate(w, size=shape, mode="trilinear", align_corners=True)
        refine = refine / to_work.view(1, 3, 1, 1, 1)
        return (u0 + refine)[0].cpu().numpy().astype(np.float32)


def _segment_stage(
    *, image: NDArray[np.generic], modality: str, checkpoint: str | None, device_name: str
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    from inference.segmentation import segment_volume

    return segment_volume(
        image=np.asarray(image, dtype=np.float32),
        modality=modality,
        checkpoint=checkpoint,
        device_name=device_name,
    )


# ---------------------------------------------------------------------------------------------


def _label_metrics(
    prefix: str, pred: NDArray[np.generic] | None, target: NDArray[np.generic] | None, spacing: Any
) -> dict[str, float]:
    if pred is None or target is None:
        return {}
    return {
        f"dsc_{prefix}": M.dice(pred, target),
        f"hd95_{prefix}": M.hd95(pred, target, spacing),
        f"accuracy_{prefix}": M.accuracy(pred, target),
        f"precision_{prefix}": M.precision(pred, target),
        f"recall_{prefix}": M.recall(pred, target),
    }


def _moving_points_on_fixed(
    landmarks: NDArray[np.generic], mr_affine: NDArray[np.float64], us_affine: NDArray[np.float64]
) -> dict[int, NDArray[np.float64]]:
    # Centroids are mapped as points (not resampled labels) so small landmarks are never lost.
    to_us = np.linalg.solve(us_affine, mr_affine)
    out = {}
    for k, c in M.landmark_centroids(landmarks).items():
        out[k] = (to_us @ np.append(c, 1.0))[:3]
    return out


def case_metrics(
    *,
    displacement: NDArray[np.floating],
    mr_label_on_us: NDArray[np.generic] | None,
    warped_mr_label: NDArray[np.generic] | None,
    us_label: NDArray[np.generic] | None,
    mr_landmarks: NDArray[np.generic] | None,
    us_landmarks: NDArray[np.generic] | None,
    mr_affine: NDArray[np.float64],
    us_affine: NDArray[np.float64],
) -> dict[str, float]:
    """Metrics of one registration on the TRUS grid.

    ``*_before`` compare the MR resampled by the scanner affines alone; ``*_after`` the final warp.
    Keys: ``dsc``, ``hd95`` (mm), ``accuracy``, ``precision``, ``recall`` (each ``_before``/``_after``),
    ``tre_before_<k>``/``tre_after_<k>`` and ``tre_before_mean``/``tre_after_mean`` (mm) when both
    landmark volumes are given, and ``folding_fraction``.
    """
    spacing = M.spacing_from_affine(us_affine)
    met: dict[str, float] = {}
    met.update(_label_metrics("before", mr_label_on_us, us_label, spacing))
    met.update(_label_metrics("after", warped_mr_label, us_label, spacing))
    if mr_landmarks is not None and us_landmarks is not None:
        fixed_pts = M.landmark_centroids(us_landmarks)
        moving_pts = _moving_points_on_fixed(mr_landmarks, mr_affine, us_affine)
        before = M.tre_points(fixed_pts, moving_pts, None, spacing)
        after = M.tre_points(fixed_pts, moving_pts, displacement, spacing)
        met.update({k.replace("tre_", "tre_before_"): v for k, v in before.items()})
        met.update({k.replace("tre_", "tre_after_"): v for k, v in after.items()})
    met["folding_fraction"] = M.folding_fraction(displacement)
    return met


def displacement_compose(first: NDArray[np.floating], then: NDArray[np.floating]) -> Float32:
    """Field of "apply ``then`` to an image already warped by ``first``": ``u(p) = v(p) + u0(p + v(p))``.

    ``first`` = ``u0``, ``then`` = ``v``; both ``(3, X, Y, Z)`` in the same grid's voxels.
    """
    u0 = np.asarray(first, dtype=np.float32)
    v = np.asarray(then, dtype=np.float32)
    if u0.shape != v.shape or u0.ndim != 4 or u0.shape[0] != 3:
        raise ValueError(f"fields must both be (3, X, Y, Z), got {u0.shape} and {v.shape}")
    shifted = np.stack([volume_warp(u0[c], v) for c in range(3)])
    return (shifted + v).astype(np.float32)


def register_case(
    *,
    mr: NDArray[np.generic],
    mr_affine: NDArray[np.floating],
    us: NDArray[np.generic],
    us_affine: NDArray[np.floating],
    mr_label: NDArray[np.generic] | None = None,
    us_label: NDArray[np.generic] | None = None,
    mr_landmarks: NDArray[np.generic] | None = None,
    us_landmarks: NDArray[np.generic] | None = None,
    config: RegistrationConfig | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> RegistrationResult:
    """Register an MR T2 volume (moving) to a TRUS volume (fixed).

    Args:
        mr, us: ``(X, Y, Z)`` volumes with their 4x4 RAS+ affines ``mr_affine``, ``us_affine``.
        mr_label, us_label: optional gland labels on their image's grid (non-zero = gland).
        mr_landmarks, us_landmarks: optional landmark label volumes (value k = landmark k).
        config: :class:`RegistrationConfig` (default ``method="rern+io"``).
        progress: called as ``progress(stage, fraction_done)``.
        should_cancel: polled between stages; True raises :class:`RegistrationCancelled`.

    Returns:
        :class:`RegistrationResult` on the TRUS grid.

    Raises:
        ValueError: bad shapes/affines/non-finite values (nothing is computed).
        RegistrationCancelled: cancelled between stages.
        inference.registry.CheckpointError: method ``rern``/``localnet`` without a usable checkpoint.
    """
    cfg = config or RegistrationConfig()
    mr_arr = _check_volume("mr", mr, mr_affine)
    us_arr = _check_volume("us", us, us_affine)
    _check_same_grid("mr_label", mr_label, mr_arr.shape)
    _check_same_grid("mr_landmarks", mr_landmarks, mr_arr.shape)
    _check_same_grid("us_label", us_label, us_arr.shape)
    _check_same_grid("us_landmarks", us_landmarks, us_arr.shape)
    a_mr = np.asarray(mr_affine, dtype=np.float64)
    a_us = np.asarray(us_affine, dtype=np.float64)
    report: ProgressFn = progress or (lambda stage, fraction: None)
    cancelled: CancelFn = should_cancel or (lambda: False)
    stages: dict[str, float] = {}
    notes: list[str] = []
    shape = tuple(int(v) for v in us_arr.shape)
    spacing = M.spacing_from_affine(a_us)
    uses_torch = cfg.method != "initial"

    thread_state: int | None = None
    if uses_torch and cfg.num_threads is not None:
        import torch

        thread_state = torch.get_num_threads()
        torch.set_num_threads(cfg.num_threads)

    def checkpoint_stage(name: str, fraction: float, started: float) -> None:
        stages[name] = time.perf_counter() - started
        report(name, fraction)
        if cancelled():
            raise RegistrationCancelled(f"registration cancelled after stage {name!r}")

    try:
        if cancelled():
            raise RegistrationCancelled("registration cancelled before it started")
        model: dict[str, Any] = {
            "name": "initial-alignment",
            "checkpoint": "",
            "sha256": "",
            "code_version": code_version(),
            "synthetic_training": False,
            "method": cfg.method,
        }

        t = time.perf_counter()
        mr_on_us = volume_resample(mr_arr, a_mr, shape, a_us, order=1)
        us_f = np.asarray(us_arr, dtype=np.float32)
        checkpoint_stage("resample", 0.1, t)

        t = time.perf_counter()
        seg_used: dict[str, Any] = {}
        mr_lab_src = None if mr_label is None else (np.asarray(mr_label) > 0).astype(np.uint8)
        us_lab = None if us_label is None else (np.asarray(us_label) > 0).astype(np.uint8)
        if uses_torch and cfg.segment_missing and (mr_lab_src is None or us_lab is None):
            for modality in ("mri", "trus"):
                if (modality == "mri" and mr_lab_src is not None) or (
                    modality == "trus" and us_lab is not None
                ):
                    continue
                try:
                    lab, info = _segment_stage(
                        image=mr_arr if modality == "mri" else us_f,
                        modality=modality,
                        checkpoint=None,
                        device_name=cfg.device,
                    )
                except CheckpointError as exc:
                    notes.append(f"{modality} gland label missing and not segmented: {exc}")
                    continue
                seg_used[modality] = info
                if modality == "mri":
                    mr_lab_src = lab
                else:
                    us_lab = lab
            checkpoint_stage("segment", 0.2, t)
        if seg_used:
            model["segmentation"] = seg_used
        mr_lab_on_us = (
            None
            if mr_lab_src is None
            else (volume_resample(mr_lab_src, a_mr, shape, a_us, order=0) > 0.5).astype(np.uint8)
        )

        t = time.perf_counter()
        if mr_lab_on_us is not None and us_lab is not None:
            disp, _, align_kind = initial_alignment(
                mr_label=mr_lab_on_us, us_label=us_lab, spacing=spacing, use_affine=cfg.affine_init
            )
        else:
            disp, align_kind = np.zeros((3, *shape), dtype=np.float32), "none"
            notes.append(
                "no gland labels on both sides: initial alignment is the scanner affine only"
            )
        model["initial_alignment"] = align_kind
        checkpoint_stage("initial", 0.3, t)

        if cfg.method in ("rern", "rern+io", "localnet"):
            t = time.perf_counter()
            kind = "localnet" if cfg.method == "localnet" else "rern"
            aligned = volume_warp(mr_on_us, disp)
            moving = intensity_normalise(aligned)
            fixed = intensity_normalise(us_f)
            if cfg.enhance:
                moving = intensity_enhance(moving, cfg.enhance)
                fixed = intensity_enhance(fixed, cfg.enhance)
            try:
                ddf, net_info = _network_stage(
                    kind=kind,
                    checkpoint=cfg.checkpoint,
                    moving=moving,
                    fixed=fixed,
                    device_name=cfg.device,
                )
                # The network acts on the initially aligned MR, so its field composes after u0.
                disp = displacement_compose(disp, ddf)
                model.update(net_info)
            except CheckpointError as exc:
                if cfg.method != "rern+io":
                    raise
                notes.append(f"no usable RERN checkpoint ({exc}); instance optimisation only")
                model["name"] = "instance-optimisation (no RERN checkpoint)"
            checkpoint_stage("network", 0.6, t)

        if cfg.method in ("rern+io", "io"):
            t = time.perf_counter()
            if mr_lab_on_us is not None and us_lab is not None and cfg.io_steps > 0:
                disp = instance_optimise(
                    mr_label=mr_lab_on_us,
                    us_label=us_lab,
                    initial=disp,
                    steps=cfg.io_steps,
                    learning_rate=cfg.io_learning_rate,
                    bending_weight=cfg.io_bending_weight,
                    grid_stride=cfg.io_grid_stride,
                    downsample=cfg.io_downsample,
                    device_name=cfg.device,
                    seed=cfg.seed,
                )
                if cfg.method == "io":
                    model["name"] = "instance-optimisation"
                else:
                    model["name"] = f"{model['name']}+instance-optimisation"
                model["refinement"] = {
                    "steps": cfg.io_steps,
                    "bending_weight": cfg.io_bending_weight,
                    "grid_stride": cfg.io_grid_stride,
                }
            else:
                notes.append("instance optimisation skipped: it needs gland labels on both sides")
            checkpoint_stage("refine", 0.8, t)

        t = time.perf_counter()
        warped = volume_warp(mr_on_us, disp)
        warped_lab = (
            None
            if mr_lab_on_us is None
            else (volume_warp(mr_lab_on_us.astype(np.float32), disp) > 0.5).astype(np.uint8)
        )
        met = case_metrics(
            displacement=disp,
            mr_label_on_us=mr_lab_on_us,
            warped_mr_label=warped_lab,
            us_label=us_lab,
            mr_landmarks=None if mr_landmarks is None else np.asarray(mr_landmarks),
            us_landmarks=None if us_landmarks is None else np.asarray(us_landmarks),
            mr_affine=a_mr,
            us_affine=a_us,
        )
        checkpoint_stage("metrics", 1.0, t)
    finally:
        if thread_state is not None:
            import torch

            torch.set_num_threads(thread_state)

    return RegistrationResult(
        displacement=disp,
        warped_mr=warped,
        warped_mr_label=warped_lab,
        mr_on_us=mr_on_us,
        affine=a_us,
        metrics=met,
        stage_seconds=stages,
        model=model,
        mr_label_on_us=mr_lab_on_us,
        us_label=us_lab,
        notes=notes,
    )
