"""TRNR: task-driven training from a few images, first-order MAML over N-frequency-K-shot tasks.

Paper: Ran et al., "TRNR: Task-Driven Image Rain and Noise Removal with a Few Images Based on Patch
Analysis", arXiv 2112.01924. What the paper states: clean patches are clustered by patch analysis
(:mod:`kdrestore.data.patches`), tasks are sampled N-frequency-K-shot from the clusters
(:mod:`kdrestore.data.episodes`), and the network is meta-trained MAML-style: a few inner SGD steps
on a task's support set, the outer update from the query loss at the adapted weights, with per-layer
inner learning rates; the loss is ``L1 + 5 (1 - SSIM)``; the meta-trained weights are the model.

Our reading (the first-order variant, the log-parameterised rates and their initial value are ours),
with ``p`` a parameter tensor of the network, ``a_p = exp(s_p)`` its inner rate (``s_p`` trainable,
one per parameter tensor), ``L`` the recipe's ``train.losses`` and ``T = inner_steps``:

* **inner loop** on the support ``(x, y)``, on detached weights (no second-order terms)::

      g_t = grad L(f(x; p_t), y) at p_t,    p_{t+1} = p_t - a_p g_t,   p_0 = p
* **query** at the adapted weights, written so that autograd gives the first-order MAML gradient::

      p_T = p - a_p * sum_t g_t.detach()          (torch.func.functional_call)
      dL_q/dp = dL_q/dp_T,    dL_q/ds_p = -a_p <dL_q/dp_T, sum_t g_t>

  The trainer's optimiser (Adam in the recipes) then takes the outer step on ``p`` and ``s``.
* a **meta-batch** is ``train.batch_size`` tasks, each adapted on its own; the query losses are
  averaged over tasks (every task has as many query patches).

Runs on one process (the inner loop reads the unwrapped parameters; torchrun is refused).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.func import functional_call

from ...config import RunConfig
from ..losses.pixel import pixel_losses
from ..method import Method
from ...errors import KdrestoreError
from .kd import teacherless_options


@dataclass
class TRNROptions:
    inner_steps: int = 2  # SGD steps on the support of each task
    inner_lr: float = 1e-3  # initial inner learning rate of every layer
    learn_inner_lr: bool = True  # optimise the per-layer rates with the network (outer Adam); False: the
    # official code's setting, one fixed rate (inner_lr) for every layer


def _key(name: str) -> str:
    return name.replace(".", "__")


class TaskDrivenMetaLearning(Method):
    """TRNR (see the module docstring for the exact update)."""

    name = "trnr"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.opts: TRNROptions = teacherless_options(cfg, TRNROptions, "trnr", "trains from data alone")
        if self.opts.inner_steps < 1 or not self.opts.inner_lr > 0:
            raise KdrestoreError(f"distill.options: inner_steps must be >= 1 and inner_lr > 0, got "
                                 f"{self.opts.inner_steps} and {self.opts.inner_lr}")
        self.log_lr = nn.ParameterDict()
        self.names: list[str] = []

    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        if dist.is_available() and dist.is_initialized():
            raise KdrestoreError("distill.method trnr runs on one process; launch it without torchrun")
        if "query_input" not in example:
            raise KdrestoreError("distill.method trnr needs task data: set data.train.kind: tasks")
        self.names = [n for n, p in student.named_parameters() if p.requires_grad]
        init = math.log(self.opts.inner_lr)
        self.log_lr = nn.ParameterDict({
            _key(n): nn.Parameter(torch.tensor(init, device=device), requires_grad=self.opts.learn_inner_lr)
            for n in self.names})

    def trainable(self) -> nn.ModuleDict:
        return nn.ModuleDict({"inner_lr": self.log_lr})

    def inner_lrs(self) -> dict[str, Tensor]:
        """The current inner learning rate of each parameter tensor (by parameter name)."""
        return {n: self.log_lr[_key(n)].exp() for n in self.names}

    def _support_loss(self, model: nn.Module, weights: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        out = functional_call(model, weights, (x,))
        return sum(pixel_losses(self.cfg.train.losses, out, y).values())  # type: ignore[return-value]

    def adapted_parameters(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """``p - a_p * sum_t g_t`` for every trained parameter after the inner loop on ``(x, y)``
        (``N x C x H x W``); differentiable in ``p`` and ``a_p``, not through the ``g_t``."""
        params = dict(model.named_parameters())
        lrs = self.inner_lrs()
        steps = {n: torch.zeros_like(params[n]) for n in self.names}
        with torch.enable_grad():
            for _ in range(self.opts.inner_steps):
                fast = {n: (params[n].detach() - lrs[n].detach() * steps[n]).requires_grad_() for n in self.names}
                grads = torch.autograd.grad(self._support_loss(model, fast, x, y), list(fast.values()),
                                            allow_unused=True)
                for n, g in zip(self.names, grads):
                    if g is not None:
                        steps[n] += g
        return {n: params[n] - lrs[n] * steps[n] for n in self.names}

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        if "query_input" not in batch:
            raise KdrestoreError("distill.method trnr needs task data: set data.train.kind: tasks")
        x, y, qx = batch["input"], batch["target"], batch["query_input"]
        if x.ndim != 5 or qx.ndim != 5:
            raise KdrestoreError(f"trnr expects batches of tasks (tasks x patches x C x H x W), got support "
                                 f"{tuple(x.shape)} and query {tuple(qx.shape)}")
        outs = [functional_call(student, self.adapted_parameters(student, x[i], y[i]), (qx[i],))
                for i in range(x.shape[0])]
        return torch.stack(outs)

    def losses(self, batch: dict[str, Tensor], output: Tensor, step: int) -> dict[str, Tensor]:
        """The recipe's losses on the query patches of all tasks at their adapted weights."""
        return pixel_losses(self.cfg.train.losses, output.flatten(0, 1), batch["query_target"].flatten(0, 1))
