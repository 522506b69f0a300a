"""What the trainer asks of a training method: losses for a batch, plus optional trainable parts.

Plain supervised training is the default method; distillation methods (``kdrestore.distill``) use
the same contract, so the trainer loop is written once.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..config import RunConfig
from .losses import pixel_losses


class Method:
    """Base class. ``losses`` returns named loss terms; their sum is minimised."""

    name = "supervised"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def setup(self, student: nn.Module, device: Any) -> None:
        """Called once with the (unwrapped) student before training (build teachers, adapters...)."""

    def trainable(self) -> nn.ModuleDict:
        """Extra modules optimised with the student (adapters, projectors); saved with checkpoints."""
        return nn.ModuleDict()

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return student(batch["input"])

    def losses(self, batch: dict[str, Tensor], output: Tensor, step: int) -> dict[str, Tensor]:
        return pixel_losses(self.cfg.train.losses, output, batch["target"])


class Supervised(Method):
    """Student trained on ground truth with the recipe's pixel losses."""
