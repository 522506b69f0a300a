"""MSResNet, the light multi-scale residual deraining network of TRNR (Ran et al., "TRNR: Task-Driven
Image Rain and Noise Removal with a Few Images Based on Patch Analysis", arXiv 2112.01924).

What the paper states: a light Multi-Scale Residual Network of about 0.9M parameters for rain
removal, built from multi-scale (dilated) feature aggregation, residual blocks and squeeze-and-
excitation channel attention.

Our reading (layer counts and the exact block wiring are ours):

* **Multi-scale dilated aggregation** (``msda``): parallel 3x3 convs with dilations 1, 2, 3, 4 (each
  ReLU'd), concatenated and fused by a 1x1 conv.
* **Dual residual block**: two residual paths in series, ``y = x + msda(x)`` then
  ``out = y + se(conv(relu(conv(y))))`` — one residual around the multi-scale part, one around the
  plain conv pair, the latter recalibrated by squeeze-and-excitation (reduction 4).
* Head conv, 6 blocks, a body conv with a long skip from the head (EDSR style), a tail conv, and a
  global residual ``out = x + tail(...)``. 48 channels -> ~0.83M parameters (the paper: "about 0.9M").

Fully convolutional at stride 1: any H and W without padding.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .common import conv3x3
from .registry import register_model

_PUBLISHED = {"text": "Ran et al., 'TRNR: Task-Driven Image Rain and Noise Removal with a Few Images Based on "
                      "Patch Analysis', arXiv 2112.01924 (MSResNet, ~0.9M params); block wiring is our reading"}


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): global average -> 1x1 -> ReLU -> 1x1 -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.excite(torch.relu(self.squeeze(w))))


class MultiScaleDilated(nn.Module):
    """Parallel dilated 3x3 convs (one per dilation), concatenated and fused by a 1x1 conv."""

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(conv3x3(channels, channels, dilation=d) for d in dilations)
        self.fuse = nn.Conv2d(len(dilations) * channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(torch.cat([torch.relu(b(x)) for b in self.branches], 1))


class DualResidualBlock(nn.Module):
    """``y = x + msda(x)``; ``out = y + se(conv(relu(conv(y))))``."""

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2, 3, 4), reduction: int = 4) -> None:
        super().__init__()
        self.msda = MultiScaleDilated(channels, dilations)
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.se = SqueezeExcitation(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        y = x + self.msda(x)
        return y + self.se(self.conv2(torch.relu(self.conv1(y))))


class MSResNet(nn.Module):
    """Head conv -> dual residual blocks -> body conv (+ head skip) -> tail conv, ``out = x + residual``."""

    def __init__(self, in_channels: int = 3, channels: int = 48, blocks: int = 6,
                 dilations: Sequence[int] = (1, 2, 3, 4), reduction: int = 4) -> None:
        super().__init__()
        self.head = conv3x3(in_channels, channels)
        self.body = nn.Sequential(*[DualResidualBlock(channels, dilations, reduction) for _ in range(blocks)])
        self.body_end = conv3x3(channels, channels)
        self.tail = conv3x3(channels, in_channels)
        self.feature_points: list[str] = [f"body.{i}" for i in range(blocks)] + ["body_end"]

    def forward(self, x: Tensor) -> Tensor:
        f = self.head(x)
        return x + self.tail(self.body_end(self.body(f)) + f)


@register_model("msresnet", task="derain", family="student", channels=3, published=_PUBLISHED)
def msresnet(in_channels: int = 3, channels: int = 48, blocks: int = 6) -> MSResNet:
    """MSResNet-style deraining network, 48 channels, 6 dual residual blocks (~0.83M params)."""
    return MSResNet(in_channels, channels, blocks)


@register_model("msresnet-tiny", task="derain", family="student", channels=3, published=_PUBLISHED)
def msresnet_tiny(in_channels: int = 3, channels: int = 16, blocks: int = 2) -> MSResNet:
    """Tiny MSResNet-style deraining network, 16 channels, 2 blocks."""
    return MSResNet(in_channels, channels, blocks)
