"""Classical (weight-free) baselines wrapped as models, for out-of-the-box comparisons.

They run NumPy code inside ``forward`` and therefore neither train nor export; they exist so the
demo and the benchmarks have a reference that needs no download. DCP dehazing lives in ``dcp.py``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .registry import register_model


class NLMeansDenoiser(nn.Module):
    """Non-local means (Buades, Coll & Morel 2005), scikit-image's fast variant.

    Patches 5x5, search distance 6, filtering strength h = 0.8 sigma (scikit-image's recommendation
    when sigma is given). ``set_noise_level(sigma)`` (0-255 scale) fixes sigma; ``None`` estimates it.
    """

    def __init__(self, sigma: float | None = 25.0) -> None:
        super().__init__()
        self.sigma = sigma

    def set_noise_level(self, sigma: float | None) -> None:
        self.sigma = sigma

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        from skimage.restoration import denoise_nl_means, estimate_sigma  # here: it imports scipy.stats (seconds)

        out = []
        for img in x.detach().cpu().double().numpy():
            hwc = np.moveaxis(img, 0, -1)
            axis = -1 if hwc.shape[-1] == 3 else None
            image = hwc if axis is not None else hwc[..., 0]
            sigma = self.sigma / 255.0 if self.sigma is not None else float(np.mean(estimate_sigma(image, channel_axis=axis)))
            den = denoise_nl_means(image, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                   fast_mode=True, channel_axis=axis)
            out.append(np.moveaxis(den if den.ndim == 3 else den[..., None], -1, 0))
        return torch.from_numpy(np.stack(out)).to(x.dtype).to(x.device)


@register_model("nlm-denoise", task="denoise", family="classical", channels=1,
                published={"text": "classical baseline, non-local means (no weights)"})
def nlm_denoise(sigma: float | None = 25.0) -> nn.Module:
    return NLMeansDenoiser(sigma)
