"""BatchNorm-statistics matching (DeepInversion, Yin et al., "Dreaming to Distill", CVPR 2020).

A network trained with BatchNorm stores the mean and variance its training images produced at every
BN layer; synthetic inputs whose per-layer batch statistics match them look, to that network, like its
training data: ``R = mean_l (|mu_l(x) - running_mean_l|_2 + |var_l(x) - running_var_l|_2)``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn


class BatchNormStatistics:
    """Forward hooks on every BN layer (with running statistics) of ``models``; they record the layer's
    statistic gap only inside :meth:`capture`, so the models behave normally elsewhere."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.layers = [m for model in models for m in model.modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]
        self.active, self.terms = False, []  # type: bool, list[Tensor]
        for layer in self.layers:
            layer.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], _out: Tensor) -> None:
        if self.active:
            x = inputs[0].float()
            mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
            self.terms.append(torch.linalg.vector_norm(mean - module.running_mean)
                              + torch.linalg.vector_norm(var - module.running_var))

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Record the gaps of the forwards run inside the block (earlier records are dropped)."""
        self.active, self.terms = True, []
        try:
            yield
        finally:
            self.active = False

    def loss(self) -> Tensor | None:
        """The mean recorded gap (differentiable w.r.t. the inputs), or None when nothing was recorded."""
        terms, self.terms = self.terms, []
        return torch.stack(terms).mean() if terms else None
