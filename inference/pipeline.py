"""``register_case``: the one MR→TRUS registration entry point used by the workers and the CLIs.

The MR and the TRUS come from different machines and share no frame of reference: the TRUS affine
is the probe's frame. Geometry (:mod:`inference.geometry`): TRUS voxel ``p`` ↦ MR voxel
``q(p) = A_mr⁻¹ · W · A_us · (p + u(p))``, and every output is ONE sampling of the original MR
through ``q`` (zero outside the MR).

Stages (each timed in ``RegistrationResult.stage_seconds``; ``should_cancel`` is checked between them):

1. ``segment``  — gland labels by the attention U-Nets where a label is missing.
2. ``initial``  — the frame alignment ``W`` (rigid, then affine) from the two gland labels, each in
   its own frame. numpy only.
3. ``network``  — RERN (or LocalNet) on the MR sampled through ``W`` and the TRUS (``rern``,
   ``rern+io``, ``localnet``): its field is ``u``.
4. ``refine``   — instance optimisation of ``u`` on the gland labels (``rern+io``, ``io``).
5. ``metrics``  — DSC/HD95/accuracy/precision/recall and TRE at the initial alignment
   (``*_initial``) and after (``*_after``), folding; then the quality checks.

Quality checks end the registration with :class:`RegistrationFailed` (a message for people) rather
than a result that looks like a success: an empty gland, gland volumes that cannot be the same
gland, an initial alignment or a final Dice below ``min_dsc``, folding above ``max_folding``.
With ``guard`` (default) a deformable stage that lowers the gland Dice is dropped for the initial
alignment, with a note. Metrics say what they were measured against (:attr:`metrics_basis`).
``method="initial"`` with both labels given never imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference import metrics as M
from inference.case_metrics import basis_describe, case_metrics
from inference.geometry import FrameAlignment, frame_align, mr_sample
from inference.preprocess import ENHANCEMENTS, intensity_enhance, intensity_normalise
from inference.registry import CheckpointError, code_version

__all__ = [
    "METHODS",
    "RegistrationCancelled",
    "RegistrationConfig",
    "RegistrationFailed",
    "RegistrationResult",
    "case_metrics",
    "register_case",
]

METHODS = ("initial", "rern", "rern+io", "localnet", "io")
Float32 = NDArray[np.float32]


class RegistrationCancelled(Exception):
    """Raised by :func:`register_case` when ``should_cancel()`` returns True between stages."""


class RegistrationFailed(Exception):
    """The registration ran but its result is not trustworthy; ``str(exc)`` says why, for people."""


@dataclass(frozen=True)
class RegistrationConfig:
    """How to register one case.

    Attributes:
        method: ``initial`` | ``rern`` | ``rern+io`` (default) | ``localnet`` | ``io``.
        checkpoint: registry key or ``.pt`` path of the network; None = registry default.
        affine_init: allow the affine (scaled) frame alignment after the rigid one.
        segment_missing: segment missing gland labels when a segmentation model is registered.
        enhance: contrast options applied to both images before the network (``histeq``, ``gamma``,
            ``laplacian``), for external cohorts.
        io_*: instance optimisation settings (Adam steps, step size in voxels, bending-energy weight,
            control-point spacing in working-grid voxels, working-grid downsampling factor).
        min_dsc: the gland Dice below which the initial alignment or the result counts as failed.
        max_folding: the largest fraction of folded voxels (Jacobian ≤ 0) accepted.
        guard: drop a deformable stage that lowers the gland Dice (keep the initial alignment).
        max_rotation_deg: the largest tilt between the two frames that the alignment searches.
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
    min_dsc: float = 0.6
    max_folding: float = 0.01
    guard: bool = True
    max_rotation_deg: float = 30.0
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
        if not 0.0 <= self.min_dsc < 1.0 or not 0.0 <= self.max_folding <= 1.0:
            raise ValueError("min_dsc must be in [0, 1) and max_folding in [0, 1]")


