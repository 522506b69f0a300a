"""Quantisation-aware distillation (ours): the ``kd`` method whose student is fake-quantised to INT8 for
the last part of training, so that the static INT8 ONNX export loses (almost) nothing.

``distill.options``:

* ``qat_start``: when fake-quantisation switches on, as a fraction of ``train.steps`` (``0 < f < 1``)
  or as a step number (``>= 1``); default 0.8 (the last fifth). Before it the method is plain ``kd``.
* ``float_share``: the share of the quantisation-aware steps that run WITHOUT fake-quantisation
  (``0 <= f < 1``, spread evenly: 0.5 alternates). Default 0: every step from ``qat_start`` is quantised,
  and the weights learn to lean on the rounding (measured on ``denoise-gray-s25``: a 2x2 pattern of
  per-phase offsets of a few grey levels in the float output). With ``f > 0`` the same weights must
  also work in float, so the float (PyTorch, fp32 ONNX) and the INT8 export both stay clean.

From then on the student runs with INT8 weights (per output channel) and uint8 activations (observed
ranges), gradients straight through (:mod:`kdrestore.models.fakequant`), and the teacher's output
stays the target. The student must support fake-quantisation (e.g. ``repdn``); another is refused.
The EMA weights (validation, shipping) average the quantisation-aware weights; validation itself runs
in float, the INT8 score is measured on the exported ONNX (``benchmarks/frontier.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ...config import RunConfig, method_options
from ...errors import KdrestoreError
from ...models.fakequant import set_fake_quant
from .kd import KnowledgeDistillation


@dataclass
class QATOptions:
    qat_start: float = 0.8
    float_share: float = 0.0


class QuantAwareDistillation(KnowledgeDistillation):
    """``kd`` + INT8 fake-quantisation of the student from ``distill.options.qat_start`` on."""

    name = "kd-qat"

    def __init__(self, cfg: RunConfig, teachers: list[nn.Module] | None = None) -> None:
        super().__init__(cfg, teachers)
        self.opts: QATOptions = method_options(cfg, QATOptions)
        start = self.opts.qat_start
        if start <= 0 or (start >= 1 and start != int(start)):
            raise KdrestoreError(f"distill.options.qat_start: a fraction in (0, 1) or a step number >= 1, got {start}")
        if start < 1 and cfg.train.time_budget is not None:
            raise KdrestoreError("distill.options.qat_start: a share of train.steps means nothing when "
                                 "train.time_budget ends the run on the clock; give the step number to start at")
        self.start_step = int(round(start * cfg.train.steps)) if start < 1 else int(start)
        if not 0.0 <= self.opts.float_share < 1.0:
            raise KdrestoreError(f"distill.options.float_share: a share in [0, 1), got {self.opts.float_share}")
        self.quantising = False

    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        super().setup(student, device, example)
        if set_fake_quant(student, False) == 0:
            raise KdrestoreError(f"distill.method kd-qat: the student {type(student).__name__} has no "
                                 "fake-quantisation points (use a model such as repdn)")
        self.student = student

    def quantised(self, step: int) -> bool:
        """Whether ``step`` runs fake-quantised (from ``qat_start``, less the evenly spread float share)."""
        if step < self.start_step:
            return False
        k, f = step - self.start_step, self.opts.float_share
        return int((k + 1) * f) == int(k * f)

    def begin_step(self, step: int) -> None:
        on = self.quantised(step)
        if on != self.quantising:
            set_fake_quant(self.student, on)
            self.quantising = on
