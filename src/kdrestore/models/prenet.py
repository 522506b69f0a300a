"""PReNet family (Ren et al., "Progressive Image Deraining Networks: A Better and Simpler
Baseline", CVPR 2019), in the layout of the published PyTorch checkpoints.

Published description: T=6 recurrent stages sharing weights. Each stage takes ``cat(rain, estimate)``
(6 channels) -> conv0 (3x3, 32 ch, ReLU) -> a conv-LSTM (gates ``conv_i/f/g/o`` on ``cat(x, h)``,
sigmoid/sigmoid/tanh/sigmoid) -> 5 residual blocks (each ``conv-ReLU-conv-ReLU`` with
``x = relu(block(x) + x)``) -> conv (32 -> 3). The stage output is added to the *rain image*
(``estimate = rain + out``, as in the released code), and the last estimate is the result.
PRN drops the LSTM; the ``_r`` variants apply one residual block (``res_conv1``) 5 times.
Fully convolutional at full resolution: any H, W works without padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import register_model


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class PReNet(nn.Module):
    """Progressive recurrent deraining network (PReNet / PRN, plain or recursive residual blocks)."""

    def __init__(self, stages: int = 6, lstm: bool = True, recursive: bool = False,
                 features: int = 32, blocks: int = 5) -> None:
        super().__init__()
        self.stages, self.lstm, self.recursive, self.blocks, self.features = stages, lstm, recursive, blocks, features
        self.conv0 = nn.Sequential(_conv(6, features), nn.ReLU())
        for k in range(1 if recursive else blocks):
            setattr(self, f"res_conv{k + 1}",
                    nn.Sequential(_conv(features, features), nn.ReLU(), _conv(features, features), nn.ReLU()))
        if lstm:
            self.conv_i = nn.Sequential(_conv(2 * features, features), nn.Sigmoid())
            self.conv_f = nn.Sequential(_conv(2 * features, features), nn.Sigmoid())
            self.conv_g = nn.Sequential(_conv(2 * features, features), nn.Tanh())
            self.conv_o = nn.Sequential(_conv(2 * features, features), nn.Sigmoid())
        self.conv = nn.Sequential(_conv(features, 3))
        # residual-block outputs (the hooks keep the last stage's): distillation points
        self.feature_points = ["res_conv1"] if recursive else [f"res_conv{k}" for k in (2, 4, blocks)]

    def _block(self, k: int) -> nn.Module:
        return getattr(self, "res_conv1" if self.recursive else f"res_conv{k + 1}")

    def forward(self, x: Tensor) -> Tensor:
        """Derain ``x`` (B x 3 x H x W in [0, 1]); returns the estimate after the last stage."""
        b, _, h, w = x.shape
        est = x
        hid = x.new_zeros(b, self.features, h, w)
        cell = x.new_zeros(b, self.features, h, w)
        for _ in range(self.stages):
            y = self.conv0(torch.cat((x, est), 1))
            if self.lstm:
                z = torch.cat((y, hid), 1)
                cell = self.conv_f(z) * cell + self.conv_i(z) * self.conv_g(z)
                hid = self.conv_o(z) * torch.tanh(cell)
                y = hid
            for k in range(self.blocks):
                y = F.relu(self._block(k)(y) + y)
            est = x + self.conv(y)
        return est


def _pub(psnr: float, ssim: float) -> dict[str, object]:
    return {"dataset": "Rain100H", "metric": "psnr/ssim (Y channel, BT.601)", "value": psnr, "ssim": ssim,
            "convention": "output rounded to uint8, PSNR/SSIM on the Y channel; 481x321 originals",
            "source": "Ren et al. CVPR 2019", "text": f"Rain100H Y PSNR/SSIM {psnr:.2f}/{ssim:.3f} (Ren et al. CVPR 2019)"}


@register_model("prenet6", task="derain", family="peer", channels=3,
                peer_weights="PReNet/Rain100H/PReNet6/net_latest.pth", published=_pub(29.46, 0.899))
def prenet6() -> PReNet:
    """PReNet, 6 stages, conv-LSTM, 5 residual blocks (168,963 params)."""
    return PReNet(6, lstm=True, recursive=False)


@register_model("prenet6-rain100l", task="derain", family="peer", channels=3,
                peer_weights="PReNet/Rain100L/PReNet6/net_latest.pth",
                published={"dataset": "Rain100L", "metric": "psnr/ssim (Y channel, BT.601)", "value": 37.48,
                           "ssim": 0.979, "source": "Ren et al. CVPR 2019",
                           "text": "Rain100L (test set) Y PSNR/SSIM 37.48/0.979 (Ren et al. CVPR 2019)"})
def prenet6_rain100l() -> PReNet:
    """PReNet6 with its Rain100L (light rain) weights: the light-rain teacher (168,963 params)."""
    return PReNet(6, lstm=True, recursive=False)


@register_model("prenet6-r", task="derain", family="peer", channels=3,
                peer_weights="PReNet/Rain100H/PReNet6_r/net_latest.pth", published=_pub(28.98, 0.892))
def prenet6_r() -> PReNet:
    """PReNet_r, 6 stages, conv-LSTM, one residual block applied 5 times (94,979 params)."""
    return PReNet(6, lstm=True, recursive=True)


@register_model("prn6", task="derain", family="peer", channels=3,
                peer_weights="PReNet/Rain100H/PRN6/net_latest.pth", published=_pub(28.07, 0.884))
def prn6() -> PReNet:
    """PRN, 6 stages without LSTM, 5 residual blocks (95,107 params)."""
    return PReNet(6, lstm=False, recursive=False)


@register_model("prn6-r", task="derain", family="peer", channels=3,
                peer_weights="PReNet/Rain100H/PRN6_r/net_latest.pth", published=_pub(27.43, 0.874))
def prn6_r() -> PReNet:
    """PRN_r, 6 stages without LSTM, one residual block applied 5 times (21,123 params)."""
    return PReNet(6, lstm=False, recursive=True)