@dataclass
class RegistrationResult:
    """Output of :func:`register_case`; all volumes are on the TRUS grid (``affine``).

    ``world`` (4×4, TRUS world → MR world) and ``displacement`` ``(3, X, Y, Z)`` (TRUS voxels) are the
    whole transform: ``warped_mr(p) = MR(A_mr⁻¹ · world · affine · (p + displacement(p)))``.
    ``mr_initial`` is the MR through ``world`` alone. ``label_source`` says, per side, whether the
    gland label was ``given`` or ``segmented``; ``metrics_basis`` says it in words.
    """

    displacement: Float32
    warped_mr: Float32
    warped_mr_label: NDArray[np.uint8] | None
    mr_initial: Float32
    affine: NDArray[np.float64]
    world: NDArray[np.float64]
    metrics: dict[str, float]
    stage_seconds: dict[str, float]
    model: dict[str, Any]
    us_label: NDArray[np.uint8] | None = None
    mr_label_initial: NDArray[np.uint8] | None = None
    label_source: dict[str, str] = field(default_factory=dict)
    metrics_basis: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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


def _volume_ml(label: NDArray[np.generic], affine: NDArray[np.float64]) -> float:
    return float(np.count_nonzero(label)) * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0


def _labels_check(mr_ml: float, us_ml: float, source: dict[str, str]) -> None:
    how = {s: ("segmented" if source.get(s) == "segmented" else "given") for s in ("mr", "us")}
    if mr_ml <= 0:
        raise RegistrationFailed(f"No prostate gland in the MRI ({how['mr']} label is empty).")
    if us_ml <= 0:
        raise RegistrationFailed(f"No prostate gland in the TRUS ({how['us']} label is empty).")
    ratio = us_ml / mr_ml
    if not 0.5 <= ratio <= 2.0:
        raise RegistrationFailed(
            f"The gland volumes disagree: {mr_ml:.1f} mL in the MRI ({how['mr']} label) and "
            f"{us_ml:.1f} mL in the TRUS ({how['us']} label) cannot be the same gland; check the "
            "segmentations before registering."
        )


