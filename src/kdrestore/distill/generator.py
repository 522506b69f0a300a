"""A degradation-aware image generator for data-free distillation: latent code + label -> degraded image.

The generator makes *clean content* ``J`` from a spatial latent code ``z``; the degradation label picks
which of our differentiable degradation models (:mod:`kdrestore.degrade`) turns it into the degraded
input the teachers expect, so gradients flow from any loss on the degraded image back to the generator:

* ``haze``:  ``x = J t + A (1 - t)``, ``t = exp(-beta d)`` (:func:`~kdrestore.degrade.add_haze_torch`),
  ``d`` the ground-plane depth prior of :func:`~kdrestore.degrade.synthetic_depth` (the ``haze`` synthesis;
  a depth learned by the adversary collapsed to uniform thick haze), ``beta``/``A`` drawn per sample
  (default ``(0.6, 1.8)``/``(0.7, 1.0)``);
* ``rain``:  ``x = (1 - v) clip(J + S, 0, 1) + v a`` (:func:`~kdrestore.degrade.compose_rain_torch`), the
  streak layer ``S``, veil ``v`` and veil light ``a`` drawn like ``rain-heavy`` (Rain100H-like preset);
* ``noise``: ``x = J + sigma/255 n`` (AWGN, unclipped; default sigma 25).

Images are generated at ``size`` (>= the student's ``crop``, for teachers that need context) and each
sample carries a random ``crop`` window. Every random draw of a sample comes from one numpy generator
seeded by the sample's seed (:func:`draw_latents`): a sample is a function of (seed, label, generator
weights). Per-label parameters are overridden in the recipe's ``data.train.params`` (``noise: {sigma: 15}``).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.latent import LABELS
from ..degrade import RAIN100H, add_haze_torch, add_rain, compose_rain_torch, synthetic_depth
from ..degrade.base import draw
from ..errors import KdrestoreError

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "haze": {"beta": (0.6, 1.8), "airlight": (0.7, 1.0)},
    "rain": dict(RAIN100H),
    "noise": {"sigma": 25.0},
}


def synthesis_params(params: dict[str, Any], where: str = "data.train.params") -> dict[str, dict[str, Any]]:
    """Per-label degradation parameters: the defaults updated by ``params[label]``; unknown keys fail."""
    out = {k: dict(v) for k, v in DEFAULT_PARAMS.items()}
    for label in LABELS:
        extra = params.get(label) or {}
        if not isinstance(extra, dict):
            raise KdrestoreError(f"{where}.{label} must be a mapping, got {extra!r}")
        unknown = sorted(set(extra) - set(out[label]))
        if unknown:
            raise KdrestoreError(f"{where}.{label}: unknown keys {unknown} (known: {sorted(out[label])})")
        out[label].update(extra)
    return out


@dataclass
class Latents:
    """The random part of a batch: latent codes and every degradation draw (one row per sample)."""

    labels: Tensor  # [B] index into LABELS
    z: Tensor  # B x Z x H/4 x W/4
    window: Tensor  # B x 2: top, left of the student's crop
    depth: Tensor  # B x 1 x H x W haze depth prior
    beta: Tensor  # [B] haze
    airlight: Tensor  # [B] haze
    rain: Tensor  # B x 1 x H x W streak layer
    veil: Tensor  # [B] rain veil
    veil_light: Tensor  # [B]
    noise: Tensor  # B x C x H x W, N(0, 1)
    sigma: Tensor  # [B] 0-255

    def to(self, device: Any) -> Latents:
        return Latents(**{k: v.to(device) for k, v in vars(self).items()})


def draw_latents(seeds: Sequence[int], labels: Sequence[str], *, channels: int, size: int,
                 latent_channels: int, params: dict[str, dict[str, Any]], crop: int | None = None) -> Latents:
    """Draw the latent code, the crop window and the degradation of each sample from
    ``numpy.random.default_rng(seed)``; images are ``size`` pixels, windows ``crop`` (default: ``size``)."""
    crop = crop or size
    if size % 4 or not 0 < crop <= size:
        raise KdrestoreError(f"the generator makes images of a multiple of 4 pixels, at least the crop: got {size} "
                             f"and crop {crop} (data.train.crop, distill.options.context)")
    b, h = len(seeds), size
    z = np.zeros((b, latent_channels, h // 4, h // 4), np.float32)
    window = np.zeros((b, 2), np.int64)
    depth = np.zeros((b, 1, h, h), np.float32)
    scal = np.zeros((5, b), np.float32)  # beta, airlight, veil, veil light, sigma
    rain = np.zeros((b, 1, h, h), np.float32)
    noise = np.zeros((b, channels, h, h), np.float32)
    for i, (seed, label) in enumerate(zip(seeds, labels)):
        rng = np.random.default_rng(int(seed))
        z[i] = rng.standard_normal(z.shape[1:], dtype=np.float32)
        window[i] = rng.integers(0, size - crop + 1, 2)
        p = params[label]
        if label == "haze":
            depth[i, 0] = synthetic_depth(h, h, rng)
            scal[0, i] = draw(rng, p["beta"], "haze.beta", low=0.0)
            scal[1, i] = draw(rng, p["airlight"], "haze.airlight", low=0.0, high=1.0)
        elif label == "rain":
            r = add_rain(np.zeros((h, h), np.float32), rng, **p)
            rain[i, 0] = r.layer
            scal[2, i], scal[3, i] = r.params["veil"], r.params["veil_airlight"] or 0.0
        else:
            scal[4, i] = draw(rng, p["sigma"], "noise.sigma", low=0.0)
            noise[i] = rng.standard_normal(noise.shape[1:], dtype=np.float32)
    t = torch.from_numpy
    return Latents(torch.tensor([LABELS.index(lab) for lab in labels]), t(z), t(window), t(depth), t(scal[0]),
                   t(scal[1]), t(rain), t(scal[2]), t(scal[3]), t(noise), t(scal[4]))


SHIFTABLE: dict[str, str] = {"haze.beta": "beta", "haze.airlight": "airlight", "rain.veil": "veil",
                             "rain.veil_airlight": "veil_light", "noise.sigma": "sigma"}  # param -> Latents field


class DegradationShift(nn.Module):
    """Adversarially learned moves of the scalar degradation parameters, inside their physical ranges.

    For every parameter of :data:`SHIFTABLE` given as a range ``(lo, hi)`` in ``params`` (a fixed value is
    left alone) one learned offset ``u`` moves each sample's draw ``v`` of that label to
    ``lo + (hi - lo) sigmoid(logit((v - lo) / (hi - lo)) + u)``: always inside ``(lo, hi)``, the draw
    itself at ``u = 0``, and differentiable in ``u``, so the generator's adversarial phase can push the
    haze thickness, airlight, rain veil or noise level toward where the student disagrees with the teacher.
    """

    def __init__(self, params: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.ranges: dict[str, tuple[float, float]] = {}
        for key in SHIFTABLE:
            label, name = key.split(".")
            value = params.get(label, {}).get(name)
            if isinstance(value, (list, tuple)) and len(value) == 2 and float(value[1]) > float(value[0]):
                self.ranges[key] = (float(value[0]), float(value[1]))
        self.offset = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(torch.zeros(())) for k in self.ranges})

    def forward(self, lat: Latents) -> Latents:
        fields = dict(vars(lat))
        for key, (lo, hi) in self.ranges.items():
            label, field_name = key.split(".")[0], SHIFTABLE[key]
            v = fields[field_name]
            u = ((v - lo) / (hi - lo)).clamp(1e-4, 1 - 1e-4)
            moved = lo + (hi - lo) * torch.sigmoid(torch.logit(u) + self.offset[key.replace(".", "__")])
            fields[field_name] = torch.where(lat.labels.to(v.device) == LABELS.index(label), moved, v)
        return Latents(**fields)

    def midpoints(self) -> dict[str, float]:
        """Where the middle of each range has moved to (for the logs)."""
        return {key: lo + (hi - lo) * float(torch.sigmoid(self.offset[key.replace(".", "__")].detach()))
                for key, (lo, hi) in self.ranges.items()}


def crop_windows(x: Tensor, window: Tensor, crop: int) -> Tensor:
    """Each sample's ``crop`` x ``crop`` window (``window[i] = (top, left)``); differentiable."""
    if x.shape[-1] == crop and x.shape[-2] == crop:
        return x
    return torch.stack([img[:, int(t):int(t) + crop, int(left):int(left) + crop] for img, (t, left) in zip(x, window)])


