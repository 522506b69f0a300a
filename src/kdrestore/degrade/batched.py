"""Whole-batch synthetic degradations in torch, on the batch's own device (the training fast path).

:func:`degrade_batch` applies a registered degradation to a clean batch ``B x C x H x W`` in [0, 1],
drawing every per-sample parameter from the same distributions as the per-sample numpy functions of
this package (:func:`~.noise.add_awgn`, :func:`~.noise.add_poisson_gaussian`, :func:`~.haze.add_haze`,
:func:`~.rain.add_rain` with the ``rain-light``/``rain-heavy`` presets, :func:`~.streaks.rain_from_streaks`,
``identity``), with all
randomness from one ``torch.Generator``. The parameters actually used come back per sample (``[B]``
tensors), so tests can compare their ranges with the per-sample path and methods can route by them
(``sigma`` for HMDS). The pixels are not bit-identical to the numpy path (other random streams; the
synthetic depth prior and the streak blur are re-implemented in torch), the distributions are.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .rain import RAIN100H, RAIN100L

Params = dict[str, Tensor]
BATCHED = ("identity", "awgn", "awgn-blind", "poisson-gaussian", "haze", "rain-light", "rain-heavy", "rain-streaks")


def _uniform(value: Any, b: int, g: torch.Generator, device: torch.device, name: str) -> Tensor:
    """``[B]`` draws of a number (constant) or a ``(lo, hi)`` range (uniform), as float32."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full((b,), float(value), device=device)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") from None
    if hi < lo:
        raise ValueError(f"{name}: low {lo} > high {hi}")
    return lo + (hi - lo) * torch.rand(b, generator=g, device=device)


def _int_uniform(value: Any, b: int, g: torch.Generator, device: torch.device) -> Tensor:
    if isinstance(value, int):
        return torch.full((b,), value, device=device, dtype=torch.long)
    lo, hi = (int(v) for v in value)
    return torch.randint(lo, hi + 1, (b,), generator=g, device=device)


