"""Padding helpers shared by the networks: pad spatial dims up to a multiple, crop back."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Replicate-pad the spatial dims of ``(B, C, *spatial)`` at the high end to a multiple.

    Returns the padded tensor and the original spatial shape (for :func:`crop_to`).
    """
    spatial = tuple(int(s) for s in x.shape[2:])
    pads: list[int] = []
    for s in reversed(spatial):
        pads += [0, (-s) % multiple]
    if any(pads):
        x = F.pad(x, pads, mode="replicate")
    return x, spatial


def crop_to(x: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """Crop ``(B, C, *spatial')`` back to ``spatial`` (undoes :func:`pad_to_multiple`)."""
    index = (slice(None), slice(None), *(slice(0, s) for s in spatial))
    return x[index]
