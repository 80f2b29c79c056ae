"""The stages of :func:`inference.pipeline.register_case` between the checks: segment the missing
gland labels, align the two frames, run the method's deformable stages, keep or drop their field
and measure. Torch is imported inside the stages that need it (``inference.stages``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.methods import method_get
from inference.pipeline.config import Float32, RegistrationConfig
from inference.preprocess import intensity_enhance, intensity_normalise
from inference.registry import CheckpointError

# ``stage_done(name, fraction, started)``: record the stage's time, report it, poll cancellation.
StageDone = Callable[[str, float, float], None]


def segment_missing(
    *,
    cfg: RegistrationConfig,
    images: dict[str, tuple[NDArray[np.generic], NDArray[np.float64]]],
    labels: dict[str, NDArray[np.uint8] | None],
    source: dict[str, str],
    notes: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    """Segment each missing label in place (``labels``, ``source``); what was used, per modality."""
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


def deformable_run(
    *,
    cfg: RegistrationConfig,
    mr_initial: Float32,
    us: Float32,
    mr_lab_initial: NDArray[np.uint8],
    us_lab: NDArray[np.uint8],
    model: dict[str, Any],
    notes: list[str],
    stage_done: StageDone,
) -> Float32:
    """The method's network, then its instance optimisation; the field ``u`` (3, X, Y, Z)."""
    from inference.stages import instance_optimise, network_stage

    method = method_get(cfg.method)
    disp = np.zeros((3, *us.shape), dtype=np.float32)
    if method.network is not None:
        t = time.perf_counter()
        kind = method.network
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
            if not method.iterative:
                raise
            notes.append(f"no usable RERN checkpoint ({exc}); instance optimisation only")
            model["name"] = "instance-optimisation (no RERN checkpoint)"
        stage_done("network", 0.6, t)
    if method.iterative:
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
            if method.network is None:
                model["name"] = "instance-optimisation"
            else:
                model["name"] = f"{model['name']}+instance-optimisation"
            model["refinement"] = {
                "steps": cfg.io_steps,
                "bending_weight": cfg.io_bending_weight,
                "grid_stride": cfg.io_grid_stride,
            }
        stage_done("refine", 0.8, t)
    return np.asarray(disp, dtype=np.float32)
