"""CoIC training: the pixel loss plus a rain-/detail-aware contrastive loss on the instance embeddings of a
``coic`` model (:mod:`kdrestore.models.coic`), in two stages.

Paper: Ran et al., "Harnessing Joint Rain-/Detail-aware Representations to Eliminate Intricate Rains",
ICLR 2024. What it states: the encoder learns, by contrast, an embedding that separates an image both
from the same background under other rain (rain-aware) and from the same scene with its details
removed (detail-aware); a momentum key encoder embeds the positive and the negatives; rain layers of
other images come from a rain layer bank.

Our reading (weights, counts and schedule are ours; options under ``distill.options``), with ``x`` the
rainy input, ``y`` its clean target, ``r = x - y`` its rain layer (synthetic and real pairs alike), ``q``
the encoder's feature map of ``x`` and ``K`` the key encoder's. As in the authors' code the loss compares
the 1/8-resolution feature maps, normalised per position, by their mean per-position dot product
(pooled embeddings of a fresh encoder are nearly identical for all images and barely learn):

* **stage 1** (steps ``< stage1_steps``): modulation off, the backbone alone learns ``train.losses``;
* **stage 2**: modulation on, everything trains; before each step ``K <- m K + (1 - m) E`` (``momentum``);
* **positive**: ``flip_w(K(flip_w(x)))`` (flipped back, so positions align); **negatives** per sample:
  ``blur_negatives`` Gaussian blurs of ``y`` (sigma drawn in ``blur_sigma`` per negative; detail-aware),
  and ``rain_negatives`` composites ``clip(y + r', 0, 1)`` (rain-aware) with ``r'`` drawn from the bank of
  the last ``bank_size`` rain layers of earlier batches (before the bank holds any: other samples of the
  batch);
* **loss**: ``train.losses + contrastive_weight * InfoNCE(q; positive; negatives, temperature)``.
* **whole-image embedding** (the authors' setting; ``model.args.context_size: S`` with
  ``data.train.context: S``): the encoder embeds the whole rainy image resized to ``S x S`` instead of
  the crop, and ``x``, ``y`` and ``r`` above are the whole pair's views (the bank then holds view-sized
  rain layers).

Draws use a generator seeded by ``(train.seed, step)``; the key encoder and the bank are saved with the
training state, so a resumed run continues exactly. Under DDP stage 1 leaves the encoder unused: set
``stage1_steps: 0`` there (the trainer's DDP wrapper does not look for unused parameters).
"""
from __future__ import annotations

import copy
import math
import zlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import RunConfig
from ..losses.pixel import pixel_losses
from ..method import Method
from ...errors import KdrestoreError
from ...models.coic import CoICNet
from .kd import teacherless_options


