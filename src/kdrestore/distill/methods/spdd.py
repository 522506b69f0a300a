"""SPDD: one dehazing network that distils its own earlier parameters to itself (no separate teacher).

Paper: "Self-Parameter Distillation Dehazing", IEEE Transactions on Image Processing 32, 631-642 (2023),
doi:10.1109/TIP.2022.3231122. What the paper states: in early stages the network learns scene content
(identity) from haze-free images; in later stages it learns dehazing from hazy images, and the
parameters learned early pass scene information to the later stages of the same network, whose forward
pass acts as the teacher and backward pass as the student.

Our reading (the schedule, the targets and their weights are ours, not the paper's exact recipe), with
``s`` the optimiser step, ``y`` the clean target, ``x`` the hazy input, ``S`` the live network and
``P`` its snapshot, all options under ``distill.options``:

* **schedule**: ``r(s) = clip((s - I) / T, 0, 1)`` with ``I = identity_steps``, ``T = transition_steps``;
  the probability that a sample is an identity sample is ``p_id(s) = 1`` for ``s < I``, then
  ``f + (1 - f) (1 + cos(pi r)) / 2`` (cosine decay to ``f = identity_floor``); the distillation ramp is
  ``w(s) = 0`` for ``s < I``, then ``(1 - cos(pi r)) / 2`` (0 -> 1);
* **input**: each sample independently (a generator seeded by ``(train.seed, s)``, so a resumed run
  draws the same) is an identity sample, ``x~ = y`` (scene-content reconstruction), with probability
  ``p_id(s)``, else a dehazing sample, ``x~ = x``;
* **snapshot** ``P`` (never trained, eval mode): ``snapshot: frozen`` copies the live weights at the
  start of step ``I`` (the end of stage 1) and keeps them; ``snapshot: ema`` is an exponential moving
  average of the live weights, ``P <- d P + (1 - d) S`` at the start of every step with
  ``d = min(ema_decay, (1 + n) / (10 + n))`` after ``n`` updates. Its weights are saved with the
  training state (:meth:`state_dict`), so a resumed run continues with the same snapshot;
* **loss**, over the dehazing samples ``D`` of the batch (identity samples carry no distillation term),
  with ``F_k`` the features at the ``K`` hooked ``feature_points`` (default: the model's own)::

      L = train.losses(S(x~), y)
          + w(s) * output_weight  * d(S(x)_D, P(y)_D)                          (spdd_output)
          + w(s) * feature_weight * mean_k L1(F_k^S(x)_D, F_k^P(y)_D)          (spdd_feature)

  ``d`` is ``criterion`` (l1 by default). The snapshot sees the CLEAN image: the live network, seeing
  haze, is pulled toward the scene features it extracted from haze-free images.

  A frozen snapshot run on the clean image returns about the clean image, so ``spdd_output`` mostly
  repeats the pixel loss: ``output_weight: 0`` measures the feature term on its own (the
  ``spdd-feature`` row of ``kdrestore bench methods``). ``identity_steps: 0`` with ``snapshot: frozen``
  (a snapshot of the random initial weights) is refused.
"""
from __future__ import annotations

import copy
import math
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ...config import RunConfig
from ..losses.pixel import pixel_losses
from ..method import Method
from ...errors import KdrestoreError
from ..hooks import FeatureHooks
from ..losses import fitnet_loss, output_distillation
from .kd import teacherless_options


