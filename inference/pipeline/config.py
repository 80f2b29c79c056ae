"""What :func:`inference.pipeline.register_case` takes and gives: its configuration, its result and
its two exceptions. Torch-free (the worker builds a configuration before any model is loaded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.methods import DEFAULT_METHOD, method_get
from inference.preprocess import ENHANCEMENTS

Float32 = NDArray[np.float32]
ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


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

    method: str = DEFAULT_METHOD
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
        method_get(self.method)  # ValueError naming the choices
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
