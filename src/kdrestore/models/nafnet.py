"""NAFNet, the CNN teacher (Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022).

Published design, written from the paper: a U-Net of NAFBlocks, no nonlinear activations.
NAFBlock: ``y = x + beta * conv3(SCA(SimpleGate(dwconv3x3(conv1(LN(x))))))`` then
``out = y + gamma * conv5(SimpleGate(conv4(LN(y))))``, where SimpleGate splits the channels in two
halves and multiplies them, SCA (simplified channel attention) multiplies by a 1x1 conv of the global
average, LN is LayerNorm over channels, and ``beta``/``gamma`` are learnable per-channel scales
initialised to zero. Encoder levels end in a 2x2 stride-2 conv (channels x2), decoder levels start with
a 1x1 conv + pixel-shuffle (channels /2) and add the skip; a 3x3 conv in and out, global residual.

Ours: LayerNorm is written out with mean/var (the authors' code uses a custom autograd function) so
the model exports to ONNX; attribute names follow the authors' released layout (``intro``, ``encoders``,
``downs``, ``middle_blks``, ``ups``, ``decoders``, ``ending``, ``sca.1``, ``beta``/``gamma``), so their
state dicts are expected to load unchanged (not checked against released weights here).
Paper configs: SIDD width 32, enc [2,2,4,8], middle 12, dec [2,2,2,2]; GoPro width 32, enc [1,1,1,28],
middle 1, dec [1,1,1,1]. Our ``nafnet`` default is a lighter width 32, enc [1,1,1,8], middle 1,
dec [1,1,1,1]; pass ``enc_blocks`` etc. for the paper's. Inputs are padded to ``2 ** len(enc_blocks)``.

Growing (ours): with ``init_grow=True`` a checkpoint with fewer blocks in a level (encoder, middle or
decoder) loads into a deeper model; each missing block is appended at the end of its level with its fresh
weights, whose zero ``beta``/``gamma`` make it the identity, so the grown network starts as the same function.

Local statistics (TLC: Chu, Chen, Chen, Zhang, Sun, "Improving Image Restoration by Revisiting Global Information
Aggregation", ECCV 2022): SCA's global average is taken over the training crop while training but over the
whole image at test time, a mismatch for images much larger than the crop. With ``attention_window=N`` each
SCA averages over an ``N x N`` window around each pixel instead (``N >> level`` at each downsampled level; the
window is shifted to stay inside the image, and is the whole axis where the axis is shorter), so a model
trained on ``N``-px crops sees at test time the statistics it was trained with; on inputs no larger than the
window it computes exactly the global average. No weights change: it is an inference option of a trained model.
"""
from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import KdrestoreError
from .common import crop_to, pad_to_multiple
from .registry import register_model

