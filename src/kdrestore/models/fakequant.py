"""INT8 fake-quantisation for quantisation-aware training, matching the static QDQ export
(:func:`kdrestore.deploy.export.quantize_int8`): int8 weights, symmetric per output channel; uint8
activations, per tensor, over a moving average of the per-batch min/max (always holding 0); the export
calibrates a kd-qat student the same way (:func:`kdrestore.deploy.export.calibration_for`).

Gradients pass straight through inside the range (torch's fake-quantise ops). Off by default: a model
that places :class:`ActFakeQuant` modules and reads ``fake_quant`` flags behaves exactly as without
them until :func:`set_fake_quant` switches them on.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def fake_quant_weight(weight: Tensor) -> Tensor:
    """Round a conv kernel ``O x I x k x k`` to int8 per output channel (symmetric, 127 levels a side)."""
    scale = (weight.detach().abs().flatten(1).amax(1) / 127.0).clamp_min(1e-8).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)


class ActFakeQuant(nn.Module):
    """Identity, or (when enabled) uint8 fake-quantisation over a running min/max of the activations.

    The range is observed on training batches (momentum ``momentum``) and frozen in eval mode; it is not
    part of the state dict (a resumed run observes it again). Range, scale and zero point stay tensors on
    the activations' device: a training step never waits for the device to report them.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.enabled = False
        self.momentum = momentum
        self.lo: Tensor | None = None
        self.hi: Tensor | None = None

    def observe(self, x: Tensor) -> None:
        """Fold this batch's range (widened to hold 0) into the running range."""
        d = x.detach().float()
        lo, hi = d.min().clamp(max=0.0), d.max().clamp(min=0.0)
        if self.lo is None or self.hi is None or self.lo.device != d.device:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.lo + self.momentum * (lo - self.lo)
            self.hi = self.hi + self.momentum * (hi - self.hi)

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        if self.training or self.lo is None:
            self.observe(x)
        assert self.lo is not None and self.hi is not None
        lo, hi = self.lo, torch.maximum(self.hi, self.lo + 1e-6)
        scale = ((hi - lo) / 255.0).reshape(1)
        zero = (-lo / scale).round().clamp(0, 255).to(torch.int32).reshape(1)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def set_fake_quant(model: nn.Module, enabled: bool) -> int:
    """Switch fake-quantisation on or off in every part of ``model`` that supports it; returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, ActFakeQuant):
            m.enabled = enabled
            count += 1
        elif hasattr(m, "fake_quant") and isinstance(m.fake_quant, bool):
            m.fake_quant = enabled
            count += 1
    return count
