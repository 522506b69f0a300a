"""The training engine: one loop (:class:`Trainer`), checkpoints, EMA, schedules and DDP scale-out."""
from __future__ import annotations

from typing import Any

__all__ = ["Trainer", "TrainingDiverged"]


def __getattr__(name: str) -> Any:  # lazy: importing a part of the engine does not build the trainer
    if name in __all__:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
