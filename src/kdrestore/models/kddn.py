"""KDDN-style dehazing student and auto-encoder teacher (after Hong, Xie, Li and Qu, "Distilling Image
Dehazing with Heterogeneous Task Imitation", CVPR 2020).

What the paper states: the teacher is an auto-encoder trained to reconstruct haze-free images; the
student is an encoder-decoder dehazing network built from residual blocks with "spatial-weighted
channel attention" that imitates the teacher's intermediate features.

Our reading (the layer list is ours, written from that description, not from released code):

* encoder: 3x3 conv + ReLU (``head``), two 3x3 stride-2 convs + ReLU (``down1``: 2w channels at 1/2,
  ``down2``: 4w at 1/4);
* ``body``: ``blocks`` attention residual blocks at 1/4 resolution, each ``x + PA(CA(conv-ReLU-conv(x)))``
  where CA is channel attention (global average pool, 1x1 squeeze/excite, sigmoid: one weight per
  channel) and PA pixel attention (1x1 convs to a one-channel sigmoid map: one weight per position),
  our reading of "spatial-weighted channel attention";
* decoder: 1x1 conv + pixel-shuffle x2 + ReLU (``up1``, ``up2``), a 3x3 ``tail`` conv.

The student adds additive skips (``down1`` -> ``up1``, ``head`` -> ``up2``) and a global residual
``out = x + tail(...)``. The teacher (``autoencoder=True``) has neither, so the whole image has to pass
through the 1/4-resolution code (a pure auto-encoder, as the paper's teacher). Both declare the same
``feature_points`` names (``down1``, ``down2``, ``body``, ``up1``), so they pair one to one. Inputs of
any size are padded to a multiple of 4 and cropped back.
"""
from __future__ import annotations

from torch import Tensor, nn

from .common import conv3x3, crop_to, pad_to_multiple
from .registry import register_model

_PUBLISHED = {"text": "Hong et al., 'Distilling Image Dehazing with Heterogeneous Task Imitation', CVPR 2020; "
                      "layer list is our reading of the paper"}


class AttentionResBlock(nn.Module):
    """``x + PA(CA(conv-ReLU-conv(x)))``: channel attention, then a per-pixel (spatial) weight."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        c, r = channels, max(channels // reduction, 1)
        self.body = nn.Sequential(conv3x3(c, c), nn.ReLU(), conv3x3(c, c))
        self.channel = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, r, 1), nn.ReLU(),
                                     nn.Conv2d(r, c, 1), nn.Sigmoid())
        self.pixel = nn.Sequential(nn.Conv2d(c, r, 1), nn.ReLU(), nn.Conv2d(r, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        f = self.body(x)
        f = f * self.channel(f)
        return x + f * self.pixel(f)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, 4 * cout, 1), nn.PixelShuffle(2), nn.ReLU())


class KDDNNet(nn.Module):
    """Encoder (1/4) -> attention residual blocks -> decoder; skips + global residual unless auto-encoder."""

    multiple = 4

    def __init__(self, in_channels: int = 3, width: int = 16, blocks: int = 4, autoencoder: bool = False) -> None:
        super().__init__()
        w = width
        self.autoencoder = autoencoder
        self.head = nn.Sequential(conv3x3(in_channels, w), nn.ReLU())
        self.down1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU())
        self.body = nn.Sequential(*[AttentionResBlock(4 * w) for _ in range(blocks)])
        self.up1 = _up(4 * w, 2 * w)
        self.up2 = _up(2 * w, w)
        self.tail = conv3x3(w, in_channels)
        self.feature_points: list[str] = ["down1", "down2", "body", "up1"]

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        h = self.head(xp)
        d1 = self.down1(h)
        u1 = self.up1(self.body(self.down2(d1)))
        if not self.autoencoder:
            u1 = u1 + d1
        u2 = self.up2(u1)
        if not self.autoencoder:
            u2 = u2 + h
        out = self.tail(u2)
        return crop_to(out if self.autoencoder else xp + out, size)


@register_model("kddn-student", task="dehaze", family="student", channels=3, published=_PUBLISHED)
def kddn_student(in_channels: int = 3, width: int = 16, blocks: int = 4) -> KDDNNet:
    """KDDN-style dehazing student: width 16 (64 channels at 1/4), 4 attention blocks."""
    return KDDNNet(in_channels, width, blocks)


@register_model("kddn-student-tiny", task="dehaze", family="student", channels=3, published=_PUBLISHED)
def kddn_student_tiny(in_channels: int = 3, width: int = 8, blocks: int = 2) -> KDDNNet:
    """Tiny KDDN-style dehazing student: width 8 (32 channels at 1/4), 2 attention blocks."""
    return KDDNNet(in_channels, width, blocks)


@register_model("kddn-teacher", task="any", family="teacher", channels=3, published=_PUBLISHED)
def kddn_teacher(in_channels: int = 3, width: int = 16, blocks: int = 4) -> KDDNNet:
    """KDDN-style auto-encoder teacher (no skips, no global residual), trained clean -> clean."""
    return KDDNNet(in_channels, width, blocks, autoencoder=True)
