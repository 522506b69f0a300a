"""Feature distillation losses on B x C x H x W maps: FitNet hints and FAKD feature affinity.

* FitNet (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015): a distance between the
  student feature, already mapped to the teacher's shape by an adapter, and the teacher feature.
* FAKD (He et al., "FAKD: Feature-Affinity Based Knowledge Distillation for Efficient Image
  Super-Resolution", ICIP 2020): match the spatial affinity (second-order, N x N) matrices of the
  student and teacher features, which needs no adapter because the channel count drops out.

Teacher features are always detached.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def fitnet_loss(student_feat: Tensor, teacher_feat: Tensor, criterion: Literal["mse", "l1"] = "mse") -> Tensor:
    """FitNet hint loss: mean ``criterion`` ('mse' | 'l1') distance between adapted student and teacher maps.

    The student feature must already have the teacher's shape (use an adapter); a mismatch raises
    ValueError naming both shapes.
    """
    if student_feat.shape != teacher_feat.shape:
        raise ValueError(
            f"fitnet: student feature {_shape(student_feat)} and teacher feature {_shape(teacher_feat)} "
            "differ; adapt the student feature to the teacher's shape first"
        )
    s, t = student_feat.float(), teacher_feat.detach().float()
    if criterion == "mse":
        return F.mse_loss(s, t)
    if criterion == "l1":
        return F.l1_loss(s, t)
    raise ValueError(f"unknown criterion '{criterion}' (known: l1, mse)")


def _pool_to(x: Tensor, max_side: int) -> Tensor:
    h, w = x.shape[-2:]
    if h <= max_side and w <= max_side:
        return x
    return F.adaptive_avg_pool2d(x, (min(h, max_side), min(w, max_side)))


def spatial_affinity(feat: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample spatial affinity ``A = F^T F`` (B x N x N) of a B x C x H x W map, N = H * W.

    Each position's C-dim channel vector is L2-normalised first, so ``A[b, i, j]`` is the cosine
    similarity of positions i and j and does not depend on the channel count or order.
    """
    f = F.normalize(feat.flatten(2).float(), dim=1, eps=eps)  # B x C x N
    return torch.bmm(f.transpose(1, 2), f)


def fakd_loss(student_feat: Tensor, teacher_feat: Tensor, max_side: int = 32) -> Tensor:
    """FAKD feature-affinity loss: mean absolute difference (L1) of the spatial affinity matrices.

    Both maps are average-pooled to at most ``max_side`` per side (bounding the N x N cost, N <= max_side^2;
    the pooling is our addition, the paper uses full resolution), then compared with
    :func:`spatial_affinity`. We use the L1 form ``mean |A_s - A_t|`` (our reading of the paper's
    norm; the mean is over batch and N x N entries). Channel counts may differ; batch size and the
    pooled H, W must match, otherwise ValueError naming both shapes.
    """
    if student_feat.dim() != 4 or teacher_feat.dim() != 4:
        raise ValueError(
            f"fakd: expected B x C x H x W maps, got student {_shape(student_feat)} and teacher {_shape(teacher_feat)}"
        )
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    s = _pool_to(student_feat, max_side)
    t = _pool_to(teacher_feat.detach(), max_side)
    if s.shape[0] != t.shape[0] or s.shape[-2:] != t.shape[-2:]:
        raise ValueError(
            f"fakd: student feature {_shape(student_feat)} and teacher feature {_shape(teacher_feat)} need the "
            f"same batch size and spatial size (after pooling to max_side={max_side}: "
            f"{tuple(s.shape[-2:])} vs {tuple(t.shape[-2:])})"
        )
    return (spatial_affinity(s) - spatial_affinity(t)).abs().mean()
