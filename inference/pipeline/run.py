"""``register_case``: the stages in order, each timed, with cancellation polled between them.

See :mod:`inference.pipeline` for the geometry and the stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference import metrics as M
from inference.case_metrics import basis_describe, case_metrics
from inference.geometry import FrameAlignment, frame_align, mr_sample
from inference.methods import method_get
from inference.pipeline.checks import (
    CaseInputs,
    inputs_check,
    labels_check,
    result_check,
    volume_ml,
)
from inference.pipeline.config import (
    CancelFn,
    Float32,
    ProgressFn,
    RegistrationCancelled,
    RegistrationConfig,
    RegistrationFailed,
    RegistrationResult,
)
from inference.pipeline.steps import deformable_run, segment_missing
from inference.registry import code_version

U8 = NDArray[np.uint8]


class _Clock:
    """Times the stages, reports each finished one and polls for cancellation after it."""

    def __init__(self, progress: ProgressFn | None, should_cancel: CancelFn | None) -> None:
        self.seconds: dict[str, float] = {}
        self._report: ProgressFn = progress or (lambda stage, fraction: None)
        self._cancelled: CancelFn = should_cancel or (lambda: False)

    def start(self) -> None:
        if self._cancelled():
            raise RegistrationCancelled("registration cancelled before it started")

    def done(self, name: str, fraction: float, started: float) -> None:
        self.seconds[name] = time.perf_counter() - started
        self._report(name, fraction)
        if self._cancelled():
            raise RegistrationCancelled(f"registration cancelled after stage {name!r}")


@contextmanager
def _torch_threads(cfg: RegistrationConfig) -> Iterator[None]:
    """``cfg.num_threads`` torch CPU threads for the call; torch untouched by ``initial``."""
    if not method_get(cfg.method).deformable or cfg.num_threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class _Labels:
    """The two gland labels (``uint8`` 0/1, each on its image's grid) and where each came from."""

    mr: U8
    us: U8
    source: dict[str, str]


def _labels_prepare(
    *,
    cfg: RegistrationConfig,
    images: dict[str, tuple[NDArray[np.generic], NDArray[np.float64]]],
    given: dict[str, NDArray[np.generic] | None],
    model: dict[str, Any],
    notes: list[str],
    warnings: list[str],
    clock: _Clock,
) -> _Labels:
    """Stage ``segment`` (only when a label is missing), then the label checks."""
    labels: dict[str, U8 | None] = {
        s: None if lab is None else (np.asarray(lab) > 0).astype(np.uint8)
        for s, lab in given.items()
    }
    source = {s: "given" for s, lab in labels.items() if lab is not None}
    t = time.perf_counter()
    if cfg.segment_missing and (labels["mr"] is None or labels["us"] is None):
        seg = segment_missing(
            cfg=cfg, images=images, labels=labels, source=source, notes=notes, warnings=warnings
        )
        if seg:
            model["segmentation"] = seg
        clock.done("segment", 0.2, t)
    mr_lab, us_lab = labels["mr"], labels["us"]
    if mr_lab is None or us_lab is None:
        raise RegistrationFailed(
            "The MRI and the TRUS come from different machines, so they can only be aligned "
            "through their gland labels, and "
            + ("the MRI" if mr_lab is None else "the TRUS")
            + " has no gland label and no segmentation model is installed. "
            + " ".join(notes)
        )
    labels_check(volume_ml(mr_lab, images["mr"][1]), volume_ml(us_lab, images["us"][1]), source)
    return _Labels(mr=mr_lab, us=us_lab, source=source)


@dataclass
class _Initial:
    """The frame alignment ``world`` (TRUS world → MR world) and the MR sampled through it."""

    world: NDArray[np.float64]
    sample: Callable[[NDArray[np.generic], Float32 | None], Float32]
    mr: Float32
    mr_label: U8
    dsc: float


def _initial_align(
    *,
    cfg: RegistrationConfig,
    case: CaseInputs,
    labels: _Labels,
    model: dict[str, Any],
    clock: _Clock,
) -> _Initial:
    """Stage ``initial``: align the frames through the gland labels; fail below ``min_dsc``."""
    t = time.perf_counter()
    a_mr, a_us, shape = case.a_mr, case.a_us, case.shape
    try:
        fa: FrameAlignment = frame_align(
            mr_label=labels.mr,
            mr_affine=a_mr,
            us_label=labels.us,
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
            vol, mr_affine=a_mr, us_shape=shape, us_affine=a_us, world=world, displacement=disp
        )

    mr_initial = sample(case.mr, None)
    mr_lab_initial = (sample(labels.mr, None) > 0.5).astype(np.uint8)
    dsc_initial = M.dice(mr_lab_initial, labels.us)
    if not mr_lab_initial.any() or dsc_initial < cfg.min_dsc:
        raise RegistrationFailed(
            f"The initial alignment failed: the gland Dice after aligning the two frames is "
            f"{dsc_initial:.2f} (below {cfg.min_dsc:.2f}) "
            + basis_describe(labels.source)
            + ". The glands may be mis-segmented, or the TRUS orientation does not follow the "
            "axial-sweep convention."
        )
    clock.done("initial", 0.3, t)
    return _Initial(world, sample, mr_initial, mr_lab_initial, dsc_initial)


def _measure(
    *, case: CaseInputs, init: _Initial, labels: _Labels, disp: Float32, warped_label: U8
) -> dict[str, float]:
    """Stage ``metrics``: overlap, distance, TRE and folding at the initial alignment and after."""
    return case_metrics(
        world=init.world,
        displacement=disp,
        mr_label_initial=init.mr_label,
        warped_mr_label=warped_label,
        us_label=labels.us,
        mr_landmarks=case.mr_landmarks,
        us_landmarks=case.us_landmarks,
        mr_affine=case.a_mr,
        us_affine=case.a_us,
    )


def _field_guard(
    *,
    cfg: RegistrationConfig,
    disp: Float32,
    init: _Initial,
    labels: _Labels,
    model: dict[str, Any],
    notes: list[str],
) -> tuple[Float32, U8]:
    """The field and the warped MR label; with ``guard`` a field that lowers the Dice is dropped."""
    warped_lab = (init.sample(labels.mr, disp) > 0.5).astype(np.uint8)
    if disp.any() and cfg.guard and M.dice(warped_lab, labels.us) < init.dsc:
        notes.append(
            f"the deformable stage lowered the gland Dice ({init.dsc:.3f} → "
            f"{M.dice(warped_lab, labels.us):.3f}); the initial alignment was kept"
        )
        model["guard_reverted"] = True
        return np.zeros_like(disp), init.mr_label
    return disp, warped_lab


def _model_describe(cfg: RegistrationConfig) -> dict[str, Any]:
    """The result's ``model`` before any stage: the initial alignment alone."""
    return {
        "name": "initial-alignment",
        "checkpoint": "",
        "sha256": "",
        "code_version": code_version(),
        "synthetic_training": False,
        "method": cfg.method,
    }


def _deformable_stage(
    *,
    cfg: RegistrationConfig,
    deformable: Callable[[Float32, Float32], Float32] | None,
    init: _Initial,
    us: Float32,
    labels: _Labels,
    model: dict[str, Any],
    notes: list[str],
    clock: _Clock,
) -> Float32:
    """The field ``u`` (3, X, Y, Z): a baseline's ``deformable``, the method's stages, or zero."""
    if deformable is not None:
        t = time.perf_counter()
        disp = np.asarray(deformable(init.mr, us), dtype=np.float32)
        clock.done("network", 0.6, t)
        return disp
    if method_get(cfg.method).deformable:
        return deformable_run(
            cfg=cfg,
            mr_initial=init.mr,
            us=us,
            mr_lab_initial=init.mr_label,
            us_lab=labels.us,
            model=model,
            notes=notes,
            stage_done=clock.done,
        )
    return np.zeros((3, *us.shape), dtype=np.float32)


def _finish(
    *,
    cfg: RegistrationConfig,
    case: CaseInputs,
    init: _Initial,
    labels: _Labels,
    disp: Float32,
    model: dict[str, Any],
    notes: list[str],
    warnings: list[str],
    clock: _Clock,
) -> RegistrationResult:
    """Guard the field, warp the MR, stage ``metrics`` and the result checks; the result."""
    t = time.perf_counter()
    disp, warped_lab = _field_guard(
        cfg=cfg, disp=disp, init=init, labels=labels, model=model, notes=notes
    )
    warped = init.sample(case.mr, disp) if disp.any() else init.mr
    met = _measure(case=case, init=init, labels=labels, disp=disp, warped_label=warped_lab)
    clock.done("metrics", 1.0, t)
    result_check(met, cfg, labels.source)
    return RegistrationResult(
        displacement=disp,
        warped_mr=warped,
        warped_mr_label=warped_lab,
        mr_initial=init.mr,
        affine=case.a_us,
        world=init.world,
        metrics=met,
        stage_seconds=clock.seconds,
        model=model,
        us_label=labels.us,
        mr_label_initial=init.mr_label,
        label_source=labels.source,
        metrics_basis=basis_describe(labels.source, landmarks=case.mr_landmarks is not None),
        notes=notes,
        warnings=warnings,
    )


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
    case = inputs_check(
        mr=mr,
        mr_affine=mr_affine,
        us=us,
        us_affine=us_affine,
        labels={"mr_label": mr_label, "us_label": us_label},
        landmarks={"mr_landmarks": mr_landmarks, "us_landmarks": us_landmarks},
    )
    clock = _Clock(progress, should_cancel)
    notes: list[str] = []
    warnings: list[str] = []
    with _torch_threads(cfg):
        clock.start()
        model = _model_describe(cfg)
        labels = _labels_prepare(
            cfg=cfg,
            images={"mr": (case.mr, case.a_mr), "us": (case.us, case.a_us)},
            given={"mr": mr_label, "us": us_label},
            model=model,
            notes=notes,
            warnings=warnings,
            clock=clock,
        )
        init = _initial_align(cfg=cfg, case=case, labels=labels, model=model, clock=clock)
        disp = _deformable_stage(
            cfg=cfg,
            deformable=deformable,
            init=init,
            us=case.us,
            labels=labels,
            model=model,
            notes=notes,
            clock=clock,
        )
        return _finish(
            cfg=cfg,
            case=case,
            init=init,
            labels=labels,
            disp=disp,
            model=model,
            notes=notes,
            warnings=warnings,
            clock=clock,
        )
