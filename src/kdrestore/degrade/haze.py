"""Haze by the atmospheric scattering model (Koschmieder; McCartney; used by RESIDE and AOD-Net).

    I(x) = J(x) t(x) + A (1 - t(x)),        t(x) = exp(-beta(x) d(x))

J is the clean image, I the hazy one, A the global atmospheric light (airlight), d the scene depth
and beta the scattering coefficient. ``I`` is a per-pixel convex combination of J and A, so it stays
in [0, 1]; ``beta = 0`` gives ``t = 1`` and returns J exactly.

Depth. A given depth map is either ``"normalized"`` (divided by its maximum, so the farthest pixel
has d = 1; the RESIDE-ITS-like defaults ``beta in (0.6, 1.8)``, ``A in (0.7, 1.0)`` are meant
for this) or ``"metres"`` (used as is; beta is then per metre, typically 0.05-0.3).
Without a depth map, :func:`synthetic_depth` builds a ground-plane prior (see there).

Non-homogeneous haze (NH-HAZE-like patches) multiplies beta by a smooth random field
``m(x) = 1 - s + 2 s f(x)`` with ``f`` in [0, 1] (mean about 1, range [1 - s, 1 + s]).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Degraded, Range, SeedLike, as_float_image, draw, jsonable, like_input, make_rng, \
    seed_record, smooth_field

DEPTH_UNITS = ("normalized", "metres")


def synthetic_depth(h: int, w: int, seed: SeedLike, *, horizon: Range = (0.25, 0.5),
                    roughness: Range = 0.3, gamma: float = 2.0, scale: float = 0.3) -> np.ndarray:
    """A plausible relative depth map ``H x W`` in [0, 1] (float32) for images without depth.

    Prior: a ground plane seen from a level camera plus clutter. A horizon row ``y_h`` is drawn
    at ``horizon`` (a fraction of the height from the top); it and everything above it (sky, far
    scene) is at d = 1. Below it ``d_ground = (1 - v) ** gamma`` with ``v = (y - y_h) / (H - y_h)``
    (0 at the horizon, 1 at the bottom row): a convex fall-off, a smooth stand-in for the ``1/v``
    perspective of a ground plane without its step at the horizon. Objects are modelled by mixing
    in a smooth random field (:func:`~.base.smooth_field`): ``d = (1 - r) d_ground + r field``.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    rng = make_rng(seed)
    y_h = draw(rng, horizon, "horizon", low=0.0, high=1.0) * h
    r = draw(rng, roughness, "roughness", low=0.0, high=1.0)
    y = np.arange(h, dtype=np.float64) + 0.5
    v = (y - y_h) / max(h - y_h, 1e-6)
    d_ground = np.broadcast_to((1 - np.clip(v, 0.0, 1.0))[:, None] ** gamma, (h, w))
    field = smooth_field(rng, h, w, scale=scale) if r > 0 else 0.0
    return np.clip((1 - r) * d_ground + r * field, 0.0, 1.0).astype(np.float32)


