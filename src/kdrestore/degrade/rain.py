"""Synthetic rain: motion-blurred streak layers, optional rain veil, screen/additive composition.

Streak layer (the usual "noise + motion blur" recipe): sparse random seeds (each pixel with
probability ``density``, intensity U(0.5, 1)) are convolved with an anti-aliased line kernel of
``length`` pixels, ``width`` pixels and ``angle`` degrees from the vertical (positive leans the top
of the streak to the right, "/"); the blur is normalised so an isolated seed keeps its peak
intensity, then scaled by ``brightness`` and clipped to [0, 1]. Seeds are drawn on a canvas padded by
the kernel radius, so streaks enter from outside the frame. Several layers (heavy rain) are merged by
screen blending, ``S = 1 - prod(1 - S_i)``. The layer is gray (``H x W``), shared by all channels.

Composition with the clean background ``B`` (the heavy-rain model of Yang et al., CVPR 2017):

    O = t * (B (+) S) + (1 - t) * A,     t = 1 - veil

where ``(+)`` is ``"additive"`` (``clip(B + S, 0, 1)``, default, the published ``O = B + S`` model)
or ``"screen"`` (``B + S - B S``, no clipping, smooth), and ``A`` the veil (airlight) brightness.

Presets: :func:`rain100l_like` (Rain100L-like: one sparse layer of thin, short, dim streaks) and
:func:`rain100h_like` (Rain100H-like: 3-5 dense layers of long, wide, bright streaks at several
angles, plus a veil of strength 0.1-0.3).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import fftconvolve
from torch import Tensor

from .base import Degraded, Range, SeedLike, as_float_image, draw, draw_int, jsonable, \
    like_input, make_rng, seed_record

COMPOSE_MODES = ("additive", "screen")

RAIN100L: dict[str, Any] = {"n_layers": 1, "density": (0.002, 0.005), "length": (10.0, 25.0),
                            "angle": (-20.0, 20.0), "angle_jitter": 0.0, "width": (0.8, 1.3),
                            "brightness": (0.45, 0.75), "veil": 0.0}
RAIN100H: dict[str, Any] = {"n_layers": (3, 5), "density": (0.0004, 0.001),
                            "length": (20.0, 45.0), "angle": (-30.0, 30.0), "angle_jitter": 15.0,
                            "width": (1.2, 2.5), "brightness": (0.6, 0.95), "veil": (0.1, 0.3),
                            "veil_airlight": (0.8, 1.0)}


def line_kernel(length: float, angle: float, width: float = 1.0) -> np.ndarray:
    """Anti-aliased line (motion-blur) kernel, odd square size, summing to 1.

    ``angle`` in degrees from the vertical, positive = "/" (top to the right). A pixel's weight is
    ``clip(width/2 + 0.5 - dist, 0, 1)``, ``dist`` its distance to the centred segment.
    """
    if not (length >= 1 and width > 0 and math.isfinite(angle)):
        raise ValueError(f"need length >= 1, width > 0, finite angle; got {length}, {width}, {angle}")
    half = int(math.ceil(length / 2 + width / 2 + 1))
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    th = math.radians(angle)
    uy, ux = math.cos(th), -math.sin(th)
    s = np.clip(yy * uy + xx * ux, -(length - 1) / 2, (length - 1) / 2)
    dist = np.hypot(yy - s * uy, xx - s * ux)
    k = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def streak_layer(h: int, w: int, seed: SeedLike, *, density: float, length: float, angle: float,
                 width: float = 1.0, brightness: float = 1.0) -> np.ndarray:
    """One rain-streak layer ``H x W`` in [0, 1] (float32); see the module doc for the recipe."""
    if not 0 <= density <= 1 or not 0 <= brightness <= 1:
        raise ValueError(f"density and brightness must lie in [0, 1], got {density}, {brightness}")
    rng = make_rng(seed)
    k = line_kernel(length, angle, width)
    p = k.shape[0] // 2
    hp, wp = h + 2 * p, w + 2 * p
    u = rng.random((hp, wp), dtype=np.float32)
    # u < density marks a seed; u / density is then U(0, 1), giving the intensity U(0.5, 1)
    seeds = np.where(u < density, 0.5 + 0.5 * u / max(density, 1e-12), 0.0).astype(np.float32)
    blurred = fftconvolve(seeds, k / k.max(), mode="same")[p:p + h, p:p + w]
    blurred[blurred < 1e-6] = 0.0  # FFT round-off, keep the background exactly streak-free
    return np.clip(blurred * brightness, 0.0, 1.0).astype(np.float32)


def compose_rain(clean: np.ndarray, layer: np.ndarray, *, mode: str = "additive",
                 veil: float = 0.0, veil_airlight: float = 0.9) -> np.ndarray:
    """``t (B (+) S) + (1 - t) A`` with ``t = 1 - veil`` (see module doc); keeps clean's layout."""
    if mode not in COMPOSE_MODES:
        raise ValueError(f"mode must be one of {COMPOSE_MODES}, got {mode!r}")
    if not 0 <= veil <= 1 or not 0 <= veil_airlight <= 1:
        raise ValueError(f"veil and veil_airlight must lie in [0, 1], got {veil}, {veil_airlight}")
    img = as_float_image(clean, "clean")
    s = as_float_image(layer, "rain layer")
    if s.shape[:2] != img.shape[:2] or s.shape[2] not in (1, img.shape[2]):
        raise ValueError(f"rain layer shape {np.shape(layer)} does not match image {img.shape}")
    out = np.clip(img + s, 0.0, 1.0) if mode == "additive" else img + s - img * s
    if veil > 0:
        out = (1 - veil) * out + veil * veil_airlight
    return like_input(out.astype(np.float32), clean)


