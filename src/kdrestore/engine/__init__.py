"""The training engine: one loop (:class:`Trainer`), checkpoints, EMA, schedules and DDP scale-out."""
from __future__ import annotations

from .trainer import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged"]