def transmission(depth: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """``t = exp(-beta * depth)`` as float32 (``beta`` a scalar or a map broadcastable to depth)."""
    b = np.asarray(beta, np.float32)
    if not np.isfinite(b).all() or (b < 0).any():
        raise ValueError(f"beta must be finite and non-negative, got min {float(b.min()):.4g}")
    return np.exp(-b * np.asarray(depth, np.float32)).astype(np.float32)


def _prepare_depth(depth: Any, h: int, w: int, units: str) -> np.ndarray:
    if units not in DEPTH_UNITS:
        raise ValueError(f"depth_units must be one of {DEPTH_UNITS}, got {units!r}")
    d = np.asarray(depth, np.float32)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.shape != (h, w):
        raise ValueError(f"depth must be H x W (or H x W x 1) matching the image {h} x {w}, "
                         f"got shape {np.shape(depth)}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("depth must be finite and non-negative")
    if units == "normalized":
        m = float(d.max())
        d = d / m if m > 0 else d
    return d.astype(np.float32)


def _airlight(rng: np.random.Generator, airlight: Range, channels: int, colored: bool,
              tint: float) -> np.ndarray:
    a = draw(rng, airlight, "airlight", low=0.0, high=1.0)
    if not colored or channels == 1:
        return np.full(channels, a, np.float32)
    if not 0 <= tint <= 1:
        raise ValueError(f"airlight_tint must lie in [0, 1], got {tint}")
    return np.clip(a * (1 + tint * rng.uniform(-1, 1, channels)), 0, 1).astype(np.float32)


def add_haze(clean: np.ndarray, seed: SeedLike, *, depth: np.ndarray | None = None,
             depth_units: str = "normalized", beta: Range = (0.6, 1.8),
             airlight: Range = (0.7, 1.0), colored_airlight: bool = False,
             airlight_tint: float = 0.1, nonhomogeneity: Range = 0.0,
             patch_scale: float = 0.3) -> Degraded:
    """Hazy image ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.

    ``depth``: H x W map (see module doc for ``depth_units``); None uses :func:`synthetic_depth`.
    ``beta``/``airlight``: number or ``(lo, hi)`` range. ``colored_airlight`` perturbs A per
    channel by up to ``airlight_tint`` (relative). ``nonhomogeneity`` s in [0, 1] makes beta a
    smooth field ``beta (1 - s + 2 s f)`` with correlation length ``patch_scale`` (0: homogeneous).
    """
    img = as_float_image(clean, "clean")
    h, w, c = img.shape
    rng = make_rng(seed)
    b = draw(rng, beta, "beta", low=0.0)
    a = _airlight(rng, airlight, c, colored_airlight, airlight_tint)
    if depth is None:
        d = synthetic_depth(h, w, rng)
        source, units = "synthetic", "normalized"
    else:
        d = _prepare_depth(depth, h, w, depth_units)
        source, units = "given", depth_units
    s = draw(rng, nonhomogeneity, "nonhomogeneity", low=0.0, high=1.0)
    beta_map: float | np.ndarray = b
    if s > 0:
        beta_map = b * (1 - s + 2 * s * smooth_field(rng, h, w, scale=patch_scale))
    t = transmission(d, beta_map)[:, :, None]
    hazy = (img * t + a * (1 - t)).astype(np.float32)
    params = {"degradation": "haze-nonhomogeneous" if s > 0 else "haze", "beta": b,
              "airlight": a, "nonhomogeneity": s, "depth_source": source, "depth_units": units,
              "t_min": float(t.min()), "t_mean": float(t.mean()), "seed": seed_record(seed)}
    if s > 0:
        params["patch_scale"] = patch_scale
    return Degraded(like_input(hazy, clean), like_input(img, clean), jsonable(params))


def add_haze_nonhomogeneous(clean: np.ndarray, seed: SeedLike, *,
                            nonhomogeneity: Range = (0.5, 0.9), patch_scale: float = 0.3,
                            **kwargs: Any) -> Degraded:
    """Patchy haze: :func:`add_haze` with a spatially varying beta (defaults s in (0.5, 0.9))."""
    return add_haze(clean, seed, nonhomogeneity=nonhomogeneity, patch_scale=patch_scale, **kwargs)


# ---------------------------------------------------------------------------------- torch
def _per_sample(x: Tensor | float, b: int, name: str, ref: Tensor, channels: int | None = None
                ) -> Tensor:
    """Broadcastable ``B x K x 1 x 1`` (or ``B x 1 x H x W`` maps) view of a per-sample value."""
    t = torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
    if t.ndim == 0:
        return t.view(1, 1, 1, 1)
    if t.ndim == 1 and t.shape[0] == b:
        return t.view(b, 1, 1, 1)
    if t.ndim == 2 and t.shape[0] == b and t.shape[1] in {1, channels or 1}:
        return t.view(b, t.shape[1], 1, 1)
    if t.ndim == 4 and t.shape[0] in (1, b) and t.shape[1] == 1:
        return t
    raise ValueError(f"{name} must be a scalar, [B], [B, 1]{', [B, C]' if channels else ''} or "
                     f"[B, 1, H, W] with B={b}, got shape {tuple(t.shape)}")


def transmission_torch(depth: Tensor, beta: Tensor | float) -> Tensor:
    """Differentiable ``exp(-beta * depth)``; ``depth`` ``B x 1 x H x W``, ``beta`` [B] or a map."""
    if depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth must be B x 1 x H x W, got shape {tuple(depth.shape)}")
    return torch.exp(-_per_sample(beta, depth.shape[0], "beta", depth) * depth)


def add_haze_torch(clean: Tensor, depth: Tensor, beta: Tensor | float,
                   airlight: Tensor | float) -> Tensor:
    """Differentiable hazing of a batch: ``clean * t + A * (1 - t)``, ``t = exp(-beta * depth)``.

    ``clean`` B x C x H x W in [0, 1]; ``depth`` B x 1 x H x W used as is (normalise it yourself);
    ``beta`` scalar, [B] or a B x 1 x H x W map (non-homogeneous); ``airlight`` scalar, [B],
    [B, 1] or [B, C]. Gradients flow to all four inputs. Matches :func:`add_haze` numerically.
    """
    if clean.ndim != 4:
        raise ValueError(f"clean must be B x C x H x W, got shape {tuple(clean.shape)}")
    if depth.ndim != 4 or depth.shape[0] != clean.shape[0] or depth.shape[2:] != clean.shape[2:]:
        raise ValueError(f"depth must be B x 1 x H x W matching clean {tuple(clean.shape)}, "
                         f"got {tuple(depth.shape)}")
    t = transmission_torch(depth.to(clean.dtype), beta)
    a = _per_sample(airlight, clean.shape[0], "airlight", clean, channels=clean.shape[1])
    return clean * t + a * (1 - t)
