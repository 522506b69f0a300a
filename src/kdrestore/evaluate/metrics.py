"""PSNR and SSIM with explicit, named conventions.

Restoration papers differ silently in how they score: RGB or the Y channel (ITU-R BT.601), a border
crop, clipping and 8-bit quantisation of the output. Every score here is computed under a
:class:`Convention` and reported with its :meth:`Convention.describe` string.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
statistics without sample-covariance correction, the map averaged over the "valid" region (windows
fully inside the image) and, for color, over channels. This equals
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Space = Literal["rgb", "y"]

# ITU-R BT.601 studio-range luma for RGB in [0, 1], expressed on [0, 1] (MATLAB's rgb2ycbcr / 255).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


@dataclass(frozen=True)
class Convention:
    """How a score is computed. ``quantize`` rounds the output to 8 bits first (as saved images are)."""

    space: Space = "rgb"
    crop_border: int = 0
    clip: bool = True
    quantize: bool = False

    def describe(self) -> str:
        space = "Y (BT.601)" if self.space == "y" else "RGB"
        extra = [f"border crop {self.crop_border}px" if self.crop_border else "no border crop",
                 "output clipped to [0,1]" if self.clip else "output unclipped"]
        if self.quantize:
            extra.append("output rounded to 8 bit")
        return f"PSNR/SSIM on {space}, data range 1, " + ", ".join(extra) + ", SSIM 11x11 Gaussian sigma 1.5"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "text": self.describe()}


# The conventions the published numbers of each task use (see the shared data README).
TASK_CONVENTIONS: dict[str, Convention] = {
    "denoise": Convention(space="rgb", clip=True),
    "derain": Convention(space="y", clip=True, quantize=True),
    "dehaze": Convention(space="rgb", clip=True, quantize=True),
}


def _as_nchw(x: Tensor | np.ndarray) -> Tensor:
    """Accept HxW, HxWxC (numpy layout) or CxHxW / NxCxHxW tensors; return float64 NxCxHxW."""
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
        if t.ndim == 2:
            t = t[None]
        elif t.ndim == 3:
            t = t.permute(2, 0, 1)
        else:
            raise ValueError(f"expected an HxW or HxWxC array, got shape {x.shape}")
    else:
        t = x.detach()
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(f"expected an image tensor with 3 or 4 dims, got shape {tuple(t.shape)}")
    return t.to(device="cpu", dtype=torch.float64)


def rgb_to_y(x: Tensor) -> Tensor:
    """BT.601 luma on [0, 1] of an N x 3 x H x W RGB batch in [0, 1]."""
    if x.shape[1] != 3:
        raise ValueError(f"Y-channel metrics need RGB input, got {x.shape[1]} channels")
    w = x.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return ((x * w).sum(1, keepdim=True) + _Y_OFFSET) / 255.0


def prepare(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, conv: Convention) -> tuple[Tensor, Tensor]:
    """Apply a convention to a prediction/target pair; returns float64 N x C x H x W tensors."""
    p, t = _as_nchw(pred), _as_nchw(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ in shape")
    if conv.clip or conv.quantize:
        p = p.clamp(0.0, 1.0)
    if conv.quantize:
        p = torch.round(p * 255.0) / 255.0
    if conv.space == "y" and p.shape[1] == 3:
        p, t = rgb_to_y(p), rgb_to_y(t)
    b = conv.crop_border
    if b:
        p, t = p[..., b:-b, b:-b], t[..., b:-b, b:-b]
    return p, t


def psnr_tensor(p: Tensor, t: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image PSNR (dB) of prepared N x C x H x W tensors; differentiable."""
    mse = ((p - t) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))


def _gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_tensor(p: Tensor, t: Tensor, data_range: float = 1.0, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM of prepared N x C x H x W tensors (channel mean); differentiable."""
    c = p.shape[1]
    g = _gaussian_window(size, sigma, p.dtype).to(p.device)
    gh = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)
    gv = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, gh, groups=c), gv, groups=c)

    if min(p.shape[-2:]) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size}, got {tuple(p.shape[-2:])}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_p, mu_t = blur(p), blur(t)
    var_p = blur(p * p) - mu_p**2
    var_t = blur(t * t) - mu_t**2
    cov = blur(p * t) - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(1)


def psnr(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, conv: Convention = Convention()) -> float:
    """PSNR in dB of one image under a convention (inf for identical images)."""
    p, t = prepare(pred, target, conv)
    mse = float(((p - t) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, conv: Convention = Convention()) -> float:
    """SSIM of one image under a convention."""
    p, t = prepare(pred, target, conv)
    return float(ssim_tensor(p, t).mean())


def psnr_ssim(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, conv: Convention = Convention()) -> tuple[float, float]:
    """Both scores in one pass over the convention."""
    p, t = prepare(pred, target, conv)
    mse = float(((p - t) ** 2).mean())
    return (math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)), float(ssim_tensor(p, t).mean())