@dataclass
class SPDDOptions:
    identity_steps: int = 1000
    transition_steps: int = 1000
    identity_floor: float = 0.0  # share of identity samples left after the transition
    snapshot: Literal["frozen", "ema"] = "frozen"
    ema_decay: float = 0.999
    feature_points: list[str] | None = None  # default: the network's feature_points
    feature_weight: float = 0.1
    output_weight: float = 0.5
    criterion: Literal["l1", "charbonnier", "mse"] = "l1"


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with no gradients and without the original's forward hooks."""
    twin = copy.deepcopy(model).eval()
    for m in twin.modules():
        m._forward_hooks.clear()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class SelfParameterDistillation(Method):
    """SPDD (see the module docstring for the exact schedule and loss)."""

    name = "spdd"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.opts: SPDDOptions = teacherless_options(cfg, SPDDOptions, "spdd", "distils the network to itself")
        o = self.opts
        if o.identity_steps < 0 or o.transition_steps < 0 or not 0.0 <= o.identity_floor <= 1.0:
            raise KdrestoreError("distill.options: identity_steps and transition_steps must be >= 0 and "
                                 "identity_floor in [0, 1]")
        if o.snapshot == "frozen" and o.identity_steps == 0:
            raise KdrestoreError("distill.options: identity_steps 0 with snapshot 'frozen' would distil from the "
                                 "untrained initial weights; give identity_steps >= 1 or snapshot 'ema'")
        if o.output_weight < 0 or o.feature_weight < 0:
            raise KdrestoreError(f"distill.options: output_weight and feature_weight must be >= 0, got "
                                 f"{o.output_weight} and {o.feature_weight}")
        if not 0.0 < o.ema_decay < 1.0:
            raise KdrestoreError(f"distill.options.ema_decay must be in (0, 1), got {o.ema_decay}")
        self.step, self.taken, self.updates = 0, False, 0
        self._identity: Tensor | None = None

    # ---- schedule -----------------------------------------------------------------------------
    def progress(self, step: int) -> float:
        """``r(s)``: 0 until the end of stage 1, then linear to 1 over the transition."""
        o = self.opts
        if step < o.identity_steps:
            return 0.0
        return 1.0 if o.transition_steps == 0 else min((step - o.identity_steps) / o.transition_steps, 1.0)

    def identity_probability(self, step: int) -> float:
        if step < self.opts.identity_steps:
            return 1.0
        f = self.opts.identity_floor
        return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))

    def distill_weight(self, step: int) -> float:
        if step < self.opts.identity_steps:
            return 0.0
        return 0.5 * (1.0 - math.cos(math.pi * self.progress(step)))

    # ---- set-up, snapshot and state -----------------------------------------------------------
    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        points = self.opts.feature_points or list(getattr(student, "feature_points", []))
        if not points:
            raise KdrestoreError(f"{type(student).__name__} declares no feature_points: name module paths in "
                                 "distill.options.feature_points")
        self.student = student
        self.snapshot = frozen_copy(student).to(device)  # copied before our hooks are added
        self.student_hooks = FeatureHooks(student, points, "student")
        self.snapshot_hooks = FeatureHooks(self.snapshot, points, "snapshot", detach=True)
        self._generator = torch.Generator().manual_seed(self._seed(0))

    def _seed(self, step: int) -> int:
        return zlib.crc32(f"spdd/{self.cfg.train.seed}/{step}".encode())

    @torch.no_grad()
    def begin_step(self, step: int) -> None:
        self.step = step
        self._generator.manual_seed(self._seed(step))
        o = self.opts
        if o.snapshot == "frozen" and not self.taken and step >= o.identity_steps:
            self.snapshot.load_state_dict(self.student.state_dict())
            self.taken = True
        elif o.snapshot == "ema":
            decay = min(o.ema_decay, (1 + self.updates) / (10 + self.updates))
            for s, p in zip(self.snapshot.parameters(), self.student.parameters()):
                s.lerp_(p.detach(), 1.0 - decay)
            for s, b in zip(self.snapshot.buffers(), self.student.buffers()):
                s.copy_(b)
            self.updates += 1
            self.taken = True

    def state_dict(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.state_dict(), "taken": self.taken, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.snapshot.load_state_dict(state["snapshot"])
            self.taken, self.updates = bool(state["taken"]), int(state["updates"])

    # ---- forward and losses -------------------------------------------------------------------
    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        x, y = batch["input"], batch["target"]
        if x.shape != y.shape:
            raise KdrestoreError(f"spdd needs inputs and targets of one shape, got {tuple(x.shape)} and "
                                 f"{tuple(y.shape)}")
        draw = torch.rand(x.shape[0], generator=self._generator)
        self._identity = (draw < self.identity_probability(self.step)).to(x.device)
        return student(torch.where(self._identity.view(-1, 1, 1, 1), y, x))

    def losses(self, batch: dict[str, Tensor], output: Tensor, step: int) -> dict[str, Tensor]:
        y = batch["target"]
        terms = pixel_losses(self.cfg.train.losses, output, y)
        s_feats = self.student_hooks.take()
        dehaze = ~self._identity if self._identity is not None else torch.ones(len(y), dtype=torch.bool,
                                                                              device=y.device)
        w, o = self.distill_weight(step), self.opts
        zero = output.new_zeros(())
        terms["spdd_output"], terms["spdd_feature"] = zero, zero
        if w == 0.0 or not self.taken or not bool(dehaze.any()):
            return terms
        with torch.no_grad():
            target = self.snapshot(y[dehaze])
        t_feats = self.snapshot_hooks.take()
        terms["spdd_output"] = w * o.output_weight * output_distillation(output[dehaze], target,
                                                                         criterion=o.criterion)
        feats = [fitnet_loss(s[dehaze], t, criterion="l1") for s, t in zip(s_feats, t_feats)]
        terms["spdd_feature"] = w * o.feature_weight * torch.stack(feats).mean()
        return terms
