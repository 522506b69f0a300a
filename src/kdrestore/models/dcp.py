"""Dark channel prior dehazing (He, Sun, Tang, "Single Image Haze Removal Using Dark Channel Prior",
CVPR 2009 / TPAMI 2011) with guided-filter refinement of the transmission (He et al., "Guided Image
Filtering", ECCV 2010 / TPAMI 2013). A classical method: no learned weights.

Steps (published description): dark channel = per-pixel min over colour channels, then a min filter
over a 15x15 patch; atmospheric light A from the brightest 0.1% pixels of the dark channel (the paper
takes, among them, the pixel of highest intensity in the input; ``airlight="mean"`` averages them
instead, a common variant); transmission ``t = 1 - omega * dark(I / A)`` with omega = 0.95; refinement
with a guided filter (guide = gray image, radius 60, eps 1e-3; the paper's soft matting is replaced by
the guided filter as its authors later suggested); ``J = (I - A) / max(t, t0) + A`` with t0 = 0.1.
Box filters use cumulative sums (exportable to ONNX). Works on any H, W; output is unclipped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import register_model


def min_filter(x: Tensor, patch: int) -> Tensor:
    """Min over a ``patch x patch`` window (borders use the part of the window inside the image)."""
    return -F.max_pool2d(-x, patch, 1, patch // 2)


def box_sum(x: Tensor, r: int) -> Tensor:
    """Sum over a ``(2r+1) x (2r+1)`` window with zero padding, via cumulative sums."""
    k = 2 * r + 1
    c = F.pad(x, (0, 0, r + 1, r)).cumsum(-2)
    x = c[..., k:, :] - c[..., :-k, :]
    c = F.pad(x, (r + 1, r)).cumsum(-1)
    return c[..., k:] - c[..., :-k]


def box_mean(x: Tensor, r: int) -> Tensor:
    """Mean over a ``(2r+1)^2`` window, normalised by the number of pixels inside the image."""
    n = box_sum(torch.ones_like(x[:1, :1]), r)
    return box_sum(x, r) / n


def guided_filter(guide: Tensor, src: Tensor, r: int, eps: float) -> Tensor:
    """Gray-guide guided filter (He et al. 2010): ``q = mean(a) * I + mean(b)``."""
    mean_i, mean_p = box_mean(guide, r), box_mean(src, r)
    cov_ip = box_mean(guide * src, r) - mean_i * mean_p
    var_i = box_mean(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r) * guide + box_mean(b, r)


class DarkChannelPrior(nn.Module):
    """DCP dehazing as a module: ``forward`` maps a hazy [0,1] RGB batch to the dehazed image."""

    def __init__(self, patch: int = 15, omega: float = 0.95, top: float = 0.001, radius: int = 60,
                 eps: float = 1e-3, t0: float = 0.1, airlight: str = "max") -> None:
        super().__init__()
        if airlight not in ("max", "mean"):
            raise ValueError("airlight must be 'max' or 'mean'")
        self.patch, self.omega, self.top, self.radius = patch, omega, top, radius
        self.eps, self.t0, self.airlight = eps, t0, airlight
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)

    def dark_channel(self, x: Tensor) -> Tensor:
        return min_filter(x.amin(1, keepdim=True), self.patch)

    def atmospheric_light(self, x: Tensor, dark: Tensor) -> Tensor:
        """A (B x 3 x 1 x 1) from the brightest ``top`` fraction of the dark channel."""
        b, c, h, w = x.shape
        k = max(1, int(h * w * self.top))
        idx = dark.reshape(b, h * w).topk(k, dim=1).indices
        cand = x.reshape(b, c, h * w).gather(2, idx.unsqueeze(1).expand(b, c, k))
        if self.airlight == "mean":
            return cand.mean(2).view(b, c, 1, 1)
        best = cand.sum(1).argmax(1)
        return cand.gather(2, best.view(b, 1, 1).expand(b, c, 1)).view(b, c, 1, 1)

    def transmission(self, x: Tensor, a: Tensor) -> Tensor:
        """Refined transmission map (B x 1 x H x W), before the t0 clamp."""
        t = 1.0 - self.omega * self.dark_channel(x / a.clamp_min(1e-6))
        gray = (x * self.luma.to(x.dtype)).sum(1, keepdim=True)
        return guided_filter(gray, t, self.radius, self.eps)

    def forward(self, x: Tensor) -> Tensor:
        a = self.atmospheric_light(x, self.dark_channel(x))
        t = self.transmission(x, a).clamp_min(self.t0)
        return (x - a) / t + a


@register_model("dcp", task="dehaze", family="classical", channels=3,
                published={"dataset": "SOTS-indoor", "metric": "psnr/ssim (RGB)", "value": 16.62, "ssim": 0.818,
                           "convention": "full 500-image SOTS indoor set, RGB (RESIDE benchmark, Li et al. TIP 2019)",
                           "source": "He et al. CVPR 2009 / TPAMI 2011",
                           "text": "SOTS-indoor RGB PSNR/SSIM 16.62/0.818 (RESIDE benchmark)"})
def dcp(airlight: str = "max") -> DarkChannelPrior:
    """Dark channel prior dehazing with guided-filter refinement (no parameters)."""
    return DarkChannelPrior(airlight=airlight)
