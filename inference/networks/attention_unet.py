"""2-D attention U-Net for prostate gland segmentation (one model per modality).

The paper's segmentation network: a U-Net whose encoder stages are each followed by a spatial-attention
module, whose decoder stages each start with a channel-attention module on their input, and whose
progressive decoder output is added element-wise to the matching encoder feature (additive skips
instead of concatenation). Inputs are single slices, 160x160 for MRI and 118x88 for TRUS after
preprocessing; any size works (padded internally to a multiple of ``2 ** depth``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inference.networks._padding import crop_to, pad_to_multiple

__all__ = ["AttentionUNet2D", "ChannelAttention2D", "SpatialAttention2D"]


class SpatialAttention2D(nn.Module):
    """Spatial attention: ``x · σ(conv7x7([mean_c(x), max_c(x)]))``.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class ChannelAttention2D(nn.Module):
    """Channel (squeeze-and-excitation) attention: ``x · σ(MLP(avgpool(x)) + MLP(maxpool(x)))``.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class AttentionUNet2D(nn.Module):
    """Attention U-Net for 2-D slices.

    Args:
        in_channels: input channels (1 for a grey-level slice).
        out_channels: output channels; logits (apply sigmoid for 1 channel, softmax otherwise).
        channels: feature channels per encoder level; the last is the bottleneck.

    Shapes:
        input ``(B, in_channels, H, W)`` -> logits ``(B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128),
    ) -> None:
        super().__init__()
        chans = [int(c) for c in channels]
        if len(chans) < 2 or min(chans) < 1:
            raise ValueError(f"channels needs at least 2 positive entries, got {tuple(channels)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = tuple(chans)
        self.depth = len(chans) - 1
        self.encoders = nn.ModuleList()
        self.spatial = nn.ModuleList()
        cin = in_channels
        for c in chans[:-1]:
            self.encoders.append(_double_conv(cin, c))
            self.spatial.append(SpatialAttention2D())
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(chans[-2], chans[-1])
        self.ups = nn.ModuleList()
        self.channel_att = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for deep, shallow in zip(reversed(chans[1:]), reversed(chans[:-1])):
            self.ups.append(nn.ConvTranspose2d(deep, shallow, 2, stride=2))
            self.channel_att.append(ChannelAttention2D(shallow))
            self.decoders.append(_double_conv(shallow, shallow))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"AttentionUNet2D expects input (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        x, spatial = pad_to_multiple(x, 2**self.depth)
        skips = []
        for enc, att in zip(self.encoders, self.spatial):
            x = att(enc(x))
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, catt, dec, skip in zip(self.ups, self.channel_att, self.decoders, reversed(skips)):
            x = dec(catt(up(x) + skip))
        return crop_to(self.head(x), spatial)
