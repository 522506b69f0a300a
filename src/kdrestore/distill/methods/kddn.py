"""KDDN: heterogeneous task imitation — a dehazing student imitates a clean-image auto-encoder.

Paper: Hong, Xie, Li and Qu, "Distilling Image Dehazing with Heterogeneous Task Imitation", CVPR 2020.
What the paper states: the teacher is an off-the-shelf auto-encoder trained for image reconstruction
(clean -> clean); the dehazing student is trained with the teacher's help by "process-oriented
learning": its intermediate features imitate the teacher's while the teacher reconstructs the haze-free
image, so the student imitates the reconstruction task (a different, easier task).

Our reading, on the general teacher-student machinery of :mod:`.kd` (the pairing and weights are ours):

* the teacher (``distill.teachers[0]``, e.g. ``kddn-teacher`` trained with
  ``configs/dehaze/kddn-teacher.yaml``, the ``identity`` degradation) runs on the CLEAN target ``y``;
  the student runs on the hazy input ``x``;
* at every pair of ``distill.features`` (student point, teacher point) an adapter maps the student
  feature to the teacher's shape (1x1 conv, resize) and the L1 distance is taken (FitNet-style).
  Without ``distill.features`` the pairs are the student's ``feature_points`` matched by name in the
  teacher (the KDDN student and teacher share them: ``down1, down2, body, up1``), each with
  ``distill.options.feature_weight`` (default 1.0), criterion L1;
* loss (``A_k`` the adapters, ``F_k`` the hooked features, ``lambda_k`` the pair weights)::

      L = train.losses(S(x), y) + sum_k lambda_k * L1(A_k(F_k^S(x)), F_k^T(y))    (kd_fitnet_k)
          [+ output.weight * d(S(x), T(y))  only when ``distill.output`` is set; the recipes set null]

  The other terms of ``kd`` (feature losses fakd/rsd, contrastive) also work; they see ``T(y)`` too.
* **perceptual loss** (option; the paper's student also has one, in a pretrained classification
  network's space, which we do not have offline): with ``perceptual_weight > 0`` the student's OUTPUT
  and the clean image both pass through the teacher's encoder (``perceptual_points``, default the
  teacher's first two ``feature_points``: ``down1, down2``), and
  ``perceptual_weight * mean_k L1(E_k(S(x)), E_k(y))`` is added (``kddn_perceptual``); the gradient
  flows through the frozen teacher into the student.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..losses.pixel import pixel_losses
from ...errors import KdrestoreError
from ..losses import HookedFeatures, output_distillation
from ...config import RunConfig, method_options
from .kd import FeaturePair, KnowledgeDistillation


@dataclass
class KDDNOptions:
    feature_weight: float = 1.0  # weight of each default pair (the student's feature_points)
    perceptual_weight: float = 0.0  # > 0: L1 of output and ground truth in the teacher's encoder space
    perceptual_points: list[str] | None = None  # the teacher's encoder points (default: its first two)


class HeterogeneousTaskImitation(KnowledgeDistillation):
    """KDDN: the teacher reconstructs the clean image, the student imitates its features from the hazy one."""

    name = "kddn"

    def __init__(self, cfg: RunConfig, teachers: list[nn.Module] | None = None) -> None:
        super().__init__(cfg, teachers)
        self.opts: KDDNOptions = method_options(cfg, KDDNOptions)

    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        d = self.dcfg
        self.perceptual_weight = self.opts.perceptual_weight
        if self.perceptual_weight < 0:
            raise KdrestoreError(f"distill.options.perceptual_weight must be >= 0, got {self.perceptual_weight}")
        if d.pseudo_label:
            raise KdrestoreError("kddn learns from ground truth: distill.pseudo_label must be false")
        if not d.features:  # the student's feature_points, matched by name in the teacher
            points = list(getattr(student, "feature_points", []))
            if not points:
                raise KdrestoreError("kddn: the student declares no feature_points; list distill.features")
            d.features = [FeaturePair(student=p, teacher=p, loss="fitnet", weight=self.opts.feature_weight,
                                      criterion="l1") for p in points]
        super().setup(student, device, example)
        self.perceptual: HookedFeatures | None = None
        if self.perceptual_weight > 0:
            teacher = self.teachers[0].model
            points = list(self.opts.perceptual_points or list(getattr(teacher, "feature_points", []))[:2])
            if not points:
                raise KdrestoreError("kddn: the teacher declares no feature_points; list "
                                     "distill.options.perceptual_points (its encoder's module paths)")
            self.perceptual = HookedFeatures(teacher, points)

    def perceptual_term(self, output: Tensor, clean: Tensor) -> Tensor:
        """``mean_k L1(E_k(output), E_k(clean))`` in the teacher's encoder space (gradient to ``output``)."""
        assert self.perceptual is not None
        with torch.no_grad():
            target = self.perceptual(clean)
        feats = self.perceptual(output)
        for hooks in self.teacher_hooks:  # these passes are not the feature-imitation pass
            hooks.features = {}
        return torch.stack([(f.float() - t.float()).abs().mean() for f, t in zip(feats, target)]).mean()

    def losses(self, batch: dict[str, Any], output: Tensor, step: int) -> dict[str, Tensor]:
        d, clean = self.dcfg, batch["target"]
        self.range_check([(self.teachers[0], clean[:1], output[:1])])  # the teacher reconstructs clean images
        terms = pixel_losses(self.cfg.train.losses, output, clean) if d.task_loss else {}
        if d.output is not None:
            reconstruction = self.teachers[0](clean)
            terms["kd_output"] = d.output.weight * output_distillation(output, reconstruction,
                                                                       criterion=d.output.criterion)
        terms.update(self._feature_terms(clean))  # student features from the hazy pass, teacher's from y
        if self.perceptual is not None:
            terms["kddn_perceptual"] = self.perceptual_weight * self.perceptual_term(output, clean)
        if self.contrastive is not None and d.contrastive is not None:
            terms["kd_contrastive"] = d.contrastive.weight * self.contrastive(output, clean, batch["input"])
        return terms
