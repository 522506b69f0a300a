"""Output (response) distillation for restoration: the student image regresses the teacher's image.

For regression there are no logits to soften, so "KD on outputs" is a pixel distance to the teacher's
restored image, usually mixed with the ground-truth loss (e.g. Hinton et al., 2015, adapted to
regression as in most restoration-KD papers). Images are B x C x H x W in [0, 1].
"""
from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Criterion = Literal["l1", "charbonnier", "mse"]


def _charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    # Same formula as kdrestore.engine.losses.charbonnier; repeated here so that distill does not
    # import engine (engine builds on distill, not the other way round).
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


_CRITERIA: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "charbonnier": _charbonnier,
}


def pixel_distance(a: Tensor, b: Tensor, criterion: Criterion = "l1") -> Tensor:
    """Mean pixel distance ``criterion`` ('l1' | 'charbonnier' | 'mse') between ``a`` and ``b`` (float32)."""
    try:
        fn = _CRITERIA[criterion]
    except KeyError:
        raise ValueError(f"unknown criterion '{criterion}' (known: {', '.join(sorted(_CRITERIA))})") from None
    return fn(a.float(), b.float())


def output_distillation(
    student_out: Tensor,
    teacher_out: Tensor,
    target: Tensor | None = None,
    gt_weight: float = 0.5,
    criterion: Criterion = "l1",
) -> Tensor:
    """Output KD loss: ``(1 - gt_weight) * d(S, T) + gt_weight * d(S, GT)``, or ``d(S, T)`` without GT.

    The teacher output is detached, so only the student receives a gradient. ``gt_weight`` must be in
    [0, 1]; it is ignored when ``target`` is None. Shape mismatches raise ValueError naming both shapes.
    """
    if student_out.shape != teacher_out.shape:
        raise ValueError(
            f"student output {tuple(student_out.shape)} and teacher output {tuple(teacher_out.shape)} differ"
        )
    if not 0.0 <= gt_weight <= 1.0:
        raise ValueError(f"gt_weight must be in [0, 1], got {gt_weight}")
    loss = pixel_distance(student_out, teacher_out.detach(), criterion)
    if target is None:
        return loss
    if target.shape != student_out.shape:
        raise ValueError(f"student output {tuple(student_out.shape)} and target {tuple(target.shape)} differ")
    return (1.0 - gt_weight) * loss + gt_weight * pixel_distance(student_out, target, criterion)