@dataclass
class CoICOptions:
    stage1_steps: int = 0
    contrastive_weight: float = 0.2
    temperature: float = 0.2
    momentum: float = 0.99
    blur_negatives: int = 2
    blur_sigma: tuple[float, float] = (1.0, 3.0)
    rain_negatives: int = 2
    bank_size: int = 64


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur (radius ``ceil(3 sigma)``, reflect padding; replicate on tiny images)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect" if r < min(x.shape[-2:]) else "replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def rain_detail_infonce(q: Tensor, pos: Tensor, neg: Tensor, temperature: float) -> Tensor:
    """InfoNCE with the positive first. ``q``, ``pos``: ``B x C [x H x W]`` unit vectors (per position);
    ``neg``: ``B x N x C [x H x W]``; the similarity is the dot product averaged over positions."""
    positions = q[0, 0].numel()
    q, pos, neg = q.flatten(1), pos.flatten(1), neg.flatten(2)
    l_pos = (q * pos).sum(-1, keepdim=True) / positions
    l_neg = torch.einsum("bd,bnd->bn", q, neg) / positions
    logits = torch.cat([l_pos, l_neg], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


class CoICTraining(Method):
    """CoIC (see the module docstring for the stages, the exemplars and the loss)."""

    name = "coic"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.opts: CoICOptions = teacherless_options(cfg, CoICOptions, "coic", "needs no teacher")
        o = self.opts
        if o.stage1_steps < 0 or o.bank_size < 1 or o.blur_negatives < 0 or o.rain_negatives < 0:
            raise KdrestoreError("distill.options: stage1_steps, blur_negatives and rain_negatives must be >= 0 "
                                 "and bank_size >= 1")
        if o.blur_negatives + o.rain_negatives == 0:
            raise KdrestoreError("distill.options: the contrastive loss needs at least one negative "
                                 "(blur_negatives or rain_negatives)")
        if not 0.0 <= o.momentum < 1.0 or o.temperature <= 0 or not 0 < o.blur_sigma[0] <= o.blur_sigma[1]:
            raise KdrestoreError("distill.options: momentum must be in [0, 1), temperature > 0 and "
                                 "blur_sigma an increasing pair of positive numbers")
        self.stage, self.updates = 1, 0
        self.bank: Tensor | None = None

    def setup(self, student: nn.Module, device: Any, example: dict[str, Any]) -> None:
        if not isinstance(student, CoICNet):
            raise KdrestoreError(f"distill.method coic trains a CoIC model (model.name: coic), got "
                                 f"{type(student).__name__}")
        has_view = "context" in example
        if bool(student.context_size) != has_view or (has_view and example["context"].shape[-1] != student.context_size):
            raise KdrestoreError(
                f"coic: model.args.context_size ({student.context_size}) and data.train.context "
                f"({example['context'].shape[-1] if has_view else None}) must be set together, to the same size "
                "(the encoder embeds the whole image's view the data gives beside each crop)")
        self.model, self.device = student, device
        self.key_encoder = copy.deepcopy(student.encoder).to(device).eval()
        for p in self.key_encoder.parameters():
            p.requires_grad_(False)
        self._generator = torch.Generator()

    def stage_of(self, step: int) -> int:
        return 1 if step < self.opts.stage1_steps else 2

    @torch.no_grad()
    def begin_step(self, step: int) -> None:
        self.stage = self.stage_of(step)
        self.model.modulate = self.stage == 2
        self._generator.manual_seed(zlib.crc32(f"coic/{self.cfg.train.seed}/{step}".encode()))
        if self.stage == 2:
            for k, q in zip(self.key_encoder.parameters(), self.model.encoder.parameters()):
                k.lerp_(q.detach(), 1.0 - self.opts.momentum)
            self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"key_encoder": self.key_encoder.state_dict(), "updates": self.updates,
                "bank": self.bank.cpu() if self.bank is not None else torch.zeros(0)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.key_encoder.load_state_dict(state["key_encoder"])
            self.updates = int(state["updates"])
            self.bank = state["bank"].to(self.device) if state["bank"].numel() else None

    # ---- exemplars and losses -----------------------------------------------------------------
    def _push(self, rain: Tensor) -> None:
        """Keep the last ``bank_size`` rain layers (the bank restarts if the crop size changes)."""
        if self.bank is not None and self.bank.shape[1:] != rain.shape[1:]:
            self.bank = None
        self.bank = (rain if self.bank is None else torch.cat([self.bank, rain]))[-self.opts.bank_size:]

    def negatives(self, y: Tensor, rain: Tensor) -> list[Tensor]:
        """Detail-aware (blurred clean), then rain-aware (clean + another rain layer) exemplars, ``B x C x H x W``."""
        o, g, out = self.opts, self._generator, []
        for _ in range(o.blur_negatives):
            sigma = o.blur_sigma[0] + (o.blur_sigma[1] - o.blur_sigma[0]) * float(torch.rand((), generator=g))
            out.append(gaussian_blur(y, sigma))
        bank = self.bank if self.bank is not None and self.bank.shape[1:] == rain.shape[1:] else None
        for n in range(o.rain_negatives):
            if bank is not None:
                layers = bank[torch.randint(len(bank), (len(y),), generator=g).to(bank.device)]
            elif len(y) > 1:
                layers = rain.roll(n % (len(y) - 1) + 1, dims=0)  # other samples of this batch
            else:
                continue
            out.append((y + layers).clamp(0.0, 1.0))
        return out

    def forward(self, student: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return student(batch["input"], context=batch.get("context"))

    def losses(self, batch: dict[str, Tensor], output: Tensor, step: int) -> dict[str, Tensor]:
        terms = pixel_losses(self.cfg.train.losses, output, batch["target"])
        terms["coic_contrastive"] = output.new_zeros(())
        # the exemplars are built on what the encoder saw: the crop, or the whole image's view
        x, y = (batch["context"], batch["context_target"]) if "context" in batch else (batch["input"], batch["target"])
        rain = (x - y).detach()
        if self.stage == 2 and self.opts.contrastive_weight > 0:
            q = self.model.instance_features
            if q is None:
                raise KdrestoreError("coic: the model computed no embedding in stage 2 (is modulation off?)")
            with torch.no_grad():
                negs = self.negatives(y, rain)
                keys = F.normalize(self.key_encoder.features(torch.cat([x.flip(-1), *negs]).float()), dim=1)
            if negs:
                b = len(x)
                pos, neg = keys[:b].flip(-1), keys[b:].unflatten(0, (len(negs), b)).transpose(0, 1)
                loss = rain_detail_infonce(F.normalize(q.float(), dim=1), pos, neg, self.opts.temperature)
                terms["coic_contrastive"] = self.opts.contrastive_weight * loss
        self._push(rain)
        return terms
