"""The training engine: one loop (:class:`Trainer`), checkpoints, EMA, schedules and DDP scale-out."""
from __future__ import annotations

from typing import Any

__all__ = ["Trainer", "TrainingDiverged"]


def __getattr__(name: str) -> Any:  # lazy, so that engine.losses can be imported on its own
    if name in __all__:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
