"""Exponential moving average of a model's weights (validation and shipping use the average)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``shadow = d * shadow + (1 - d) * weights`` after each optimiser step; buffers are copied.

    The decay warms up as ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short run's
    average is not dominated by the random initial weights (0.999 ** 500 would still weigh them 0.6).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)
        self.updates = 0  # saved with the training state

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1.0 - decay)
        for s, b in zip(self.shadow.buffers(), model.buffers()):
            s.copy_(b)
        self.updates += 1
