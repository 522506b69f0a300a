"""Contrastive regularisation (CR) in a frozen feature space, and hooks that make any model one.

AECR-Net (Wu et al., "Contrastive Learning for Compact Single Image Dehazing", CVPR 2021) pulls the
restored image (anchor) towards the clear image (positive) and pushes it away from the degraded input
(negative) in the features of a frozen network:

    CR = sum_i w_i * d(phi_i(a), phi_i(p)) / (d(phi_i(a), phi_i(n)) + eps)

The paper uses VGG-19 features with weights 1/32, 1/16, 1/8, 1/4, 1; no VGG can be downloaded here,
so :class:`HookedFeatures` turns the frozen teacher's encoder (any model + module paths) into phi.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..hooks import resolve_module


class _StopForward(Exception):
    """Raised inside a hook once every point has fired, to skip the rest of the model's forward."""


class HookedFeatures(nn.Module):
    """A feature extractor ``x -> [output of model.<point> for point in points]`` built with forward hooks.

    Hooks are attached only while :meth:`forward` runs, so the model behaves normally elsewhere.
    Each point's output is its first call during the forward (a tuple output keeps its first element,
    as in :class:`~kdrestore.distill.hooks.FeatureHooks`); with ``stop_early`` (default) the model's
    forward is cut short once every point has fired (the layers after the last point never run).
    An unknown path raises KeyError (:class:`~kdrestore.registry.UnknownNameError`) listing the
    nearest module names (via :func:`~kdrestore.distill.hooks.resolve_module`).
    """

    def __init__(self, model: nn.Module, points: Sequence[str], stop_early: bool = True) -> None:
        super().__init__()
        if isinstance(points, str) or not points:
            raise ValueError("points must be a non-empty list of module paths")
        for p in points:
            resolve_module(model, p, role="feature model")  # bad path: KeyError naming the nearest
        self.model = model
        self.points = list(points)
        self.stop_early = stop_early

    def forward(self, x: Tensor) -> list[Tensor]:
        captured: dict[str, Tensor] = {}
        wanted = set(self.points)

        def hook_for(path: str):
            def hook(_m: nn.Module, _inp: object, out: object) -> None:
                if path not in captured:
                    captured[path] = out[0] if isinstance(out, (tuple, list)) else out  # type: ignore[assignment]
                if self.stop_early and len(captured) == len(wanted):
                    raise _StopForward

            return hook

        handles = [resolve_module(self.model, p).register_forward_hook(hook_for(p)) for p in wanted]
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [p for p in self.points if p not in captured]
        if missing:
            raise RuntimeError(f"modules {missing} were not called during the forward of {type(self.model).__name__}")
        return [captured[p] for p in self.points]


def _distance(a: Tensor, b: Tensor, kind: str) -> Tensor:
    if kind == "l1":
        return F.l1_loss(a.float(), b.float())
    if kind == "mse":
        return F.mse_loss(a.float(), b.float())
    raise ValueError(f"unknown distance '{kind}' (known: l1, mse)")


class ContrastiveRegularization(nn.Module):
    """AECR-Net contrastive regularisation in the space of a frozen ``features`` extractor.

    ``features(x)`` must return a list of feature maps (e.g. :class:`HookedFeatures` on the teacher).
    The extractor is frozen here: its parameters get ``requires_grad=False`` and it stays in eval mode
    even when a parent module calls ``.train()``. Positive and negative features are computed without
    grad; the gradient flows to the anchor only (through both numerator and denominator).
    ``weights`` default to 1 per feature (AECR-Net's VGG weights were 1/32, 1/16, 1/8, 1/4, 1);
    ``distance`` is 'l1' (as in the paper) or 'mse'.
    """

    def __init__(
        self,
        features: nn.Module,
        weights: Sequence[float] | None = None,
        distance: Literal["l1", "mse"] = "l1",
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        if distance not in ("l1", "mse"):
            raise ValueError(f"unknown distance '{distance}' (known: l1, mse)")
        self.features = features
        self.weights = None if weights is None else [float(w) for w in weights]
        self.distance = distance
        self.eps = eps
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features.eval()

    def train(self, mode: bool = True) -> "ContrastiveRegularization":
        """Set train mode on this module but keep the frozen feature extractor in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    def _phi(self, x: Tensor) -> list[Tensor]:
        out = self.features(x)
        feats = [out] if isinstance(out, Tensor) else list(out)
        if self.weights is not None and len(self.weights) != len(feats):
            raise ValueError(f"{len(self.weights)} weights given for {len(feats)} feature maps")
        return feats

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        """``sum_i w_i * d(phi_i(anchor), phi_i(positive)) / (d(phi_i(anchor), phi_i(negative)) + eps)``."""
        if not (anchor.shape == positive.shape == negative.shape):
            raise ValueError(
                f"anchor {tuple(anchor.shape)}, positive {tuple(positive.shape)} and negative "
                f"{tuple(negative.shape)} must have the same shape"
            )
        self.features.eval()  # in case someone switched it directly
        with torch.no_grad():
            fp = self._phi(positive)
            fn = self._phi(negative)
        fa = self._phi(anchor)
        weights = self.weights or [1.0] * len(fa)
        loss = anchor.new_zeros((), dtype=torch.float32)
        for w, a, p, n in zip(weights, fa, fp, fn):
            loss = loss + w * _distance(a, p, self.distance) / (_distance(a, n, self.distance) + self.eps)
        return loss
