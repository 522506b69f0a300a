"""A configurable tiny U-Net (after Ronneberger et al., "U-Net", MICCAI 2015) for any restoration task.

Ours, in the restoration style of the U-Net: a 3x3 head conv, then per level ``blocks`` residual blocks
(conv-ReLU-conv + identity), a 2x2 stride-2 conv down (channels x2), a middle at the coarsest level,
and on the way up a 1x1 conv + pixel-shuffle (channels /2), concatenation with the skip, a 1x1
fusion conv and ``blocks`` residual blocks; a 3x3 tail conv predicts the residual, ``out = x + ...``.

``levels`` counts resolutions including the middle one (3 levels: full, 1/2, 1/4), so inputs are padded
to a multiple of ``2 ** (levels - 1)`` and cropped back. ``decoders.0`` is the coarsest decoder.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .common import ResBlock, conv3x3, crop_to, pad_to_multiple
from .registry import register_model

_PUBLISHED = {"text": "Ronneberger et al., 'U-Net', MICCAI 2015; residual restoration variant, our design"}


def _stage(channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])


class UNet(nn.Module):
    """Residual U-Net: ``levels`` resolutions, ``width`` channels at full resolution, doubled per level."""

    def __init__(self, in_channels: int = 3, width: int = 16, levels: int = 3, blocks: int = 1) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError("levels must be >= 1")
        self.multiple = 2 ** (levels - 1)
        self.head = conv3x3(in_channels, width)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        ch = width
        for _ in range(levels - 1):
            self.encoders.append(_stage(ch, blocks))
            self.downs.append(nn.Conv2d(ch, 2 * ch, 2, stride=2))
            ch *= 2
        self.middle = _stage(ch, blocks)
        self.ups, self.fuses, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for _ in range(levels - 1):
            self.ups.append(nn.Sequential(nn.Conv2d(ch, 2 * ch, 1), nn.PixelShuffle(2)))
            ch //= 2
            self.fuses.append(nn.Conv2d(2 * ch, ch, 1))
            self.decoders.append(_stage(ch, blocks))
        self.tail = conv3x3(width, in_channels)
        n = levels - 1
        self.feature_points: list[str] = [f"encoders.{i}" for i in range(n)] + ["middle"] + \
            [f"decoders.{i}" for i in range(n)]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        f = self.head(xp)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            f = enc(f)
            skips.append(f)
            f = down(f)
        f = self.middle(f)
        for up, fuse, dec, skip in zip(self.ups, self.fuses, self.decoders, reversed(skips)):
            f = dec(fuse(torch.cat([up(f), skip], 1)))
        return crop_to(xp + self.tail(f), size)


@register_model("unet-tiny", task="any", family="student", channels=3, published=_PUBLISHED)
def unet_tiny(in_channels: int = 3, width: int = 16, levels: int = 3, blocks: int = 1) -> UNet:
    """Tiny residual U-Net: 16 channels, 3 levels, 1 residual block per level (~0.14M params)."""
    return UNet(in_channels, width, levels, blocks)