def total_variation(img: Tensor) -> Tensor:
    """Mean absolute difference between vertical and horizontal neighbours."""
    return (img[..., 1:, :] - img[..., :-1, :]).abs().mean() + (img[..., :, 1:] - img[..., :, :-1]).abs().mean()


def mode_seeking(clean: Tensor, z: Tensor, cap: float | None = None) -> Tensor:
    """Mean over neighbouring pairs of the batch of image distance / latent distance (to maximise), each
    ratio clipped at ``cap``: past it, pushing samples apart only saturates them (binary blobs)."""
    if clean.shape[0] < 2:
        return clean.new_zeros(())
    d_img = (clean - clean.roll(1, 0)).abs().flatten(1).mean(1)
    d_z = (z - z.roll(1, 0)).abs().flatten(1).mean(1)
    ratio = d_img / (d_z + 1e-5)
    return (ratio if cap is None else ratio.clamp(max=cap)).mean()


def probe_seeds(seed: int, count: int) -> list[int]:
    """Fixed seeds for sample grids, so grids at different steps show the same latent codes."""
    return [zlib.crc32(f"datafree-probe/{seed}/{k}".encode()) for k in range(count)]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.LeakyReLU(0.2))


class DegradationAwareGenerator(nn.Module):
    """``(z, label) -> (degraded, clean)``: a small upsampling conv net for the content, then the label's physics.

    The content depends on ``z`` only: with a label-conditioned content the adversary gave each label its
    own look (dark scenes for haze, bright ones for noise) and a multi-weather student learned to tell the
    tasks apart by content instead of by degradation (it darkened noisy Set12 images like hazy ones).
    From ``z`` (``latent_channels`` x H/4 x W/4), two conv blocks at 1/4 resolution, then two x2 bilinear
    upsamplings with conv blocks give the clean image:
    ``J = sigmoid(l + c)`` with a luminance logit ``l`` and, for colour, a chroma logit ``c`` (zero mean over
    the channels; ``|c| <= 2 chroma`` when ``chroma`` is set). Bound it for per-channel teachers (gray
    DnCNN on colour): they are blind to colour, and the adversary then turns the content into saturated
    complementary blobs on which the teacher is right and the student wrong (a colour student taught that
    way denoised Set12 3 dB worse than with ``chroma: 0.5``). Colour teachers need the colour free (GCANet:
    ``chroma: 0.5`` cost ~2 dB on SOTS). Per-sample group normalisation: a
    sample does not depend on its batch mates. Fully convolutional: any size 4k.
    """

    def __init__(self, channels: int = 3, latent_channels: int = 16, width: int = 32,
                 chroma: float | None = None) -> None:
        super().__init__()
        self.channels, self.latent_channels, self.chroma = channels, latent_channels, chroma
        self.low = nn.Sequential(_block(latent_channels, 2 * width), _block(2 * width, 2 * width))
        self.up1 = nn.Sequential(_block(2 * width, width), _block(width, width))
        self.up2 = nn.Sequential(_block(width, width), _block(width, width))
        self.to_clean = nn.Conv2d(width, 1 + (channels if channels > 1 else 0), 3, padding=1)

    def content(self, z: Tensor) -> Tensor:
        """The clean image ``B x C x 4h x 4w`` in (0, 1)."""
        f = self.low(z)
        f = self.up1(F.interpolate(f, scale_factor=2.0, mode="bilinear", align_corners=False))
        f = self.up2(F.interpolate(f, scale_factor=2.0, mode="bilinear", align_corners=False))
        out = self.to_clean(f)
        logit = out[:, :1]
        if self.channels > 1:
            c = out[:, 1:] if self.chroma is None else self.chroma * torch.tanh(out[:, 1:])
            logit = logit + c - c.mean(1, keepdim=True)
        return torch.sigmoid(logit)

    def forward(self, lat: Latents) -> tuple[Tensor, Tensor]:
        """``(degraded, clean)`` at the full generated size."""
        clean = self.content(lat.z)
        return degrade_batch(clean, lat), clean


