"""AOD-Net (Li et al., "AOD-Net: All-in-One Dehazing Network", ICCV 2017).

Published description: the atmospheric scattering model is rewritten as
``J = K(x) * I - K(x) + b`` with b = 1, where ``K`` is estimated by a 5-conv K-estimation module
(3 channels each; kernels 1, 3, 5, 7, 3) with multi-scale concatenation: conv3 sees cat(conv1, conv2),
conv4 sees cat(conv2, conv3), conv5 sees cat(conv1, conv2, conv3, conv4); every conv has bias and ReLU.
The clean image is ``relu(K*I - K + b)``; input RGB in [0, 1]. Key names follow the released PyTorch
weights (``e_conv1..5``). Fully convolutional: any H, W works without padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import register_model


class AODNet(nn.Module):
    """AOD-Net: K-estimation module plus the clean-image generation ``relu(K*I - K + 1)``."""

    def __init__(self, b: float = 1.0) -> None:
        super().__init__()
        self.b = b
        self.e_conv1 = nn.Conv2d(3, 3, 1, 1, 0)
        self.e_conv2 = nn.Conv2d(3, 3, 3, 1, 1)
        self.e_conv3 = nn.Conv2d(6, 3, 5, 1, 2)
        self.e_conv4 = nn.Conv2d(6, 3, 7, 1, 3)
        self.e_conv5 = nn.Conv2d(12, 3, 3, 1, 1)
        self.feature_points = ["e_conv3", "e_conv4", "e_conv5"]

    def estimate_k(self, x: Tensor) -> Tensor:
        """The K(x) map of the reformulated scattering model."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(torch.cat((x1, x2), 1)))
        x4 = F.relu(self.e_conv4(torch.cat((x2, x3), 1)))
        return F.relu(self.e_conv5(torch.cat((x1, x2, x3, x4), 1)))

    def forward(self, x: Tensor) -> Tensor:
        k = self.estimate_k(x)
        return F.relu(k * x - k + self.b)


@register_model("aodnet", task="dehaze", family="peer", channels=3, peer_weights="AOD-Net/dehazer.pth",
                published={"dataset": "SOTS-indoor", "metric": "psnr/ssim (RGB)", "value": 19.06, "ssim": 0.850,
                           "convention": "full 500-image SOTS indoor set, RGB; number of the original Caffe "
                                         "model as reported by the RESIDE benchmark (Li et al. TIP 2019)",
                           "source": "Li et al. ICCV 2017 / RESIDE benchmark",
                           "text": "SOTS-indoor RGB PSNR/SSIM 19.06/0.850 (RESIDE benchmark, Caffe model)"})
def aodnet() -> AODNet:
    """AOD-Net (1,761 params)."""
    return AODNet()
