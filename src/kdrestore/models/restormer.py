"""Restormer, the Transformer teacher (Zamir et al., "Restormer: Efficient Transformer for
High-Resolution Image Restoration", CVPR 2022).

Published design, written from the paper: a 4-level encoder-decoder of Transformer blocks
``x = x + MDTA(LN(x)); x = x + GDFN(LN(x))``.
MDTA (multi-Dconv head transposed attention): q, k, v from a 1x1 conv then a 3x3 depthwise conv; per
head, q and k are L2-normalised over the pixels and attention is the ``C/heads x C/heads`` channel
map ``softmax(q k^T * temperature)`` (learnable temperature per head), applied to v, then a 1x1 conv.
GDFN (gated-Dconv feed-forward): 1x1 conv to 2 x hidden (hidden = 2.66 x C), 3x3 depthwise conv,
``gelu(x1) * x2``, 1x1 conv. LayerNorm over channels (with bias; bias-free for the paper's
denoising models). Down: 3x3 conv to C/2 + pixel-unshuffle (2C); up: 3x3 conv to 2C + pixel-shuffle
(C/2); skips are concatenated (1x1 reduction at levels 3 and 2; level 1 keeps 2C), refinement blocks
at 2C, a 3x3 output conv and the global residual.

Ours: LayerNorm written out with mean/var on the 4D map (no 3D reshape), so every block's output is
a ``B x C x H x W`` map; ``feature_points`` are the outputs of each level (encoders, latent,
decoders) as such maps. Attribute names follow the authors' layout except for ``.body`` wrappers,
which :meth:`Restormer.convert_state_dict` strips (not checked against released weights here).
``restormer`` is the paper's config (dim 48, blocks [4,6,6,8], refinement 4, heads [1,2,4,8]);
``restormer-tiny`` (dim 16, blocks [1,1,1,1], heads [1,1,2,2], refinement 1) trains on a CPU.
Inputs are padded to a multiple of 8 and cropped back.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import crop_to, pad_to_multiple
from .registry import register_model

_PUBLISHED = {"text": "Zamir et al., 'Restormer: Efficient Transformer for High-Resolution Image Restoration', "
                      "CVPR 2022; 'restormer' uses the paper's config, '-tiny' is ours"}


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of a 4D map (eps 1e-5); ``bias_free`` keeps the mean in (paper's BiasFree)."""

    def __init__(self, channels: int, bias_free: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = None if bias_free else nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        w = self.weight.view(1, -1, 1, 1)
        if self.bias is None:
            return x / torch.sqrt(var + 1e-5) * w
        return (x - mu) / torch.sqrt(var + 1e-5) * w + self.bias.view(1, -1, 1, 1)


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: attention across channels, linear in the pixel count."""

    def __init__(self, dim: int, heads: int, bias: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network."""

    def __init__(self, dim: int, expansion: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, bias_free_norm: bool) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, bias_free_norm)
        self.attn = MDTA(dim, heads, bias)
        self.norm2 = ChannelLayerNorm(dim, bias_free_norm)
        self.ffn = GDFN(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class Restormer(nn.Module):
    """Restormer encoder-decoder; ``out = x + output(refinement(decoder_level1))``."""

    multiple = 8

    def __init__(self, in_channels: int = 3, dim: int = 48, blocks: Sequence[int] = (4, 6, 6, 8),
                 refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8), expansion: float = 2.66,
                 bias: bool = False, bias_free_norm: bool = False) -> None:
        super().__init__()

        def level(c: int, n: int, h: int) -> nn.Sequential:
            return nn.Sequential(*[TransformerBlock(c, h, expansion, bias, bias_free_norm) for _ in range(n)])

        def down(c: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

        def up(c: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1, bias=False), nn.PixelShuffle(2))

        self.patch_embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=bias)
        self.encoder_level1 = level(dim, blocks[0], heads[0])
        self.down1_2 = down(dim)
        self.encoder_level2 = level(2 * dim, blocks[1], heads[1])
        self.down2_3 = down(2 * dim)
        self.encoder_level3 = level(4 * dim, blocks[2], heads[2])
        self.down3_4 = down(4 * dim)
        self.latent = level(8 * dim, blocks[3], heads[3])
        self.up4_3 = up(8 * dim)
        self.reduce_chan_level3 = nn.Conv2d(8 * dim, 4 * dim, 1, bias=bias)
        self.decoder_level3 = level(4 * dim, blocks[2], heads[2])
        self.up3_2 = up(4 * dim)
        self.reduce_chan_level2 = nn.Conv2d(4 * dim, 2 * dim, 1, bias=bias)
        self.decoder_level2 = level(2 * dim, blocks[1], heads[1])
        self.up2_1 = up(2 * dim)
        self.decoder_level1 = level(2 * dim, blocks[0], heads[0])
        self.refinement = level(2 * dim, refinement_blocks, heads[0])
        self.output = nn.Conv2d(2 * dim, in_channels, 3, padding=1, bias=bias)
        self.feature_points: list[str] = ["encoder_level1", "encoder_level2", "encoder_level3", "latent",
                                          "decoder_level3", "decoder_level2", "decoder_level1"]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        e1 = self.encoder_level1(self.patch_embed(xp))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        f = self.latent(self.down3_4(e3))
        f = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(f), e3], 1)))
        f = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(f), e2], 1)))
        f = self.decoder_level1(torch.cat([self.up2_1(f), e1], 1))
        return crop_to(xp + self.output(self.refinement(f)), size)

    @staticmethod
    def convert_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map the authors' key layout (``patch_embed.proj``, ``norm1.body``, ``down1_2.body.0``) to ours."""
        return {k.replace("patch_embed.proj.", "patch_embed.").replace(".body.", "."): v for k, v in sd.items()}


@register_model("restormer", task="any", family="teacher", channels=3, published=_PUBLISHED)
def restormer(in_channels: int = 3, dim: int = 48, blocks: Sequence[int] = (4, 6, 6, 8),
              refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8),
              bias_free_norm: bool = False) -> Restormer:
    """Restormer teacher at the paper's config (~26M params)."""
    return Restormer(in_channels, dim, blocks, refinement_blocks, heads, bias_free_norm=bias_free_norm)


@register_model("restormer-tiny", task="any", family="teacher", channels=3, published=_PUBLISHED)
def restormer_tiny(in_channels: int = 3, dim: int = 16, blocks: Sequence[int] = (1, 1, 1, 1),
                   refinement_blocks: int = 1, heads: Sequence[int] = (1, 1, 2, 2),
                   bias_free_norm: bool = False) -> Restormer:
    """CPU-sized Restormer teacher: dim 16, blocks [1,1,1,1], heads [1,1,2,2], 1 refinement block."""
    return Restormer(in_channels, dim, blocks, refinement_blocks, heads, bias_free_norm=bias_free_norm)
