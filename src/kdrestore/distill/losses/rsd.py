"""RSD: redundancy-suppression distillation for cross-architecture (CNN <-> Transformer) features.

Zhang, Liu, Ran and Ma, "Cross-Architecture Distillation Made Simple with Redundancy Suppression",
ICCV 2025 (arXiv:2507.21844). The student feature goes through a light *decoupling projector*
(dropped after training, so the RSD objective does not overwrite the student's own representation);
then the cross-correlation matrix between the standardised projected-student and teacher features
is pushed towards the identity, in the style of Barlow Twins (Zbontar et al., ICML 2021):

    C = Z_s^T Z_t / M,   loss = sum_i (C_ii - 1)^2 + kappa * sum_{i != j} C_ij^2

(invariance maximisation + decorrelation). The choice of sample rows ("pooled": one per image;
"position": one per spatial position) and the projector layout are our reading of the description
for dense restoration features. Features are B x C x H x W maps; tokens are turned into maps by
adapters elsewhere.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of a B x C x H x W map (per position)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DecouplingProjector(nn.Module):
    """Student-side projector ``1x1 conv -> norm -> GELU -> 1x1 conv`` (in_ch -> hidden -> out_ch).

    ``norm`` is 'batch' (BatchNorm2d) or 'layer' (LayerNorm over channels, batch-size independent).
    ``hidden`` defaults to ``max(in_ch, out_ch)``. Train it with the student and drop it afterwards;
    ``out_ch`` is the teacher's channel count D.
    """

    def __init__(self, in_ch: int, out_ch: int, hidden: int | None = None,
                 norm: Literal["batch", "layer"] = "batch") -> None:
        super().__init__()
        hidden = hidden or max(in_ch, out_ch)
        if norm == "batch":
            norm_layer: nn.Module = nn.BatchNorm2d(hidden)
        elif norm == "layer":
            norm_layer = _ChannelLayerNorm(hidden)
        else:
            raise ValueError(f"unknown norm '{norm}' (known: batch, layer)")
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 1), norm_layer, nn.GELU(), nn.Conv2d(hidden, out_ch, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _rows(student: Tensor, teacher: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    if mode == "pooled":
        return student.mean(dim=(2, 3)), teacher.mean(dim=(2, 3))
    if mode == "position":
        if student.shape[-2:] != teacher.shape[-2:]:
            student = F.adaptive_avg_pool2d(student, tuple(teacher.shape[-2:]))
        d = teacher.shape[1]
        return student.permute(0, 2, 3, 1).reshape(-1, d), teacher.permute(0, 2, 3, 1).reshape(-1, d)
    raise ValueError(f"unknown mode '{mode}' (known: pooled, position)")


def _standardise(z: Tensor, eps: float) -> Tensor:
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(student_proj: Tensor, teacher_feat: Tensor,
                      mode: Literal["pooled", "position"] = "pooled", eps: float = 1e-5) -> Tensor:
    """The D x D cross-correlation ``C = Z_s^T Z_t / M`` of column-standardised sample matrices.

    ``pooled``: rows are globally average-pooled maps (M = B). ``position``: rows are all spatial
    positions of all samples (M = B*H*W), the student resized to the teacher's H, W by adaptive
    average pooling first. The teacher is detached. Needs equal batch and channel count D, and M >= 2.
    """
    s_shape, t_shape = tuple(student_proj.shape), tuple(teacher_feat.shape)
    if student_proj.dim() != 4 or teacher_feat.dim() != 4:
        raise ValueError(f"rsd: expected B x C x H x W maps, got student {s_shape} and teacher {t_shape}")
    if s_shape[:2] != t_shape[:2]:
        raise ValueError(
            f"rsd: projected student {s_shape} and teacher {t_shape} need the same batch size and channel "
            "count (the decoupling projector maps the student to the teacher's channels)"
        )
    zs, zt = _rows(student_proj.float(), teacher_feat.detach().float(), mode)
    m = zs.shape[0]
    if m < 2:
        raise ValueError(f"rsd: need at least 2 sample rows to standardise, got M={m} "
                         f"(mode '{mode}' with student {s_shape}); pooled mode needs batch > 1")
    return _standardise(zs, eps).T @ _standardise(zt, eps) / m


def rsd_terms(student_proj: Tensor, teacher_feat: Tensor,
              mode: Literal["pooled", "position"] = "pooled", eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """The two RSD terms ``(invariance, redundancy)``: ``sum_i (C_ii - 1)^2`` and ``sum_{i!=j} C_ij^2``."""
    c = cross_correlation(student_proj, teacher_feat, mode, eps)
    diag = torch.diagonal(c)
    invariance = (diag - 1.0).pow(2).sum()
    redundancy = (c - torch.diag(diag)).pow(2).sum()
    return invariance, redundancy


def rsd_loss(student_proj: Tensor, teacher_feat: Tensor, kappa: float = 0.01,
             mode: Literal["pooled", "position"] = "pooled", eps: float = 1e-5) -> Tensor:
    """RSD loss ``sum_i (C_ii - 1)^2 + kappa * sum_{i != j} C_ij^2`` (see :func:`cross_correlation`).

    ``student_proj`` is the student feature after :class:`DecouplingProjector` (B x D x h x w);
    ``teacher_feat`` is B x D x H x W and is detached. Pooled mode needs batch > 1 (ValueError for
    M < 2) and, with M < D, C is rank-deficient, so the loss cannot reach 0: prefer 'position' for
    small batches. A constant teacher channel has zero std and contributes an irreducible 1.
    """
    invariance, redundancy = rsd_terms(student_proj, teacher_feat, mode, eps)
    return invariance + kappa * redundancy
