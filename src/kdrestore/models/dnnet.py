"""DNNet, the plain residual denoiser of TRNR (Ran et al., "TRNR: Task-Driven Image Rain and Noise
Removal with a Few Images Based on Patch Analysis", arXiv 2112.01924).

What the paper states: "a simple ResNet with about 1.2M parameters dubbed DNNet" for blind Gaussian
noise removal.

Our reading (depth and width are ours, chosen to land at ~1.2M): conv + ReLU head, 16 residual blocks
(conv-ReLU-conv + identity, no BatchNorm) at 64 channels, a body conv with a long skip from the head,
a tail conv, and global residual learning ``out = x + tail(...)`` (the network predicts minus the
noise). Fully convolutional at stride 1: any H and W without padding.
"""
from __future__ import annotations

from torch import Tensor, nn

from .common import ResBlock, conv3x3
from .registry import register_model

_PUBLISHED = {"text": "Ran et al., 'TRNR', arXiv 2112.01924: DNNet, a simple ResNet of ~1.2M params for blind "
                      "Gaussian denoising; depth/width are our reading"}


class DNNet(nn.Module):
    """Head conv+ReLU -> residual blocks -> body conv (+ head skip) -> tail conv, ``out = x + residual``."""

    def __init__(self, in_channels: int = 1, channels: int = 64, blocks: int = 16) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(in_channels, channels), nn.ReLU())
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.body_end = conv3x3(channels, channels)
        self.tail = conv3x3(channels, in_channels)
        step = max(blocks // 4, 1)
        points = [f"body.{i}" for i in range(step - 1, blocks, step)]
        self.feature_points: list[str] = points + ["body_end"]

    def forward(self, x: Tensor) -> Tensor:
        f = self.head(x)
        return x + self.tail(self.body_end(self.body(f)) + f)


@register_model("dnnet", task="denoise", family="student", channels=1, published=_PUBLISHED)
def dnnet(in_channels: int = 1, channels: int = 64, blocks: int = 16) -> DNNet:
    """DNNet-style gray denoiser, 64 channels, 16 residual blocks (~1.22M params)."""
    return DNNet(in_channels, channels, blocks)


@register_model("dnnet-tiny", task="denoise", family="student", channels=1, published=_PUBLISHED)
def dnnet_tiny(in_channels: int = 1, channels: int = 16, blocks: int = 2) -> DNNet:
    """Tiny DNNet-style gray denoiser, 16 channels, 2 residual blocks."""
    return DNNet(in_channels, channels, blocks)
