"""Small building blocks shared by the architectures."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> tuple[Tensor, tuple[int, int]]:
    """Pad H and W at the bottom/right up to a multiple; return the padded tensor and the original size.

    Reflect padding needs the pad to be smaller than the side, so tiny images fall back to replicate.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop a padded tensor back to ``size`` (H, W)."""
    return x[..., : size[0], : size[1]]


class PadToMultiple(nn.Module):
    """Wrap a network so that it accepts any H and W: pad to ``multiple``, run, crop back."""

    def __init__(self, body: nn.Module, multiple: int) -> None:
        super().__init__()
        self.body = body
        self.multiple = multiple

    def forward(self, x: Tensor) -> Tensor:
        xp, size = pad_to_multiple(x, self.multiple)
        return crop_to(self.body(xp), size)


def conv3x3(cin: int, cout: int, bias: bool = True, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=bias)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def rgb_to_gray(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma of an RGB batch in [0, 1] (used when a gray model gets a color image)."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
