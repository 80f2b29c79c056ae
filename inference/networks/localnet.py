"""MONAI ``LocalNet`` baseline (Hu et al. 2018), wrapped to accept any spatial size.

Same output convention as :class:`inference.networks.rern.RERN`: ``(B, 3, X, Y, Z)`` displacement in
fixed-grid voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import LocalNet
from torch import nn

from inference.networks._padding import crop_to, pad_to_multiple

__all__ = ["LocalNetDDF", "localnet_create"]


class LocalNetDDF(nn.Module):
    """MONAI LocalNet with padding to a multiple of ``2 ** max(extract_levels)`` and cropping back.

    Shapes: ``(B, in_channels, X, Y, Z) -> (B, 3, X, Y, Z)``.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_channel_initial: int = 8,
        extract_levels: Sequence[int] = (0, 1, 2, 3),
    ) -> None:
        super().__init__()
        levels = tuple(int(v) for v in extract_levels)
        self.in_channels = in_channels
        self.num_channel_initial = num_channel_initial
        self.extract_levels = levels
        self.multiple = 2 ** max(levels)
        self.net = LocalNet(
            spatial_dims=3,
            in_channels=in_channels,
            num_channel_initial=num_channel_initial,
            extract_levels=levels,  # type: ignore[arg-type]  # MONAI annotates tuple[int]
            out_kernel_initializer="zeros",
            out_activation=None,
            out_channels=3,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"LocalNet expects input (B, {self.in_channels}, X, Y, Z), got {tuple(x.shape)}"
            )
        x, spatial = pad_to_multiple(x, self.multiple)
        return crop_to(self.net(x), spatial)


def localnet_create(
    *,
    in_channels: int = 2,
    num_channel_initial: int = 8,
    extract_levels: Sequence[int] = (0, 1, 2, 3),
) -> LocalNetDDF:
    """Build the LocalNet baseline with a zero-initialised output (identity before training)."""
    return LocalNetDDF(
        in_channels=in_channels,
        num_channel_initial=num_channel_initial,
        extract_levels=extract_levels,
    )
