"""MDRN-style lightweight denoiser (Li et al., "Multiple Degradation and Reconstruction Network for
Single Image Denoising via Knowledge Distillation", CVPR Workshops 2022 — the HMDS paper).

What the paper states: a lightweight network that removes noise *progressively* by a stack of
"multiple degradation and reconstruction" blocks, built to be the student of heterogeneous
distillation (HMDS); a shallow feature extractor, the block stack, and a reconstruction part.

Our reading (the block internals are ours, written from that description, not from released code):

* **Degradation** inside a block is a fixed, classical image-degradation operator on the features:
  2x2 average pooling (blur + decimation), applied twice in sequence (1/2 then 1/4 resolution), each
  followed by a 3x3 conv + ReLU. Re-degrading the features makes the block look at coarser, less
  noisy versions of them (noise energy falls with pooling), which is how we read "multiple
  degradation". We use no random noise-injection branch: it would make inference non-deterministic.
* **Reconstruction** goes coarse to fine: bilinear x2 upsampling, concatenation with the features of
  the same scale, 1x1 fusion conv (+ 3x3 conv at 1/2 scale), and a residual connection around the
  whole block.
* **Progressive refinement**: the blocks are chained; the outputs of all blocks are concatenated and
  fused by a 1x1 + 3x3 conv (hierarchical feature fusion), added to the shallow features, and a
  reconstruction conv predicts the noise residual: ``out = x + tail(...)`` (global residual).

Sizes: 48 channels x 4 blocks ~ 0.40M parameters; 16 channels x 4 blocks ~ 45k. Inputs of any size are
padded to a multiple of 4 and cropped back. ``unshuffle=2`` (``mdrn-fast``, ``mdrn-rgb-fast``; ours, after
FFDNet) runs the whole network on 2x2 pixel-unshuffled input, a quarter of the pixels: about 4x fewer MACs
at the same width, and twice the receptive field.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import conv3x3, crop_to, pad_to_multiple
from .registry import register_model

_PUBLISHED = {"text": "Li et al., 'Multiple Degradation and Reconstruction Network for Single Image Denoising "
                      "via Knowledge Distillation', CVPRW 2022; block internals are our reading of the paper"}


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class MDRBlock(nn.Module):
    """One degradation-and-reconstruction block: full -> 1/2 -> 1/4 -> 1/2 -> full, plus a residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.local = nn.Sequential(conv3x3(c, c), nn.ReLU())
        self.degrade1 = nn.Sequential(nn.AvgPool2d(2), conv3x3(c, c), nn.ReLU())
        self.degrade2 = nn.Sequential(nn.AvgPool2d(2), conv3x3(c, c), nn.ReLU())
        self.reconstruct2 = nn.Sequential(nn.Conv2d(2 * c, c, 1), conv3x3(c, c), nn.ReLU())
        self.reconstruct1 = nn.Conv2d(2 * c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        full = self.local(x)
        half = self.degrade1(full)
        quarter = self.degrade2(half)
        half = self.reconstruct2(torch.cat([_up2(quarter), half], 1))
        return x + self.reconstruct1(torch.cat([_up2(half), full], 1))


class MDRN(nn.Module):
    """Shallow conv -> MDR blocks -> hierarchical fusion -> reconstruction conv, ``out = x + residual``."""

    def __init__(self, in_channels: int = 1, channels: int = 48, blocks: int = 4, unshuffle: int = 1) -> None:
        super().__init__()
        self.multiple = 4 * unshuffle
        folded = in_channels * unshuffle * unshuffle
        self.fold = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.unfold = nn.PixelShuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.head = conv3x3(folded, channels)
        self.body = nn.Sequential(*[MDRBlock(channels) for _ in range(blocks)])
        self.fusion = nn.Sequential(nn.Conv2d(blocks * channels, channels, 1), conv3x3(channels, channels))
        self.tail = conv3x3(channels, folded)
        self.feature_points: list[str] = [f"body.{i}" for i in range(blocks)] + ["fusion"]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        shallow = self.head(self.fold(xp))
        feats, f = [], shallow
        for block in self.body:
            f = block(f)
            feats.append(f)
        out = xp + self.unfold(self.tail(self.fusion(torch.cat(feats, 1)) + shallow))
        return crop_to(out, size)


@register_model("mdrn", task="denoise", family="student", channels=1, published=_PUBLISHED)
def mdrn(in_channels: int = 1, channels: int = 48, blocks: int = 4) -> MDRN:
    """MDRN-style gray denoiser, 48 channels, 4 blocks (~0.40M params)."""
    return MDRN(in_channels, channels, blocks)


@register_model("mdrn-rgb", task="denoise", family="student", channels=3, published=_PUBLISHED)
def mdrn_rgb(in_channels: int = 3, channels: int = 48, blocks: int = 4) -> MDRN:
    """MDRN-style color denoiser, 48 channels, 4 blocks (~0.40M params)."""
    return MDRN(in_channels, channels, blocks)


@register_model("mdrn-tiny", task="denoise", family="student", channels=1, published=_PUBLISHED)
def mdrn_tiny(in_channels: int = 1, channels: int = 16, blocks: int = 4) -> MDRN:
    """Tiny MDRN-style gray denoiser, 16 channels, 4 blocks (< 60k params)."""
    return MDRN(in_channels, channels, blocks)


@register_model("mdrn-fast", task="denoise", family="student", channels=1, published=_PUBLISHED)
def mdrn_fast(in_channels: int = 1, channels: int = 48, blocks: int = 4) -> MDRN:
    """MDRN on 2x2 pixel-unshuffled input (a quarter of the pixels): ~0.41M params, ~4x fewer MACs."""
    return MDRN(in_channels, channels, blocks, unshuffle=2)


@register_model("mdrn-rgb-fast", task="denoise", family="student", channels=3, published=_PUBLISHED)
def mdrn_rgb_fast(in_channels: int = 3, channels: int = 48, blocks: int = 4) -> MDRN:
    """Colour MDRN on 2x2 pixel-unshuffled input."""
    return MDRN(in_channels, channels, blocks, unshuffle=2)