def _segment_missing(
    *,
    cfg: RegistrationConfig,
    images: dict[str, tuple[NDArray[np.generic], NDArray[np.float64]]],
    labels: dict[str, NDArray[np.uint8] | None],
    source: dict[str, str],
    notes: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    from inference.stages import segment_stage

    used: dict[str, Any] = {}
    for side, modality in (("mr", "mri"), ("us", "trus")):
        if labels[side] is not None:
            continue
        image, affine = images[side]
        try:
            lab, info = segment_stage(
                image=image,
                affine=affine,
                modality=modality,
                checkpoint=None,
                device_name=cfg.device,
            )
        except CheckpointError as exc:
            notes.append(f"{modality} gland label missing and not segmented: {exc}")
            continue
        labels[side] = lab
        source[side] = "segmented"
        warnings.extend(str(w) for w in info.pop("warnings", []) or [])
        used[modality] = {k: v for k, v in info.items() if not isinstance(v, np.ndarray)}
    return used


def _run_deformable(
    *,
    cfg: RegistrationConfig,
    mr_initial: Float32,
    us: Float32,
    mr_lab_initial: NDArray[np.uint8],
    us_lab: NDArray[np.uint8],
    model: dict[str, Any],
    notes: list[str],
    checkpoint_stage: Callable[[str, float, float], None],
) -> Float32:
    from inference.stages import instance_optimise, network_stage

    disp = np.zeros((3, *us.shape), dtype=np.float32)
    if cfg.method in ("rern", "rern+io", "localnet"):
        t = time.perf_counter()
        kind = "localnet" if cfg.method == "localnet" else "rern"
        moving, fixed = intensity_normalise(mr_initial), intensity_normalise(us)
        if cfg.enhance:
            moving = intensity_enhance(moving, cfg.enhance)
            fixed = intensity_enhance(fixed, cfg.enhance)
        try:
            disp, net_info = network_stage(
                kind=kind,
                checkpoint=cfg.checkpoint,
                moving=moving,
                fixed=fixed,
                device_name=cfg.device,
            )
            model.update(net_info)
        except CheckpointError as exc:
            if cfg.method != "rern+io":
                raise
            notes.append(f"no usable RERN checkpoint ({exc}); instance optimisation only")
            model["name"] = "instance-optimisation (no RERN checkpoint)"
        checkpoint_stage("network", 0.6, t)
    if cfg.method in ("rern+io", "io"):
        t = time.perf_counter()
        if cfg.io_steps > 0:
            disp = instance_optimise(
                mr_label=mr_lab_initial,
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
        checkpoint_stage("refine", 0.8, t)
    return np.asarray(disp, dtype=np.float32)


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
    deformable: Callable[[Float32, Float32], Float32] | None = None,
) -> RegistrationResult:
    """Register an MR T2 volume (moving) to a TRUS volume (fixed), each in its own frame.

    Args:
        mr, us: ``(X, Y, Z)`` volumes with their 4x4 RAS+ affines ``mr_affine``, ``us_affine``.
        mr_label, us_label: optional gland labels on their image's grid (non-zero = gland);
            missing ones are segmented.
        mr_landmarks, us_landmarks: optional landmark label volumes (value k = landmark k).
        config: :class:`RegistrationConfig` (default ``method="rern+io"``).
        progress: called as ``progress(stage, fraction_done)``.
        should_cancel: polled between stages; True raises :class:`RegistrationCancelled`.
        deformable: instead of the method's deformable stages, a function
            ``(moving (X, Y, Z), fixed (X, Y, Z)) -> u (3, X, Y, Z)`` on the TRUS grid (baselines).

    Raises:
        ValueError: bad shapes/affines/non-finite values (nothing is computed).
        RegistrationFailed: no gland, implausible glands, failed alignment or result.
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
    warnings: list[str] = []
    shape = tuple(int(v) for v in us_arr.shape)
    us_f = np.asarray(us_arr, dtype=np.float32)

    thread_state: int | None = None
    if cfg.method != "initial" and cfg.num_threads is not None:
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
        labels: dict[str, NDArray[np.uint8] | None] = {
            "mr": None if mr_label is None else (np.asarray(mr_label) > 0).astype(np.uint8),
            "us": None if us_label is None else (np.asarray(us_label) > 0).astype(np.uint8),
        }
        source = {s: "given" for s, lab in labels.items() if lab is not None}
        t = time.perf_counter()
        if cfg.segment_missing and (labels["mr"] is None or labels["us"] is None):
            seg = _segment_missing(
                cfg=cfg,
                images={"mr": (mr_arr, a_mr), "us": (us_f, a_us)},
                labels=labels,
                source=source,
                notes=notes,
                warnings=warnings,
            )
            if seg:
                model["segmentation"] = seg
            checkpoint_stage("segment", 0.2, t)
        mr_lab, us_lab = labels["mr"], labels["us"]
        if mr_lab is None or us_lab is None:
            raise RegistrationFailed(
                "The MRI and the TRUS come from different machines, so they can only be aligned "
                "through their gland labels, and "
                + ("the MRI" if mr_lab is None else "the TRUS")
                + " has no gland label and no segmentation model is installed. "
                + " ".join(notes)
            )
        _labels_check(_volume_ml(mr_lab, a_mr), _volume_ml(us_lab, a_us), source)

        t = time.perf_counter()
        try:
            fa: FrameAlignment = frame_align(
                mr_label=mr_lab,
                mr_affine=a_mr,
                us_label=us_lab,
                us_affine=a_us,
                max_rotation_deg=cfg.max_rotation_deg,
                use_affine=cfg.affine_init,
            )
        except ValueError as exc:
            raise RegistrationFailed(f"The initial alignment failed: {exc}.") from exc
        world = fa.matrix
        model["initial_alignment"] = fa.kind
        model["frame_alignment"] = {
            "matrix": np.round(world, 6).tolist(),
            "kind": fa.kind,
            "dsc": round(fa.dsc, 4),
            "rotation_deg": round(fa.rotation_deg, 2),
            "scales": [round(s, 4) for s in fa.scales],
        }

        def sample(vol: NDArray[np.generic], disp: Float32 | None) -> Float32:
            return mr_sample(
                vol,
                mr_affine=a_mr,
                us_shape=shape,
                us_affine=a_us,
                world=world,
                displacement=disp,
            )

        mr_initial = sample(mr_arr, None)
        mr_lab_initial = (sample(mr_lab, None) > 0.5).astype(np.uint8)
        dsc_initial = M.dice(mr_lab_initial, us_lab)
        if not mr_lab_initial.any() or dsc_initial < cfg.min_dsc:
            raise RegistrationFailed(
                f"The initial alignment failed: the gland Dice after aligning the two frames is "
                f"{dsc_initial:.2f} (below {cfg.min_dsc:.2f}) "
                + basis_describe(source)
                + ". The glands may be mis-segmented, or the TRUS orientation does not follow the "
                "axial-sweep convention."
            )
        checkpoint_stage("initial", 0.3, t)

        if deformable is not None:
            t = time.perf_counter()
            disp = np.asarray(deformable(mr_initial, us_f), dtype=np.float32)
            checkpoint_stage("network", 0.6, t)
        elif cfg.method != "initial":
            disp = _run_deformable(
                cfg=cfg,
                mr_initial=mr_initial,
                us=us_f,
                mr_lab_initial=mr_lab_initial,
                us_lab=us_lab,
                model=model,
                notes=notes,
                checkpoint_stage=checkpoint_stage,
            )
        else:
            disp = np.zeros((3, *shape), dtype=np.float32)

        t = time.perf_counter()
        warped_lab = (sample(mr_lab, disp) > 0.5).astype(np.uint8)
        if disp.any() and cfg.guard and M.dice(warped_lab, us_lab) < dsc_initial:
            notes.append(
                f"the deformable stage lowered the gland Dice ({dsc_initial:.3f} → "
                f"{M.dice(warped_lab, us_lab):.3f}); the initial alignment was kept"
            )
            model["guard_reverted"] = True
            disp = np.zeros((3, *shape), dtype=np.float32)
            warped_lab = mr_lab_initial
        warped = sample(mr_arr, disp) if disp.any() else mr_initial
        met = case_metrics(
            world=world,
            displacement=disp,
            mr_label_initial=mr_lab_initial,
            warped_mr_label=warped_lab,
            us_label=us_lab,
            mr_landmarks=None if mr_landmarks is None else np.asarray(mr_landmarks),
            us_landmarks=None if us_landmarks is None else np.asarray(us_landmarks),
            mr_affine=a_mr,
            us_affine=a_us,
        )
        checkpoint_stage("metrics", 1.0, t)
        _result_check(met, cfg, source)
    finally:
        if thread_state is not None:
            import torch

            torch.set_num_threads(thread_state)

    return RegistrationResult(
        displacement=disp,
        warped_mr=warped,
        warped_mr_label=warped_lab,
        mr_initial=mr_initial,
        affine=a_us,
        world=world,
        metrics=met,
        stage_seconds=stages,
        model=model,
        us_label=us_lab,
        mr_label_initial=mr_lab_initial,
        label_source=source,
        metrics_basis=basis_describe(source, landmarks=mr_landmarks is not None),
        notes=notes,
        warnings=warnings,
    )


def _result_check(met: dict[str, float], cfg: RegistrationConfig, source: dict[str, str]) -> None:
    dsc = met.get("dsc_after", float("nan"))
    if not dsc >= cfg.min_dsc:
        raise RegistrationFailed(
            f"The registration failed: the gland Dice after registration is {dsc:.2f} "
            f"(below {cfg.min_dsc:.2f}) {basis_describe(source)}."
        )
    fold = met.get("folding_fraction", 0.0)
    if fold > cfg.max_folding:
        raise RegistrationFailed(
            f"The registration failed: {100 * fold:.2f}% of voxels fold (the deformation is not "
            f"invertible there; at most {100 * cfg.max_folding:.2f}% is accepted)."
        )