def add_rain(clean: np.ndarray, seed: SeedLike, *, n_layers: int | tuple[int, int] = 1,
             density: Range = (0.002, 0.005), length: Range = (10.0, 25.0),
             angle: Range = (-20.0, 20.0), angle_jitter: float = 0.0, width: Range = 1.0,
             brightness: Range = (0.45, 0.75), veil: Range = 0.0,
             veil_airlight: Range = (0.8, 1.0), mode: str = "additive") -> Degraded:
    """Rainy image from ``n_layers`` streak layers (+ optional veil); ``Degraded.layer`` = ``S``.

    Numbers are fixed, ``(lo, hi)`` pairs drawn uniformly: ``angle`` once per image, each layer then
    adds U(-angle_jitter, angle_jitter); density/length/width/brightness are drawn per layer.
    """
    img = as_float_image(clean, "clean")
    h, w, _ = img.shape
    rng = make_rng(seed)
    n = draw_int(rng, n_layers, "n_layers", low=1)
    base = draw(rng, angle, "angle", low=-90.0, high=90.0)
    total = np.zeros((h, w), np.float32)
    specs = []
    for _ in range(n):
        spec = {"density": draw(rng, density, "density", low=0.0, high=1.0),
                "length": draw(rng, length, "length", low=1.0),
                "angle": base + (float(rng.uniform(-angle_jitter, angle_jitter)) if angle_jitter else 0.0),
                "width": draw(rng, width, "width", low=0.1),
                "brightness": draw(rng, brightness, "brightness", low=0.0, high=1.0)}
        total = 1 - (1 - total) * (1 - streak_layer(h, w, rng, **spec))
        specs.append(spec)
    v = draw(rng, veil, "veil", low=0.0, high=1.0)
    va = draw(rng, veil_airlight, "veil_airlight", low=0.0, high=1.0) if v > 0 else None
    out = compose_rain(img, total, mode=mode, veil=v, veil_airlight=va or 0.0)
    params = {"degradation": "rain", "n_layers": n, "layers": specs, "veil": v,
              "veil_airlight": va, "mode": mode, "streak_mean": float(total.mean()),
              "seed": seed_record(seed)}
    return Degraded(like_input(out, clean), like_input(img, clean), jsonable(params), total)


