"""Pixel losses for restoration, by name (the ``train.losses`` list of a recipe)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ...config import LossTerm
from ...evaluate.metrics import ssim_tensor
from ...registry import Registry

PixelLoss = Callable[[Tensor, Tensor], Tensor]
PIXEL_LOSSES: Registry[PixelLoss] = Registry("loss")


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier (smooth L1): mean sqrt((p - t)^2 + eps^2)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM (11x11 Gaussian window), averaged over the batch; needs images of at least 11x11."""
    return 1.0 - ssim_tensor(pred.float(), target.float()).mean()


PIXEL_LOSSES.register("l1", F.l1_loss)
PIXEL_LOSSES.register("mse", F.mse_loss)
PIXEL_LOSSES.register("charbonnier", charbonnier)
PIXEL_LOSSES.register("ssim", ssim_loss)


def pixel_losses(terms: list[LossTerm], pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Weighted pixel loss terms, named ``loss_<name>``."""
    return {f"loss_{t.name}": t.weight * PIXEL_LOSSES.get(t.name)(pred.float(), target.float()) for t in terms}