def degrade_batch(clean: Tensor, lat: Latents) -> Tensor:
    """Each sample through the degradation of its label (differentiable in ``clean``)."""
    hazy = add_haze_torch(clean, lat.depth, lat.beta, lat.airlight)
    rainy = compose_rain_torch(clean, lat.rain, "additive", lat.veil, lat.veil_light)
    noisy = clean + lat.sigma.view(-1, 1, 1, 1) / 255.0 * lat.noise
    kind = lat.labels.view(-1, 1, 1, 1)
    return torch.where(kind == LABELS.index("haze"), hazy, torch.where(kind == LABELS.index("rain"), rainy, noisy))


def sample_grid(clean: Tensor, degraded: Tensor, labels: Sequence[str], pad: int = 2) -> np.ndarray:
    """An ``H x W x 3`` float grid: one row per label, each sample as a (clean | degraded) pair, white gaps."""
    rows: dict[str, list[Tensor]] = {}
    for c, d, lab in zip(clean.detach().cpu(), degraded.detach().cpu(), labels):
        rows.setdefault(lab, []).extend([c, d])
    n = max(len(v) for v in rows.values())
    ch, h, w = clean.shape[1:]
    grid = torch.ones(3, pad + len(rows) * (h + pad), pad + n * (w + pad))
    for r, tiles in enumerate(rows.values()):
        for k, tile in enumerate(tiles):
            y, x = pad + r * (h + pad), pad + k * (w + pad)
            grid[:, y:y + h, x:x + w] = tile.expand(3, -1, -1).clamp(0, 1)
    return grid.permute(1, 2, 0).numpy()

