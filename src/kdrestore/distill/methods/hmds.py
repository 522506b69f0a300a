"""HMDS, multi-level part: a blind denoiser learns from teachers specialised by noise level.

Paper: Li, Yang, Yi, Fang, Gao, Zeng and Zhang, "Multiple Degradation and Reconstruction Network for
Single Image Denoising via Knowledge Distillation", CVPR Workshops 2022. What the paper states: two
heterogeneous knowledge distillation strategies (HMDS) let the lightweight MDRN learn from heterogeneous
models, which helps tiny models and high noise levels. The first (a teacher of another architecture
family, through RSD or feature adapters) is the ``kd`` method with recipes
(``configs/denoise/hmds-mdrn-*.yaml``); this module is our reading of the second: an ensemble of
teachers each specialised to a range of noise levels.

Our reading (routing, weights and losses are ours):

* ``distill.options.levels``: one ``[lo, hi]`` sigma range (0-255 scale) per teacher, in the order of
  ``distill.teachers`` (a count mismatch is an error);
* every sample carries its noise level ``sigma_b`` (``batch['sigma']``, kept by the data pipeline for
  AWGN; blind training draws it in e.g. [0, 55]). Its distance to range ``i`` is
  ``d_bi = max(lo_i - sigma_b, 0, sigma_b - hi_i)``; routing weights ``w_bi``: hard (``soft: 0``)
  ``w_bi = 1`` for the nearest range(s) (distance 0 inside; a sigma on a shared border splits equally;
  outside every range the nearest range teaches), soft ``w_bi ~ exp(-((d_bi - min_j d_bj) / soft)^2 / 2)``;
  each row normalised to sum 1. A sample without sigma (NaN) raises, unless
  ``missing_sigma: uniform`` (then ``w_bi = 1 / n``);
* loss, with ``dist_b`` the per-sample mean distance (criterion of ``distill.output``, L1 default;
  ``distill.features`` pairs use their own criterion, FitNet only) and ``A_ki`` one adapter per pair and
  teacher::

      L = train.losses(S(x), y)
          + output.weight * mean_b sum_i w_bi dist_b(S(x), T_i(x))                          (kd_output)
          + sum_k weight_k * mean_b sum_i w_bi dist_b(A_ki(F_k^S(x)), F_k^{T_i}(x))        (hmds_feature_k)

  A teacher with no weight in the batch is not run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ...config import RunConfig, method_options
from ..losses.pixel import pixel_losses
from ...errors import KdrestoreError
from ..adapters import as_map
from .kd import FeaturePair, KnowledgeDistillation


@dataclass
class HMDSOptions:
    levels: list[tuple[float, float]] = field(default_factory=list)
    soft: float = 0.0  # 0: hard routing; > 0: Gaussian fall-off (sigma units) outside a range
    missing_sigma: Literal["error", "uniform"] = "error"


def per_sample_distance(a: Tensor, b: Tensor, criterion: str = "l1") -> Tensor:
    """Mean distance per sample (``B``) between two ``B x ...`` tensors: l1, mse or charbonnier."""
    diff = a.float() - b.detach().float()
    if criterion == "l1":
        d = diff.abs()
    elif criterion == "mse":
        d = diff * diff
    elif criterion == "charbonnier":
        d = torch.sqrt(diff * diff + 1e-6)
    else:
        raise ValueError(f"unknown criterion '{criterion}' (known: charbonnier, l1, mse)")
    return d.flatten(1).mean(1)


class MultiLevelDistillation(KnowledgeDistillation):
    """HMDS ensemble: each sample is taught by the teacher(s) whose sigma range holds its noise level."""

    name = "hmds"

    def __init__(self, cfg: RunConfig, teachers: list[nn.Module] | None = None) -> None:
        super().__init__(cfg, teachers)
        d = self.dcfg
        self.opts: HMDSOptions = method_options(cfg, HMDSOptions)
        self._sigma_checked = False
        levels = self.opts.levels
        n = len(teachers) if teachers is not None else len(d.teachers)
        if not levels:
            raise KdrestoreError("hmds: distill.options.levels is empty: give one [lo, hi] sigma range per teacher")
        if len(levels) != n:
            raise KdrestoreError(f"hmds: distill.options.levels has {len(levels)} sigma ranges but there are {n} "
                                 "teachers (distill.teachers): give exactly one range per teacher, in order")
        if any(lo > hi for lo, hi in levels) or self.opts.soft < 0:
            raise KdrestoreError(f"hmds: each level needs lo <= hi and soft >= 0, got levels {levels}")
        bad = [p.loss for p in d.features if p.loss != "fitnet"]
        if bad or d.contrastive is not None or d.pseudo_label:
            raise KdrestoreError("hmds supports fitnet feature pairs, output and task terms only "
                                 f"(got feature losses {bad}, contrastive/pseudo_label set)")
        self.pairs = list(d.features)  # each pair is taught by every teacher: one adapter per (pair, teacher)
        self.slots = [(k, i) for k in range(len(self.pairs)) for i in range(n)]  # (pair, teacher) per hooked pair
        self.levels = torch.tensor(levels, dtype=torch.float64)

    def feature_pairs(self, student: nn.Module) -> list[FeaturePair]:
        """Every ``distill.features`` pair once per teacher, in the order of :attr:`slots`."""
        return [dataclasses.replace(self.pairs[k], teacher_index=i) for k, i in self.slots]

    def membership(self, sigma: Tensor | None, batch_size: int) -> Tensor:
        """Routing weights ``B x n_teachers`` (rows sum to 1) from the per-sample sigmas."""
        s = (torch.full((batch_size,), float("nan"), dtype=torch.float64) if sigma is None
             else torch.as_tensor(sigma).detach().to(torch.float64).reshape(-1))
        missing = ~torch.isfinite(s)
        # the check reads a value back from the device: on an accelerator only once, at the first batch
        check = self.opts.missing_sigma == "error" and (s.device.type == "cpu" or not self._sigma_checked)
        self._sigma_checked = True
        if check and bool(missing.any()):
            raise KdrestoreError(
                f"hmds routes each sample by its noise level, but {int(missing.sum())} of {len(s)} samples have no "
                "sigma (NaN): train on a synth awgn / awgn-blind data set, or set "
                "distill.options.missing_sigma: uniform to share such samples among all teachers")
        lo, hi = self.levels[:, 0].to(s.device), self.levels[:, 1].to(s.device)
        dist = (lo[None] - s[:, None]).clamp_min(0) + (s[:, None] - hi[None]).clamp_min(0)
        excess = dist - dist.nan_to_num(float("inf")).min(1, keepdim=True).values
        if self.opts.soft > 0:
            w = torch.exp(-0.5 * (excess / self.opts.soft) ** 2)
        else:
            w = (excess <= 1e-9).to(torch.float64)
        w = w / w.sum(1, keepdim=True)
        w[missing] = 1.0 / len(self.levels)
        return w.float()

    def losses(self, batch: dict[str, Any], output: Tensor, step: int) -> dict[str, Tensor]:
        d, x = self.dcfg, batch["input"]
        n = len(self.teachers)
        w = self.membership(batch.get("sigma"), x.shape[0]).to(output.device)
        self.range_check((t, x[:1], output[:1]) for t in self.teachers)
        terms = pixel_losses(self.cfg.train.losses, output, batch["target"]) if d.task_loss else {}
        # each teacher runs only on the samples routed to it (hard routing: a third of the cost for three)
        routed = {i: torch.nonzero(w[:, i] > 0).flatten() for i in range(n)}
        routed = {i: idx for i, idx in routed.items() if idx.numel()}
        outs, feats = {}, {}
        with torch.no_grad():
            for i, idx in routed.items():
                t, xi = self.teachers[i], x[idx]
                outs[i] = t.run(xi) if self.teacher_hooks[i].paths else t(xi)
                feats[i] = self.teacher_hooks[i].take() if self.teacher_hooks[i].paths else []
        batch_size = x.shape[0]
        if d.output is not None:
            kd = sum((w[idx, i] * per_sample_distance(output[idx], outs[i], d.output.criterion)).sum()
                     for i, idx in routed.items())
            terms["kd_output"] = d.output.weight * kd / batch_size
        if self.pairs:
            s_feats, hw = self.student_hooks.take(), tuple(x.shape[-2:])
            slot = {ki: j for j, ki in enumerate(self.slots)}
            for k, pair in enumerate(self.pairs):
                value = output.new_zeros(())
                for i, idx in routed.items():
                    j = slot[k, i]  # the hooked pair (k, i): its adapter and student feature
                    s = self.adapters[str(j)](s_feats[j][idx], hw)
                    t = as_map(feats[i][k], hw)  # teacher i hooks only its own pairs, k-th is pair k
                    value = value + (w[idx, i] * per_sample_distance(s, t, pair.criterion)).sum()
                terms[f"hmds_feature_{k}"] = pair.weight * value / batch_size
        return terms
