"""Output (response) distillation for restoration: the student image regresses the teacher's image.

For regression there are no logits to soften, so "KD on outputs" is a pixel distance to the teacher's
restored image, usually mixed with the ground-truth loss (e.g. Hinton et al., 2015, adapted to
regression as in most restoration-KD papers). Images are B x C x H x W in [0, 1].
"""
from __future__ import annotations

from typing import Literal

from torch import Tensor

from .pixel import PIXEL_LOSSES

Criterion = Literal["l1", "charbonnier", "mse"]


def pixel_distance(a: Tensor, b: Tensor, criterion: Criterion = "l1") -> Tensor:
    """Mean pixel distance ``criterion`` ('l1' | 'charbonnier' | 'mse') between ``a`` and ``b`` (float32)."""
    if criterion not in ("l1", "charbonnier", "mse"):
        raise ValueError(f"unknown criterion '{criterion}' (known: charbonnier, l1, mse)")
    return PIXEL_LOSSES.get(criterion)(a.float(), b.float())


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
