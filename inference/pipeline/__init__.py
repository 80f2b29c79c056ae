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

Layout: ``config`` (:class:`RegistrationConfig`, :class:`RegistrationResult`, the exceptions),
``checks`` (inputs, labels, result), ``steps`` (segmentation, network and instance optimisation;
they import torch lazily), ``run`` (:func:`register_case`). Which stages a method runs comes from
:mod:`inference.methods`.
"""

from __future__ import annotations

from inference.pipeline.config import (
    RegistrationCancelled,
    RegistrationConfig,
    RegistrationFailed,
    RegistrationResult,
)
from inference.pipeline.run import register_case

__all__ = [
    "RegistrationCancelled",
    "RegistrationConfig",
    "RegistrationFailed",
    "RegistrationResult",
    "register_case",
]
