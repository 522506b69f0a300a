"""FFDNet (Zhang, Zuo, Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image
Denoising", IEEE TIP 2018), in the layout of the published PyTorch (IPOL) checkpoints.

Published description: the image is reversibly downsampled into 2x2 sub-images (pixel-unshuffle),
a uniform noise-level map (sigma on the [0, 1] scale) is concatenated, a DnCNN-like body
(conv+ReLU, (conv+BN+ReLU) x (L-2), conv; no bias) runs at half resolution and its output is
pixel-shuffled back. In the PyTorch release the output is the noise: ``clean = x - out``.
Gray: 15 layers, 64 channels (5 -> 4 channels); RGB: 12 layers, 96 channels (15 -> 12).

Channel order (checked against the key shapes and by measurement, see the module tests): the
noise map comes *first* (C channels), then the sub-images, in ``torch.pixel_unshuffle`` order
(channel ``4c + 2i + j`` holds ``x[c, i::2, j::2]``); the output uses the matching
``torch.pixel_shuffle``. Odd sizes are padded to even (replicate, as the published test code
duplicates the last row/column) and cropped back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import crop_to, pad_to_multiple
from .registry import register_model


class _Body(nn.Module):
    def __init__(self, cin: int, cout: int, features: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, features, 3, padding=1, bias=False), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, cout, 3, padding=1, bias=False))
        self.itermediate_dncnn = nn.Sequential(*layers)  # sic: the published key name

    def forward(self, x: Tensor) -> Tensor:
        return self.itermediate_dncnn(x)


class FFDNet(nn.Module):
    """FFDNet; ``forward(x)`` uses the noise level set by :meth:`set_noise_level` (0-255 scale)."""

    def __init__(self, channels: int = 1, sigma: float = 25.0) -> None:
        super().__init__()
        features, depth = (64, 15) if channels == 1 else (96, 12)
        self.channels = channels
        self.intermediate_dncnn = _Body(5 * channels, 4 * channels, features, depth)
        self.sigma = float(sigma)

    def set_noise_level(self, sigma: float) -> None:
        """Set the noise standard deviation on the 0-255 scale used to build the noise-level map."""
        self.sigma = float(sigma)

    def forward(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        """Denoise ``x`` (B x C x H x W in [0, 1]); ``sigma`` (0-255, scalar or per-image) overrides."""
        xp, size = pad_to_multiple(x, 2, mode="replicate")
        down = F.pixel_unshuffle(xp, 2)
        s = self.sigma if sigma is None else sigma
        if isinstance(s, Tensor):
            level = (s.to(down.dtype) / 255.0).reshape(-1, 1, 1, 1)
            noise_map = level.expand(down.shape[0], self.channels, down.shape[2], down.shape[3])
        else:
            noise_map = torch.full_like(down[:, : self.channels], float(s) / 255.0)
        noise = F.pixel_shuffle(self.intermediate_dncnn(torch.cat((noise_map, down), 1)), 2)
        return crop_to(xp - noise, size)

    @staticmethod
    def convert_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """Strip the ``module.`` prefix of DataParallel checkpoints."""
        return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


_CONV = "AWGN (float, unclipped), sigma map set to the true sigma, PSNR on clipped [0,1] output"


@register_model("ffdnet-gray", task="denoise", family="peer", channels=1,
                peer_weights="FFDNet/net_gray.pth",
                published={"dataset": "Set12", "sigma": 25, "metric": "psnr", "value": 30.43,
                           "by_sigma": {15: 32.75, 25: 30.43, 50: 27.32}, "convention": _CONV,
                           "source": "Zhang et al. TIP 2018", "text": "Set12 sigma=25 PSNR 30.43 (Zhang et al. TIP 2018)"})
def ffdnet_gray(sigma: float = 25.0) -> FFDNet:
    """FFDNet for gray images (15 layers, 64 ch, 486,080 params)."""
    return FFDNet(1, sigma)


@register_model("ffdnet-rgb", task="denoise", family="peer", channels=3,
                peer_weights="FFDNet/net_rgb.pth",
                published={"dataset": "CBSD68", "sigma": 25, "metric": "psnr", "value": 31.21,
                           "by_sigma": {15: 33.87, 25: 31.21, 50: 27.96}, "convention": _CONV,
                           "source": "Zhang et al. TIP 2018", "text": "CBSD68 sigma=25 PSNR 31.21 (Zhang et al. TIP 2018)"})
def ffdnet_rgb(sigma: float = 25.0) -> FFDNet:
    """FFDNet for color images (12 layers, 96 ch, 854,688 params)."""
    return FFDNet(3, sigma)
