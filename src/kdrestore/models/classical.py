"""Classical (weight-free) baselines wrapped as models, for out-of-the-box comparisons.

They run NumPy code inside ``forward`` and therefore neither train nor export; they exist so the
demo and the benchmarks have a reference that needs no download. DCP dehazing lives in ``dcp.py``.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import denoise_wavelet
from torch import Tensor, nn

from .registry import register_model


class WaveletDenoiser(nn.Module):
    """BayesShrink wavelet denoising (Chang, Yu & Vetterli 2000), soft thresholds, db1, 3 levels.

    ``set_noise_level(sigma)`` (0-255 scale) fixes sigma; ``None`` estimates it from the image.
    """

    def __init__(self, sigma: float | None = 25.0) -> None:
        super().__init__()
        self.sigma = sigma

    def set_noise_level(self, sigma: float | None) -> None:
        self.sigma = sigma

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        out = []
        for img in x.detach().cpu().double().numpy():
            chw = np.moveaxis(img, 0, -1)
            sigma = None if self.sigma is None else self.sigma / 255.0
            den = denoise_wavelet(chw, sigma=sigma, method="BayesShrink", mode="soft", rescale_sigma=True,
                                  channel_axis=-1 if chw.shape[-1] == 3 else None,
                                  convert2ycbcr=chw.shape[-1] == 3, wavelet_levels=3)
            if den.ndim == 2:
                den = den[..., None]
            out.append(np.moveaxis(den, -1, 0))
        return torch.from_numpy(np.stack(out)).to(x.dtype).to(x.device)


@register_model("wavelet-denoise", task="denoise", family="classical", channels=1,
                published={"text": "classical baseline (no weights)"})
def wavelet_denoise(sigma: float | None = 25.0) -> nn.Module:
    return WaveletDenoiser(sigma)