def _preset(defaults: dict[str, Any], name: str, clean: np.ndarray, seed: SeedLike,
            overrides: dict[str, Any]) -> Degraded:
    r = add_rain(clean, seed, **{**defaults, **overrides})
    return Degraded(r.degraded, r.clean, {**r.params, "degradation": name}, r.layer)


def rain100l_like(clean: np.ndarray, seed: SeedLike, **overrides: Any) -> Degraded:
    """Light rain (Rain100L-like): one sparse layer of thin, short streaks; see ``RAIN100L``."""
    return _preset(RAIN100L, "rain-light", clean, seed, overrides)


def rain100h_like(clean: np.ndarray, seed: SeedLike, **overrides: Any) -> Degraded:
    """Heavy rain (Rain100H-like): 3-5 dense, long, bright layers plus a veil; see ``RAIN100H``."""
    return _preset(RAIN100H, "rain-heavy", clean, seed, overrides)


# ---------------------------------------------------------------------------------- torch
def streak_layer_torch(seeds: Tensor, length: float, angle: float, width: float = 1.0,
                       brightness: Tensor | float = 1.0) -> Tensor:
    """Differentiable streaks from a seed map ``B x 1 x H x W`` (zero padding at the borders).

    Same normalised line kernel as :func:`streak_layer`; output ``clamp(conv * brightness, 0, 1)``
    with ``brightness`` a scalar or ``[B]``. Gradients flow to ``seeds`` and ``brightness``.
    """
    if seeds.ndim != 4 or seeds.shape[1] != 1:
        raise ValueError(f"seeds must be B x 1 x H x W, got shape {tuple(seeds.shape)}")
    k = line_kernel(length, angle, width)
    kt = torch.from_numpy(k / k.max()).to(seeds)[None, None]
    out = F.conv2d(seeds, kt.flip(-1, -2), padding=k.shape[0] // 2)  # flip: true convolution
    b = torch.as_tensor(brightness, dtype=seeds.dtype, device=seeds.device)
    return (out * (b.view(-1, 1, 1, 1) if b.ndim == 1 else b)).clamp(0.0, 1.0)


def compose_rain_torch(clean: Tensor, layer: Tensor, mode: str = "additive",
                       veil: Tensor | float = 0.0, veil_airlight: Tensor | float = 0.9) -> Tensor:
    """Differentiable :func:`compose_rain` for batches: ``clean`` B x C x H x W, ``layer``
    B x 1 x H x W (or B x C x H x W); ``veil``/``veil_airlight`` scalars or ``[B]``. The additive
    mode clamps (zero gradient where saturated); ``"screen"`` is smooth everywhere."""
    if mode not in COMPOSE_MODES:
        raise ValueError(f"mode must be one of {COMPOSE_MODES}, got {mode!r}")
    if clean.ndim != 4 or layer.ndim != 4 or layer.shape[0] != clean.shape[0] \
            or layer.shape[2:] != clean.shape[2:] or layer.shape[1] not in (1, clean.shape[1]):
        raise ValueError(f"need clean B x C x H x W and layer B x 1|C x H x W, got "
                         f"{tuple(clean.shape)} and {tuple(layer.shape)}")
    out = (clean + layer).clamp(0.0, 1.0) if mode == "additive" else clean + layer - clean * layer
    v = torch.as_tensor(veil, dtype=clean.dtype, device=clean.device)
    a = torch.as_tensor(veil_airlight, dtype=clean.dtype, device=clean.device)
    v = v.view(-1, 1, 1, 1) if v.ndim == 1 else v
    a = a.view(-1, 1, 1, 1) if a.ndim == 1 else a
    return (1 - v) * out + v * a
