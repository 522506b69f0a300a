"""Optimisers and learning-rate schedules (linear warm-up, then cosine / step / constant)."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from ..config import OptimConfig, ScheduleConfig


def build_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.name]
    return cls([p for p in params if p.requires_grad], lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(cfg: ScheduleConfig, base_lr: float, total_steps: int, step: int,
              progress: float | None = None) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based, before the update).

    ``progress`` (a share in [0, 1], e.g. of a time budget) replaces the step count after warm-up:
    the cosine is then laid over it, and the step schedule's ``step_size`` counts steps as before."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.name == "constant":
        return 1.0
    if cfg.name == "step":
        return cfg.gamma ** ((step - cfg.warmup_steps) // max(cfg.step_size, 1))
    if progress is None:
        progress = min((step - cfg.warmup_steps) / max(total_steps - cfg.warmup_steps, 1), 1.0)
    floor = min(cfg.min_lr / base_lr, 1.0) if base_lr > 0 else 0.0
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, total_steps: int,
                    progress: Callable[[], float] | None = None) -> LambdaLR:
    """``progress``: a callable giving the run's progress in [0, 1] (a time budget) instead of steps."""
    base = optimizer.param_groups[0]["lr"]
    return LambdaLR(optimizer, lambda step: lr_factor(cfg, base, total_steps, step,
                                                      progress() if progress is not None else None))
