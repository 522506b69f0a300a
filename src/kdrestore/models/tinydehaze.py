"""A tiny AOD-Net-style dehazer (after Li et al., "AOD-Net: All-in-One Dehazing Network", ICCV 2017).

AOD-Net folds the transmission map and the atmospheric light of the scattering model
``I = J t + A (1 - t)`` into one map ``K(x)`` and restores ``J = relu(K * I - K + b)`` with ``b = 1``.
``K`` is estimated by five ReLU'd convs whose inputs are concatenations of earlier outputs:
conv1 (1x1) on the image, conv2 (3x3) on conv1, conv3 (5x5) on [conv1, conv2], conv4 (7x7) on [conv2, conv3],
conv5 (3x3) on [conv1, conv2, conv3, conv4], which gives K.

Ours: the same concatenation pattern with ``width`` channels per conv instead of AOD-Net's 3
(the last conv still outputs ``in_channels``), so the model is a bit bigger than AOD-Net's 1.8k
parameters: width 16 -> ~42k, width 8 -> ~11k. Not a residual model: the output is the formula above.
Fully convolutional at stride 1: any H and W without padding.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register_model

_PUBLISHED = {"text": "Li et al., 'AOD-Net: All-in-One Dehazing Network', ICCV 2017; widened K-estimation "
                      "convs (width channels instead of 3) are ours"}


def _conv_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU())


class TinyDehaze(nn.Module):
    """K-estimation by five multi-scale convs, then ``J = relu(K * I - K + b)``."""

    def __init__(self, in_channels: int = 3, width: int = 16, b: float = 1.0) -> None:
        super().__init__()
        w = width
        self.conv1 = _conv_relu(in_channels, w, 1)
        self.conv2 = _conv_relu(w, w, 3)
        self.conv3 = _conv_relu(2 * w, w, 5)
        self.conv4 = _conv_relu(2 * w, w, 7)
        self.conv5 = _conv_relu(4 * w, in_channels, 3)
        self.b = b
        self.feature_points: list[str] = ["conv2", "conv3", "conv4", "conv5"]

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(x1)
        x3 = self.conv3(torch.cat([x1, x2], 1))
        x4 = self.conv4(torch.cat([x2, x3], 1))
        k = self.conv5(torch.cat([x1, x2, x3, x4], 1))
        return torch.relu(k * x - k + self.b)


@register_model("tinydehaze", task="dehaze", family="student", channels=3, published=_PUBLISHED)
def tinydehaze(in_channels: int = 3, width: int = 16) -> TinyDehaze:
    """AOD-Net-style dehazer, 16 channels per conv (~42k params)."""
    return TinyDehaze(in_channels, width)


@register_model("tinydehaze-s", task="dehaze", family="student", channels=3, published=_PUBLISHED)
def tinydehaze_s(in_channels: int = 3, width: int = 8) -> TinyDehaze:
    """Smaller AOD-Net-style dehazer, 8 channels per conv (~11k params)."""
    return TinyDehaze(in_channels, width)
