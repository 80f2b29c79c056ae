"""RERN: residual-enhanced registration network (3-D U-Net predicting a dense displacement field).

Encoder levels are Conv-BN-ReLU double convolutions with a residual connection, each followed by max
pooling; the decoder upsamples with 3-D transposed convolutions whose output is added element-wise to
the matching encoder feature; a final residual block refines the full-resolution features before a
3-channel output convolution.

Output convention: the displacement field ``u`` has shape ``(B, 3, X, Y, Z)`` in **voxels of the fixed
(input) grid**, channel ``c`` displacing index axis ``c``: ``warped(p) = moving(p + u(p))`` — the
convention of MONAI ``Warp``. The output convolution is zero-initialised, so an untrained RERN is the
identity transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inference.networks._padding import crop_to, pad_to_multiple

__all__ = ["RERN", "ResidualBlock3D"]


class ResidualBlock3D(nn.Module):
    """``ReLU(BN(conv(ReLU(BN(conv(x))))) + proj(x))``; ``proj`` is a 1x1x1 conv when channels change.

    Shapes: ``(B, cin, X, Y, Z) -> (B, cout, X, Y, Z)``.
    """

    def __init__(self, cin: int, cout: int, norm: str = "batch") -> None:
        super().__init__()
        norm_cls: type[nn.Module]
        if norm == "batch":
            norm_cls = nn.BatchNorm3d
        elif norm == "instance":
            norm_cls = nn.InstanceNorm3d
        else:
            raise ValueError(f"norm must be 'batch' or 'instance', got {norm!r}")
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = norm_cls(cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = norm_cls(cout)
        self.proj: nn.Module = nn.Identity() if cin == cout else nn.Conv3d(cin, cout, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.act(y + self.proj(x))


class RERN(nn.Module):
    """Residual-enhanced registration network.

    Args:
        in_channels: 2 (moving MR resampled on the fixed grid, fixed TRUS).
        channels: feature channels per level; the last is the bottleneck.
        norm: ``"batch"`` (the paper) or ``"instance"``.

    Shapes:
        input ``(B, in_channels, X, Y, Z)`` -> displacement ``(B, 3, X, Y, Z)`` in fixed-grid voxels.
        Any spatial size >= 1 works; it is replicate-padded to a multiple of ``2 ** (len(channels) − 1)``.
    """

    def __init__(
        self,
        in_channels: int = 2,
        channels: Sequence[int] = (8, 16, 32, 64),
        norm: str = "batch",
    ) -> None:
        super().__init__()
        chans = [int(c) for c in channels]
        if len(chans) < 2 or min(chans) < 1:
            raise ValueError(f"channels needs at least 2 positive entries, got {tuple(channels)}")
        self.in_channels = in_channels
        self.channels = tuple(chans)
        self.norm = norm
        self.depth = len(chans) - 1
        self.encoders = nn.ModuleList()
        cin = in_channels
        for c in chans[:-1]:
            self.encoders.append(ResidualBlock3D(cin, c, norm))
            cin = c
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = ResidualBlock3D(chans[-2], chans[-1], norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for deep, shallow in zip(reversed(chans[1:]), reversed(chans[:-1])):
            self.ups.append(nn.ConvTranspose3d(deep, shallow, 2, stride=2))
            self.decoders.append(ResidualBlock3D(shallow, shallow, norm))
        self.refine = ResidualBlock3D(chans[0], chans[0], norm)
        self.head = nn.Conv3d(chans[0], 3, 3, padding=1)
        # Zero output: an untrained network is the identity, so the pipeline is safe before training.
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RERN expects input (B, {self.in_channels}, X, Y, Z), got {tuple(x.shape)}"
            )
        x, spatial = pad_to_multiple(x, 2**self.depth)
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = dec(up(x) + skip)
        return crop_to(self.head(self.refine(x)), spatial)
