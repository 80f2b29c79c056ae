"""Weak-supervision registration loss: label Dice on the warped moving label + bending energy.

Training needs only the gland labels of both images (no dense ground truth): the moving label is
warped by the predicted displacement with MONAI ``Warp`` and compared with the fixed label by MONAI
``DiceLoss``; MONAI ``BendingEnergyLoss`` regularises the field so it stays smooth and invertible.

``L = DiceLoss(warp(L_m, u), L_f) + λ · BE(u)``,
``BE(u) = mean over voxels of Σ_c ‖∂²u_c/∂x_i∂x_j‖²`` (MONAI, finite differences in voxel units).
"""

from __future__ import annotations

import torch
from monai.losses import BendingEnergyLoss, DiceLoss
from monai.networks.blocks import Warp
from torch import nn

__all__ = ["WeakSupervisionLoss", "segmentation_loss"]


class WeakSupervisionLoss(nn.Module):
    """Label-driven registration loss.

    Args:
        bending_weight: ``λ``, weight of the bending energy.

    Shapes (forward):
        ``ddf (B, 3, X, Y, Z)``, ``moving_label (B, C, X, Y, Z)`` on the fixed grid,
        ``fixed_label (B, C, X, Y, Z)``; returns a dict of scalar tensors
        ``{"loss", "dice", "bending"}`` where ``dice`` is the Dice *loss* (1 − soft DSC).
    """

    def __init__(self, bending_weight: float = 0.5) -> None:
        super().__init__()
        if bending_weight < 0:
            raise ValueError(f"bending_weight must be >= 0, got {bending_weight}")
        self.bending_weight = bending_weight
        self.warp = Warp(mode="bilinear", padding_mode="border")
        self.dice = DiceLoss(smooth_nr=1e-5, smooth_dr=1e-5)
        self.bending = BendingEnergyLoss()

    def forward(
        self, ddf: torch.Tensor, moving_label: torch.Tensor, fixed_label: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if ddf.ndim != 5 or ddf.shape[1] != 3:
            raise ValueError(f"ddf must have shape (B, 3, X, Y, Z), got {tuple(ddf.shape)}")
        if moving_label.shape != fixed_label.shape:
            raise ValueError(
                f"moving_label {tuple(moving_label.shape)} and fixed_label "
                f"{tuple(fixed_label.shape)} must have the same shape"
            )
        if moving_label.ndim != 5 or moving_label.shape[2:] != ddf.shape[2:]:
            raise ValueError(
                f"labels must be (B, C, {', '.join(map(str, ddf.shape[2:]))}), "
                f"got {tuple(moving_label.shape)}"
            )
        warped = self.warp(moving_label.float(), ddf)
        dice = self.dice(warped, fixed_label.float())
        bending = self.bending(ddf) if min(ddf.shape[2:]) >= 5 else ddf.new_zeros(())
        return {"loss": dice + self.bending_weight * bending, "dice": dice, "bending": bending}


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice + binary cross-entropy for 1-channel gland logits.

    Shapes: ``logits (B, 1, H, W)``, ``target (B, 1, H, W)`` in {0, 1}; returns a scalar.
    """
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must match"
        )
    dice = DiceLoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5)(logits, target)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target.float())
    return dice + bce
