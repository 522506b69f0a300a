"""High-level evaluation: a registered model by name, its weights, a task's data and convention."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import KdrestoreError
from ..models.registry import build_model, default_weights, model_entry
from ..models.weights import load_weights
from .metrics import TASK_CONVENTIONS, Convention
from .runner import EvalResult, evaluate


def load_model(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    peers: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    sigma: float | None = None,
) -> nn.Module:
    """Build a registered model, load its weights (given, or the peer's published file), set eval mode.

    ``sigma`` (0-255 scale) is passed to models that take a noise level (FFDNet).
    """
    entry = model_entry(name)
    model = build_model(name)
    path = Path(weights) if weights else default_weights(name, peers)
    if path is None and entry.meta.get("peer_weights"):
        raise KdrestoreError(
            f"model '{name}' needs weights: pass --weights, or --peers / $KDRESTORE_PEERS "
            f"(its published file is <peers>/{entry.meta['peer_weights']})"
        )
    if path is not None:
        load_weights(model, path)
    if sigma is not None and hasattr(model, "set_noise_level"):
        model.set_noise_level(sigma)
    return model.to(torch.device(device)).eval()


def evaluate_named(
    model_name: str,
    data: str | os.PathLike[str],
    task: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    peers: str | os.PathLike[str] | None = None,
    sigma: float = 25.0,
    space: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    rule: str = "auto",
    device: str = "cpu",
    progress: bool = True,
) -> EvalResult:
    """``kdrestore eval``: score a registered model on a folder under the task's convention."""
    model = load_model(model_name, weights, peers, device, sigma if task == "denoise" else None)
    channels = int(model_entry(model_name).meta.get("channels", 3))
    result = evaluate_model(model, channels, data, task, name=model_name, sigma=sigma, space=space, limit=limit,
                            seed=seed, rule=rule, progress=progress)
    result.extra["weights"] = str(weights or default_weights(model_name, peers) or "")
    return result


def evaluate_model(
    model: nn.Module,
    channels: int,
    data: str | os.PathLike[str],
    task: str,
    *,
    name: str = "model",
    sigma: float = 25.0,
    space: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    rule: str = "auto",
    progress: bool = True,
) -> EvalResult:
    """Score a loaded model (``channels``: 1 gray, 3 RGB) on a folder under the task's convention."""
    from ..data.tasks import eval_samples

    if task not in TASK_CONVENTIONS:
        raise KdrestoreError(f"unknown task {task!r} (expected {', '.join(TASK_CONVENTIONS)})")
    convention = TASK_CONVENTIONS[task]
    if space:
        convention = Convention(space=space, crop_border=convention.crop_border, clip=convention.clip,
                                quantize=convention.quantize)  # type: ignore[arg-type]
    samples, total, description = eval_samples(
        task, data, sigma=sigma, mode="gray" if channels == 1 else "rgb", seed=seed, rule=rule, limit=limit
    )
    result = evaluate(model, samples, convention, name=name, task=task, data=description,
                      limit=limit, progress=progress, total=total)
    if task == "denoise":
        result.extra["sigma"] = sigma
        result.extra["noise_seed"] = seed
    return result
