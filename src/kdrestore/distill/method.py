"""What the trainer asks of a training method: losses for a batch, plus optional trainable parts.

Plain supervised training is the default method; distillation methods (:mod:`.methods`, built by
``methods.build_method``) use the same contract, so the trainer loop is written once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..config import RunConfig
from .losses.pixel import pixel_losses


class Method:
    """Base class. ``losses`` returns named loss terms; their sum is minimised."""

    name = "supervised"
    run_dir: Path | None = None  # set by the Trainer before setup: where a method may write artefacts

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        """Called once before training with the unwrapped student and one training sample
        (``example['input']`` is C x H x W): build teachers, hooks and adapters here."""

    def trainable(self) -> nn.ModuleDict:
        """Extra modules optimised with the student (adapters, projectors); saved with checkpoints."""
        return nn.ModuleDict()

    def begin_step(self, step: int) -> None:
        """Called at the start of every optimiser step (before its first forward): schedules, snapshots."""

    def state_dict(self) -> dict[str, Any]:
        """Non-trainable method state (frozen snapshots, counters), saved with the training state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes."""

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return student(batch["input"])

    def losses(self, batch: dict[str, Tensor], output: Tensor, step: int) -> dict[str, Tensor]:
        return pixel_losses(self.cfg.train.losses, output, batch["target"])


class Supervised(Method):
    """Student trained on ground truth with the recipe's pixel losses."""

