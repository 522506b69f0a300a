"""Teacher-student distillation composed from a recipe: output, feature (FitNets/FAKD/RSD) and contrastive terms.

Loss = task loss (``train.losses`` against the target; the teacher's output when ``pseudo_label``)
+ output distillation to each teacher + feature terms at hooked points + contrastive regularization.
"""
from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import Tensor, nn

# the typed distill section lives in the config module; re-exported for the methods built on KD
from ...config import (ContrastiveTerm, DistillConfig, FeaturePair, OutputTerm, RunConfig,  # noqa: F401
                       distill_section, method_options)
from ...errors import KdrestoreError
from ..adapters import FeatureAdapter, as_map
from ..hooks import FeatureHooks
from ..losses import (ContrastiveRegularization, DecouplingProjector, HookedFeatures, fakd_loss, fitnet_loss,
                      output_distillation, rsd_loss)
from ..losses.pixel import pixel_losses
from ..method import Method
from ..teacher import FirstBatchRangeCheck, load_teacher

T = TypeVar("T")


def distill_config(cfg: RunConfig) -> DistillConfig:
    """The typed ``distill`` section (kept for the methods built on KD)."""
    return distill_section(cfg)


def teacherless_options(cfg: RunConfig, options_type: type[T], method: str, why: str) -> T:
    """``distill.options`` of a method that takes no teacher; a recipe naming teachers is refused."""
    if distill_section(cfg).teachers:
        raise KdrestoreError(f"distill.method {method} {why}: leave distill.teachers empty")
    return method_options(cfg, options_type)


