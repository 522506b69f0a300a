"""Noise: additive white Gaussian noise (AWGN) and signal-dependent Poisson-Gaussian noise.

AWGN follows the DnCNN protocol: ``y = x + (sigma / 255) n``, ``n ~ N(0, 1)`` i.i.d. per pixel and
channel (gray or color), added in float and NOT clipped, so ``y`` may leave [0, 1]. ``sigma`` is on
the 0-255 scale; a fixed sigma gives the non-blind setting, a range ``(lo, hi)`` draws one sigma per
image uniformly (blind setting, e.g. DnCNN-B's [0, 55]).

Poisson-Gaussian (Foi et al., 2008), two documented variants, ``a`` the shot-noise gain and ``b``
the read-noise standard deviation, both on the [0, 1] intensity scale:

* ``"heteroscedastic"`` (default): ``y = x + sqrt(a x + b^2) n`` -- the Gaussian approximation,
  variance ``a x + b^2``; differentiable (see :func:`add_poisson_gaussian_torch`);
* ``"poisson"``: ``y = a P(x / a) + b n``, ``P`` Poisson -- the exact scaled-Poisson model with the
  same mean and variance (``a = 0`` means no shot noise).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Degraded, Range, SeedLike, as_float_image, draw, is_number, jsonable, like_input, \
    make_rng, seed_record

PG_MODELS = ("heteroscedastic", "poisson")


def add_awgn(clean: np.ndarray, seed: SeedLike, *, sigma: Range = 25.0,
             clip: bool = False) -> Degraded:
    """``y = x + sigma/255 * n`` (unclipped unless ``clip``); ``sigma`` a number or a range."""
    img = as_float_image(clean, "clean")
    rng = make_rng(seed)
    blind = not is_number(sigma)
    s = draw(rng, sigma, "sigma", low=0.0)
    noisy = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(s / 255.0)
    if clip:
        np.clip(noisy, 0.0, 1.0, out=noisy)
    params: dict[str, Any] = {"degradation": "awgn-blind" if blind else "awgn", "sigma": s,
                              "blind": blind, "clipped": clip, "seed": seed_record(seed)}
    if blind:
        params["sigma_range"] = [float(v) for v in sigma]  # type: ignore[union-attr]
    return Degraded(like_input(noisy.astype(np.float32), clean), like_input(img, clean),
                    jsonable(params))


def add_awgn_blind(clean: np.ndarray, seed: SeedLike, *, sigma_range: tuple[float, float] = (0.0, 55.0),
                   clip: bool = False) -> Degraded:
    """Blind AWGN: one sigma per image drawn uniformly from ``sigma_range`` (0-255 scale)."""
    lo_hi = tuple(sigma_range)
    if len(lo_hi) != 2:
        raise ValueError(f"sigma_range must be a (low, high) pair, got {sigma_range!r}")
    return add_awgn(clean, seed, sigma=lo_hi, clip=clip)


def add_poisson_gaussian(clean: np.ndarray, seed: SeedLike, *, a: Range = (1e-3, 1e-2),
                         b: Range = (2e-3, 3e-2), model: str = "heteroscedastic",
                         clip: bool = False) -> Degraded:
    """Signal-dependent noise with variance ``a x + b^2`` (see module doc for ``model``)."""
    if model not in PG_MODELS:
        raise ValueError(f"model must be one of {PG_MODELS}, got {model!r}")
    img = as_float_image(clean, "clean")
    rng = make_rng(seed)
    ga = draw(rng, a, "a", low=0.0)
    gb = draw(rng, b, "b", low=0.0)
    if model == "heteroscedastic":
        std = np.sqrt(np.float32(ga) * img + np.float32(gb * gb))
        noisy = img + std * rng.standard_normal(img.shape, dtype=np.float32)
    else:
        shot = ga * rng.poisson(img.astype(np.float64) / ga) if ga > 0 else img.astype(np.float64)
        noisy = shot + gb * rng.standard_normal(img.shape)
    noisy = noisy.astype(np.float32)
    if clip:
        np.clip(noisy, 0.0, 1.0, out=noisy)
    params = {"degradation": "poisson-gaussian", "model": model, "a": ga, "b": gb,
              "clipped": clip, "seed": seed_record(seed)}
    return Degraded(like_input(noisy, clean), like_input(img, clean), jsonable(params))


# ---------------------------------------------------------------------------------- torch
def _batch_param(v: Tensor | float, x: Tensor, name: str) -> Tensor:
    """A scalar or per-sample ``[B]`` value as a ``B x 1 x 1 x 1`` tensor; negative -> ValueError."""
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    if t.ndim == 1 and t.shape[0] == x.shape[0]:
        t = t.view(-1, *([1] * (x.ndim - 1)))
    elif t.ndim not in (0, x.ndim) or (t.ndim == x.ndim and t.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"{name} must be a scalar, a [B] tensor (B={x.shape[0]}) or broadcastable "
                         f"to {tuple(x.shape)}, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    return t


def add_awgn_torch(x: Tensor, sigma: Tensor | float, generator: torch.Generator | None = None
                   ) -> Tensor:
    """``x + sigma/255 * n`` for a batch ``B x C x H x W``; ``sigma`` scalar or per-sample ``[B]``.

    Not clipped. Differentiable w.r.t. ``x`` and ``sigma``; ``generator`` makes it reproducible.
    """
    if x.ndim < 2:
        raise ValueError(f"x must be a batch B x ... (e.g. B x C x H x W), got shape {tuple(x.shape)}")
    s = _batch_param(sigma, x, "sigma")
    n = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + (s / 255.0) * n


def add_poisson_gaussian_torch(x: Tensor, a: Tensor | float, b: Tensor | float,
                               generator: torch.Generator | None = None) -> Tensor:
    """Heteroscedastic ``x + sqrt(a x + b^2) n`` (reparameterised, differentiable); ``a``/``b``
    scalars or per-sample ``[B]``. ``x`` is clamped at 0 inside the square root only."""
    if x.ndim < 2:
        raise ValueError(f"x must be a batch B x ... (e.g. B x C x H x W), got shape {tuple(x.shape)}")
    ga, gb = _batch_param(a, x, "a"), _batch_param(b, x, "b")
    n = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    var = ga * x.clamp_min(0) + gb * gb
    return x + torch.sqrt(var.clamp_min(1e-12)) * n
