"""Small building blocks shared by the architectures."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> tuple[Tensor, tuple[int, int]]:
    """Pad H and W at the bottom/right up to a multiple; return the padded tensor and the original size.

    Reflect padding needs the pad to be smaller than the side, so tiny images fall back to replicate.
    Under ``torch.jit`` tracing (ONNX export) the sizes are traced values, so the pads are computed
    with tensor ops and no Python branch bakes the example's size into the graph (same values).
    """
    if torch.jit.is_tracing():
        return _pad_traced(x, multiple, mode), (x.shape[-2], x.shape[-1])
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def _pad_traced(x: Tensor, multiple: int, mode: str = "reflect") -> Tensor:
    """:func:`pad_to_multiple` with tensor arithmetic on the (traced) size: gathers, no branches.

    Always pads (by nothing when the size is a multiple); reflect falls back to replicate on both
    axes when a pad is not smaller than its side, as the eager branch does. Values are identical.
    """
    h, w = (s if isinstance(s, Tensor) else torch.tensor(s) for s in (x.shape[-2], x.shape[-1]))
    ph, pw = (-h) % multiple, (-w) % multiple
    if mode not in ("reflect", "replicate"):  # constant/circular pads trace as they are
        return F.pad(x, (0, pw, 0, ph), mode=mode)
    reflect = (ph < h) & (pw < w) if mode == "reflect" else torch.tensor(False)
    rows = _source_index(h, ph, reflect, x.device)
    cols = _source_index(w, pw, reflect, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _source_index(n: Tensor, pad: Tensor, reflect: Tensor, device: torch.device) -> Tensor:
    """For each row (column) of a side of length ``n`` padded by ``pad`` at the end: its source."""
    i = torch.arange(n + pad, device=device)  # traced: an ONNX Range over the dynamic size
    last = n - 1
    return torch.where(reflect, torch.where(i <= last, i, 2 * last - i), torch.minimum(i, last))


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


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions (no normalisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def rgb_to_gray(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma of an RGB batch in [0, 1] (used when a gray model gets a color image)."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