class KnowledgeDistillation(Method):
    """The general teacher-student method; other methods extend it."""

    name = "kd"

    def __init__(self, cfg: RunConfig, teachers: list[nn.Module] | None = None) -> None:
        super().__init__(cfg)
        self.dcfg = distill_config(cfg)
        self._given_teachers = teachers
        self.adapters = nn.ModuleDict()
        self.range_check = FirstBatchRangeCheck()

    # ---- set-up -------------------------------------------------------------------------------
    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        d = self.dcfg
        specs: list[Any] = self._given_teachers or d.teachers
        if not specs:
            raise KdrestoreError("distill.teachers is empty: name at least one teacher")
        self.teachers = [load_teacher(s, d.peers, d.cache_teacher, d.teacher_precision, d.teacher_channels_last
                                      ).to(device) for s in specs]
        self.teacher_weights = [getattr(s, "weight", 1.0) for s in specs]
        self.teacher_degradations = [getattr(s, "degradations", None) for s in specs]
        self.hooked_pairs = self.feature_pairs(student)
        for pair in self.hooked_pairs:
            if not 0 <= pair.teacher_index < len(self.teachers):
                raise KdrestoreError(f"distill.features: teacher_index {pair.teacher_index} out of range")
        self.student_hooks = FeatureHooks(student, [p.student for p in self.hooked_pairs], "student")
        self.teacher_hooks = [FeatureHooks(t.model, [p.teacher for p in self.hooked_pairs if p.teacher_index == i],
                                           f"teacher {t.name}", detach=True) for i, t in enumerate(self.teachers)]
        self._build_adapters(student, example, device)
        self.contrastive = None
        if d.contrastive is not None:
            teacher = self.teachers[d.contrastive.teacher_index]
            points = d.contrastive.points or list(getattr(teacher.model, "feature_points", []))[:3]
            if not points:
                raise KdrestoreError(f"distill.contrastive.points: teacher {teacher.name} declares no "
                                     "feature_points; name its module paths")
            self.contrastive = ContrastiveRegularization(HookedFeatures(teacher.model, points),
                                                         d.contrastive.layer_weights).to(device)

    def feature_pairs(self, student: nn.Module) -> list[FeaturePair]:
        """The (student point, teacher point) pairs to hook: ``distill.features`` unless a method says
        otherwise. Pair ``j`` of this list has the adapter ``adapters[str(j)]`` and the ``j``-th student
        feature; teacher ``i`` gives the features of its own pairs in this list's order."""
        return list(self.dcfg.features)

    def _build_adapters(self, student: nn.Module, example: dict[str, Any], device: Any) -> None:
        if not self.hooked_pairs:
            return
        x = example["input"][None].repeat(2, 1, 1, 1).to(device)
        with torch.no_grad():
            was_training = student.training
            student.eval()
            student(x)
            student.train(was_training)
            s_feats = self.student_hooks.take()
            hw = tuple(x.shape[-2:])
            t_feats = [as_map(t, hw) for t in self._teacher_features(x)]
        for i, (pair, s, t) in enumerate(zip(self.hooked_pairs, s_feats, t_feats)):
            adapter = FeatureAdapter(tuple(s.shape), tuple(t.shape), hw, match_channels=pair.loss == "fitnet")
            if pair.loss == "rsd":
                c_in = adapter(s).shape[1]
                adapter = nn.Sequential(adapter, DecouplingProjector(c_in, t.shape[1]))
            self.adapters[str(i)] = adapter.to(device)

    def trainable(self) -> nn.ModuleDict:
        return self.adapters

    # ---- losses -------------------------------------------------------------------------------
    def _teacher_outputs(self, x: Tensor, batch: dict[str, Any]) -> list[Tensor]:
        return [t(x, batch.get("sigma")) if t.sigma_from_batch else t(x) for t in self.teachers]

    def _teacher_features(self, x: Tensor) -> list[Tensor]:
        """Teacher features in the order of :meth:`feature_pairs` (runs each teacher that has points)."""
        by_teacher = {}
        for i, (t, hooks) in enumerate(zip(self.teachers, self.teacher_hooks)):
            if hooks.paths:
                with torch.no_grad():
                    t.run(x)
                by_teacher[i] = iter(hooks.take())
        return [next(by_teacher[p.teacher_index]) for p in self.hooked_pairs]

    def _mask(self, index: int, batch: dict[str, Any], like: Tensor) -> Tensor | None:
        wanted = self.teacher_degradations[index]
        if not wanted:
            return None
        names = batch.get("degradation") or [""] * like.shape[0]
        return torch.tensor([n in wanted for n in names], dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)

    def losses(self, batch: dict[str, Any], output: Tensor, step: int) -> dict[str, Tensor]:
        d, x = self.dcfg, batch["input"]
        teacher_out = self._teacher_outputs(x, batch)
        self.range_check((t, x[:1], output[:1]) for t in self.teachers)
        terms: dict[str, Tensor] = {}
        target = teacher_out[0] if d.pseudo_label else batch["target"]
        if d.task_loss:
            terms.update(pixel_losses(self.cfg.train.losses, output, target))
        if d.output is not None:
            kd = output.new_zeros(())
            for i, (w, t) in enumerate(zip(self.teacher_weights, teacher_out)):
                mask = self._mask(i, batch, output)
                if mask is None:
                    kd = kd + w * output_distillation(output, t, criterion=d.output.criterion)
                elif mask.sum() > 0:
                    kd = kd + w * output_distillation(output * mask, t * mask, criterion=d.output.criterion) \
                        * mask.numel() / mask.sum()
            terms["kd_output"] = d.output.weight * kd
        if self.hooked_pairs:
            terms.update(self._feature_terms(x))
        if self.contrastive is not None and d.contrastive is not None:
            positive = target if not d.pseudo_label else teacher_out[0]
            terms["kd_contrastive"] = d.contrastive.weight * self.contrastive(output, positive, x)
        return terms

    def _feature_terms(self, x: Tensor) -> dict[str, Tensor]:
        s_feats = self.student_hooks.take()
        hw = tuple(x.shape[-2:])
        t_feats = [as_map(t, hw) for t in self._teacher_features(x)]
        terms = {}
        for i, (pair, s, t) in enumerate(zip(self.hooked_pairs, s_feats, t_feats)):
            adapter = self.adapters[str(i)]
            s = adapter[0](s, hw) if isinstance(adapter, nn.Sequential) else adapter(s, hw)
            if pair.loss == "rsd":
                s = adapter[1](s)
                value = rsd_loss(s, t, kappa=pair.kappa, mode=pair.rsd_mode)
            elif pair.loss == "fakd":
                value = fakd_loss(s, t)
            else:
                value = fitnet_loss(s, t, criterion=pair.criterion)
            terms[f"kd_{pair.loss}_{i}"] = pair.weight * value
        return terms