_PUBLISHED = {"text": "Chen et al., 'Simple Baselines for Image Restoration' (NAFNet), ECCV 2022; "
                      "default block counts are lighter than the paper's (ours)"}


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a ``B x C x H x W`` map, written with mean and (biased) variance."""

    def __init__(self, channels: int, eps: float = 1e-6, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


def _box_mean(x: Tensor, window: int, dim: int) -> Tensor:
    """Mean over ``window`` consecutive positions of ``dim`` around each position, the window shifted to stay
    inside the axis (the whole axis when shorter): window sums from a cumulative sum, the edge positions
    repeating the first and last full window. Slices and copies here (eager inference); the traced form
    (:func:`_box_mean_traced`) computes the same with gathers so that one ONNX graph serves every size."""
    if torch.jit.is_tracing():
        return _box_mean_traced(x, window, dim)
    n = x.shape[dim]
    k = min(n, window)
    left = k // 2  # positions before the first full window's centre; the last k - 1 - left follow the last one
    csum = x.cumsum(dim)
    out = torch.empty_like(x)
    first = out.narrow(dim, left, 1)
    first.copy_(csum.narrow(dim, k - 1, 1))
    if n > k:
        out.narrow(dim, left + 1, n - k).copy_(csum.narrow(dim, k, n - k) - csum.narrow(dim, 0, n - k))
    if left:
        out.narrow(dim, 0, left).copy_(first.expand_as(out.narrow(dim, 0, left)))
    right = k - 1 - left
    if right:
        last = out.narrow(dim, n - right - 1, 1)
        out.narrow(dim, n - right, right).copy_(last.expand_as(out.narrow(dim, n - right, right)))
    return out.div_(k)


def _box_mean_traced(x: Tensor, window: int, dim: int) -> Tensor:
    """:func:`_box_mean` with tensor arithmetic on the (traced) size: two gathers, no Python branch, so one
    ONNX graph serves every input size (inputs smaller and larger than the window; same values)."""
    n = x.shape[dim]
    n = n if isinstance(n, Tensor) else torch.tensor(n)
    k = torch.clamp(n, max=window)
    start = torch.minimum((torch.arange(n, device=x.device) - k // 2).clamp(min=0), n - k)
    csum = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.cumsum(dim)], dim)
    return (csum.index_select(dim, start + k) - csum.index_select(dim, start)) / k.to(x.dtype)


class WindowMean(nn.Module):
    """Per-pixel mean over a ``window x window`` neighbourhood (TLC's local replacement of a global pool)."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = int(window)

    def forward(self, x: Tensor) -> Tensor:
        return _box_mean(_box_mean(x, self.window, -2), self.window, -1)

    def extra_repr(self) -> str:
        return f"window={self.window}"


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """Mixer (LN, 1x1, dw 3x3, SimpleGate, SCA, 1x1) and FFN (LN, 1x1, SimpleGate, 1x1), scaled residuals."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, attention_window: int | None = None) -> None:
        super().__init__()
        dw = c * dw_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.sg = SimpleGate()
        pool = nn.AdaptiveAvgPool2d(1) if attention_window is None else WindowMean(attention_window)
        self.sca = nn.Sequential(pool, nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        ffn = c * ffn_expand
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.sg(self.conv2(self.conv1(self.norm1(x))))
        y = x + self.conv3(h * self.sca(h)) * self.beta
        return y + self.conv5(self.sg(self.conv4(self.norm2(y)))) * self.gamma


_BLOCK_KEY = re.compile(r"^(?P<level>encoders\.\d+|middle_blks|decoders\.\d+)\.(?P<block>\d+)\.")


def _blocks(c: int, n: int, window: int | None) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(c, attention_window=window) for _ in range(n)])


class NAFNet(nn.Module):
    """NAFNet U-Net; ``out = x + ending(decoder features)``."""

    def __init__(self, in_channels: int = 3, width: int = 32, enc_blocks: Sequence[int] = (1, 1, 1, 8),
                 middle_blocks: int = 1, dec_blocks: Sequence[int] = (1, 1, 1, 1), init_grow: bool = False,
                 attention_window: int | None = None) -> None:
        super().__init__()
        self.init_grow = bool(init_grow)
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError("enc_blocks and dec_blocks must have the same length")
        if attention_window is not None and (isinstance(attention_window, bool) or not isinstance(attention_window, int)
                                             or attention_window < 1):
            raise KdrestoreError(f"nafnet attention_window must be a positive number of pixels or null, "
                                 f"got {attention_window!r}")

        def window(level: int) -> int | None:
            return None if attention_window is None else max(1, attention_window >> level)
        self.multiple = 2 ** len(enc_blocks)
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        ch = width
        for level, n in enumerate(enc_blocks):
            self.encoders.append(_blocks(ch, n, window(level)))
            self.downs.append(nn.Conv2d(ch, 2 * ch, 2, stride=2))
            ch *= 2
        self.middle_blks = _blocks(ch, middle_blocks, window(len(enc_blocks)))
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for i, n in enumerate(dec_blocks):
            self.ups.append(nn.Sequential(nn.Conv2d(ch, 2 * ch, 1, bias=False), nn.PixelShuffle(2)))
            ch //= 2
            self.decoders.append(_blocks(ch, n, window(len(dec_blocks) - 1 - i)))
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        k = len(enc_blocks)
        self.feature_points: list[str] = [f"encoders.{i}" for i in range(k)] + ["middle_blks"] + \
            [f"decoders.{i}" for i in range(k)]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        f = self.intro(xp)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            f = enc(f)
            skips.append(f)
            f = down(f)
        f = self.middle_blks(f)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            f = dec(up(f) + skip)
        return crop_to(xp + self.ending(f), size)

    def convert_state_dict(self, sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """``sd`` unchanged, or with ``init_grow`` a checkpoint of fewer blocks per level completed with
        identity blocks (this model's fresh weights: zero ``beta``/``gamma``) appended to each level."""
        if not self.init_grow:
            return sd
        own = self.state_dict()
        counts: dict[str, int] = {}
        for k in sd:
            m = _BLOCK_KEY.match(k)
            if m:
                counts[m["level"]] = max(counts.get(m["level"], 0), int(m["block"]) + 1)
        out = dict(sd)
        for k, v in own.items():
            m = _BLOCK_KEY.match(k)
            if k in sd or not m:
                continue
            have = counts.get(m["level"], 0)
            if have == 0:
                raise KdrestoreError(f"nafnet init_grow: the checkpoint has no blocks in {m['level']}; growing "
                                     "appends blocks to levels the checkpoint already has")
            if int(m["block"]) < have:
                continue  # a key missing inside an existing block stays missing (reported by the loader)
            out[k] = v.clone()
        return out


@register_model("nafnet", task="any", family="teacher", channels=3, published=_PUBLISHED)
def nafnet(in_channels: int = 3, width: int = 32, enc_blocks: Sequence[int] = (1, 1, 1, 8),
           middle_blocks: int = 1, dec_blocks: Sequence[int] = (1, 1, 1, 1), init_grow: bool = False,
           attention_window: int | None = None) -> NAFNet:
    """NAFNet teacher, width 32, enc [1,1,1,8], middle 1, dec [1,1,1,1]."""
    return NAFNet(in_channels, width, enc_blocks, middle_blocks, dec_blocks, init_grow, attention_window)


@register_model("nafnet-tiny", task="any", family="teacher", channels=3, published=_PUBLISHED)
def nafnet_tiny(in_channels: int = 3, width: int = 16, enc_blocks: Sequence[int] = (1, 1, 1),
                middle_blocks: int = 1, dec_blocks: Sequence[int] = (1, 1, 1), init_grow: bool = False,
                attention_window: int | None = None) -> NAFNet:
    """CPU-sized NAFNet teacher, width 16, enc [1,1,1], middle 1, dec [1,1,1]."""
    return NAFNet(in_channels, width, enc_blocks, middle_blocks, dec_blocks, init_grow, attention_window)