def _bcast(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _identity(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
    return x.clone(), {}


def _awgn(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
    sigma = _uniform(p.get("sigma", 25.0), x.shape[0], g, x.device, "sigma")
    return x + _bcast(sigma / 255.0) * torch.randn(x.shape, generator=g, device=x.device), {"sigma": sigma}


def _awgn_blind(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
    return _awgn(x, g, {"sigma": tuple(p.get("sigma_range", (0.0, 55.0)))}, depth)


def _poisson_gaussian(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None
                      ) -> tuple[Tensor, Params]:
    b = x.shape[0]
    a = _uniform(p.get("a", (1e-3, 1e-2)), b, g, x.device, "a")
    s = _uniform(p.get("b", (2e-3, 3e-2)), b, g, x.device, "b")
    if p.get("model", "heteroscedastic") == "poisson":
        shot = _bcast(a) * torch.poisson(x / _bcast(a).clamp_min(1e-12), generator=g)
        noisy = shot + _bcast(s) * torch.randn(x.shape, generator=g, device=x.device)
    else:
        std = torch.sqrt(_bcast(a) * x + _bcast(s * s))
        noisy = x + std * torch.randn(x.shape, generator=g, device=x.device)
    return noisy, {"a": a, "b": s}


def synthetic_depth_batch(b: int, h: int, w: int, g: torch.Generator, device: torch.device, *,
                          horizon: tuple[float, float] = (0.25, 0.5), roughness: float = 0.3,
                          gamma: float = 2.0, scale: float = 0.3) -> Tensor:
    """``B x 1 x H x W`` depth prior in [0, 1], the torch form of :func:`~.haze.synthetic_depth`:
    ground plane below a random horizon, mixed with a two-octave smooth random field."""
    y_h = _uniform(horizon, b, g, device, "horizon") * h
    y = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    v = ((y[None] - y_h[:, None]) / (h - y_h[:, None]).clamp_min(1e-6)).clamp(0.0, 1.0)
    ground = ((1 - v) ** gamma)[:, None, :, None].expand(b, 1, h, w)
    field = torch.zeros(b, 1, h, w, device=device)
    spacing = scale * min(h, w)
    for k in range(2):
        gh, gw = max(2, math.ceil(h / max(spacing, 1.0)) + 1), max(2, math.ceil(w / max(spacing, 1.0)) + 1)
        coarse = torch.rand(b, 1, gh, gw, generator=g, device=device)
        field += F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False) * 0.5 ** k
        spacing /= 2.0
    lo = field.amin(dim=(2, 3), keepdim=True)
    hi = field.amax(dim=(2, 3), keepdim=True)
    field = (field - lo) / (hi - lo).clamp_min(1e-12)
    return ((1 - roughness) * ground + roughness * field).clamp(0.0, 1.0)


def _haze(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
    b, c, h, w = x.shape
    unknown = set(p) - {"beta", "airlight", "depth_units", "colored_airlight", "airlight_tint"}
    if unknown:
        raise ValueError(f"haze: the batched pipeline does not support {sorted(unknown)} "
                         "(use the per-sample pipeline)")
    beta = _uniform(p.get("beta", (0.6, 1.8)), b, g, x.device, "beta")
    a = _uniform(p.get("airlight", (0.7, 1.0)), b, g, x.device, "airlight")
    air = a[:, None].expand(b, c)
    if p.get("colored_airlight", False) and c > 1:
        tint = float(p.get("airlight_tint", 0.1))
        air = (air * (1 + tint * (2 * torch.rand(b, c, generator=g, device=x.device) - 1))).clamp(0, 1)
    d = synthetic_depth_batch(b, h, w, g, x.device) if depth is None else depth
    t = torch.exp(-_bcast(beta) * d)
    return x * t + air[:, :, None, None] * (1 - t), {"beta": beta, "airlight": a}


def _line_kernels(length: Tensor, angle: Tensor, width: Tensor, size: int) -> Tensor:
    """``[N] -> N x size x size`` anti-aliased line kernels scaled to peak 1 (as :func:`~.rain.line_kernel`
    divided by its maximum)."""
    half = size // 2
    r = torch.arange(-half, half + 1, device=length.device, dtype=torch.float32)
    yy, xx = r[:, None], r[None, :]
    th = torch.deg2rad(angle)[:, None, None]
    uy, ux = torch.cos(th), -torch.sin(th)
    lim = ((length - 1) / 2)[:, None, None]
    s = torch.minimum(torch.maximum(yy * uy + xx * ux, -lim), lim)
    dist = torch.hypot(yy - s * uy, xx - s * ux)
    k = (width[:, None, None] / 2 + 0.5 - dist).clamp(0.0, 1.0)
    return k / k.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def _rain(preset: Mapping[str, Any]) -> Callable[..., tuple[Tensor, Params]]:
    def rain(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
        o = {**preset, **p}
        if o.get("mode", "additive") != "additive":
            raise ValueError("rain: the batched pipeline composes additively only")
        b, _, h, w = x.shape
        dev = x.device
        n = _int_uniform(o["n_layers"], b, g, dev)
        n_max = int(o["n_layers"] if isinstance(o["n_layers"], int) else max(o["n_layers"]))
        base = _uniform(o["angle"], b, g, dev, "angle")
        jit = float(o.get("angle_jitter", 0.0))
        longest = max(o["length"]) if not isinstance(o["length"], (int, float)) else o["length"]
        widest = max(o["width"]) if not isinstance(o["width"], (int, float)) else o["width"]
        size = 2 * int(math.ceil(longest / 2 + widest / 2 + 1)) + 1
        pad = size // 2
        hp, wp = h + 2 * pad, w + 2 * pad
        total = torch.zeros(b, h, w, device=dev)
        density_used = torch.zeros(b, n_max, device=dev)
        for layer in range(n_max):
            active = (layer < n).float()
            dens = _uniform(o["density"], b, g, dev, "density") * active
            length = _uniform(o["length"], b, g, dev, "length")
            angle = base + (jit * (2 * torch.rand(b, generator=g, device=dev) - 1) if jit else 0.0)
            width = _uniform(o["width"], b, g, dev, "width")
            bright = _uniform(o["brightness"], b, g, dev, "brightness")
            u = torch.rand(b, hp, wp, generator=g, device=dev)
            d = dens[:, None, None]
            seeds = torch.where(u < d, 0.5 + 0.5 * u / d.clamp_min(1e-12), torch.zeros_like(u))
            kern = torch.zeros(b, hp, wp, device=dev)
            kern[:, :size, :size] = _line_kernels(length, angle, width, size)
            kern = torch.roll(kern, shifts=(-pad, -pad), dims=(1, 2))  # centre at the origin
            blurred = torch.fft.irfft2(torch.fft.rfft2(seeds) * torch.fft.rfft2(kern), s=(hp, wp))
            streak = (blurred[:, pad:pad + h, pad:pad + w] * bright[:, None, None]).clamp(0.0, 1.0)
            streak = torch.where(streak < 1e-6, torch.zeros_like(streak), streak)
            total = 1 - (1 - total) * (1 - streak)
            density_used[:, layer] = dens
        veil = _uniform(o.get("veil", 0.0), b, g, dev, "veil")
        veil_a = _uniform(o.get("veil_airlight", (0.8, 1.0)), b, g, dev, "veil_airlight")
        out = (x + total[:, None]).clamp(0.0, 1.0)
        out = (1 - _bcast(veil)) * out + _bcast(veil * veil_a)
        return out, {"n_layers": n.float(), "angle": base, "veil": veil, "streak_mean": total.mean(dim=(1, 2))}
    return rain


_STREAK_BANKS: dict[tuple[int, str], tuple[Any, Tensor]] = {}


def _streak_bank(layers: Any, device: torch.device) -> Tensor:
    """The layers as one ``N x 1 x h x w`` tensor on ``device``, cut to their common size (top left), kept per bank."""
    key = (id(layers), str(device))
    if key not in _STREAK_BANKS or _STREAK_BANKS[key][0] is not layers:
        if not len(layers) or any(getattr(layer, "ndim", 0) != 2 for layer in layers):
            raise ValueError("layers: a non-empty bank of H x W streak layers is needed")
        h, w = min(layer.shape[0] for layer in layers), min(layer.shape[1] for layer in layers)
        bank = torch.stack([torch.as_tensor(layer[:h, :w], dtype=torch.float32) for layer in layers])
        while len(_STREAK_BANKS) >= 4:  # a training run uses one bank; tests and notebooks may make several
            _STREAK_BANKS.pop(next(iter(_STREAK_BANKS)))
        _STREAK_BANKS[key] = (layers, bank[:, None].to(device))
    return _STREAK_BANKS[key][1]


def _rain_streaks(x: Tensor, g: torch.Generator, p: Mapping[str, Any], depth: Tensor | None) -> tuple[Tensor, Params]:
    """:func:`~.streaks.rain_from_streaks` for a batch: each layer's window (magnified by ``scale``, lengthened by
    ``stretch``, mirrored, at a uniform place) is resampled with ``grid_sample``; windows may start between pixels."""
    bank = _streak_bank(p["layers"], x.device)
    b, _, h, w = x.shape
    dev = x.device
    lh, lw = bank.shape[-2:]
    n_spec = p.get("n_layers", (3, 5))
    n = _int_uniform(n_spec, b, g, dev)
    n_max = int(n_spec if isinstance(n_spec, int) else max(n_spec))
    mirror = float(p.get("mirror", 0.5))
    total = torch.zeros(b, 1, h, w, device=dev)
    for layer in range(n_max):
        index = torch.randint(len(bank), (b,), generator=g, device=dev)
        stretch = _uniform(p.get("stretch", 1.0), b, g, dev, "stretch").clamp_min(1.0)
        scale = torch.maximum(_uniform(p.get("scale", (1.0, 1.5)), b, g, dev, "scale").clamp_min(1.0),
                              torch.clamp_min(h / (lh * stretch), w / lw))
        wh, ww = h / (scale * stretch) / lh, w / scale / lw  # window size as a share of the layer
        y0 = (1 - wh) * torch.rand(b, generator=g, device=dev)
        x0 = (1 - ww) * torch.rand(b, generator=g, device=dev)
        flip = torch.where(torch.rand(b, generator=g, device=dev) < mirror, -1.0, 1.0)
        gain = _uniform(p.get("gain", (1.0, 1.5)), b, g, dev, "gain") * (layer < n).float()
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = ww * flip, 2 * x0 + ww - 1
        theta[:, 1, 1], theta[:, 1, 2] = wh, 2 * y0 + wh - 1
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        total += _bcast(gain) * F.grid_sample(bank[index], grid, mode="bilinear", align_corners=False)
    total = total.clamp(0.0, 1.0)
    veil = _uniform(p.get("veil", 0.0), b, g, dev, "veil")
    veil_a = _uniform(p.get("veil_airlight", (0.8, 1.0)), b, g, dev, "veil_airlight")
    out = (1 - _bcast(veil)) * (x + total).clamp(0.0, 1.0) + _bcast(veil * veil_a)
    return out, {"n_layers": n.float(), "veil": veil, "streak_mean": total.mean(dim=(1, 2, 3))}


_FUNCTIONS: dict[str, Callable[..., tuple[Tensor, Params]]] = {
    "identity": _identity, "awgn": _awgn, "awgn-blind": _awgn_blind, "poisson-gaussian": _poisson_gaussian,
    "haze": _haze, "rain-light": _rain(RAIN100L), "rain-heavy": _rain(RAIN100H), "rain-streaks": _rain_streaks,
}


def degrade_batch(name: str, clean: Tensor, generator: torch.Generator, params: Mapping[str, Any] | None = None,
                  depth: Tensor | None = None) -> tuple[Tensor, Params]:
    """``(degraded, per-sample parameters)`` for a clean batch ``B x C x H x W`` in [0, 1].

    ``params`` as for the per-sample degradation of the same name (numbers fixed, ``(lo, hi)`` drawn
    per sample). ``depth`` (``B x 1 x H x W``, haze only) replaces the synthetic depth prior.
    """
    if name not in _FUNCTIONS:
        raise ValueError(f"degradation '{name}' has no batched form (batched: {', '.join(BATCHED)}); "
                         "use the per-sample pipeline")
    return _FUNCTIONS[name](clean, generator, dict(params or {}), depth)
