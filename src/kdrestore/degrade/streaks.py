"""Rain composed from real streak layers: the rain of a paired rain data set laid over other clean images.

A paired rain set (Rain100L's training pairs) holds its rain as ``rainy - clean``: white streaks added to the
background, the same in every channel. :func:`streak_layer_of` keeps that difference as a gray layer ``H x W``
(``clip(rainy - clean, 0, 1)``, mean over channels). :func:`rain_from_streaks` composes several such layers on a
new clean image, the way Yang et al. (CVPR 2017) built their heavy rain from streak layers of several
directions (Rain100H):

    S = sum_i gain_i * resize(window_i(L_i), H x W) [mirrored left-right with probability ``mirror``]
    O = t * clip(B + S, 0, 1) + (1 - t) * A,     t = 1 - veil

Each layer ``L_i`` is drawn from the bank, a window of ``H / (scale_i stretch_i) x W / scale_i`` pixels is cut from
it at a random place and resized to the image: ``scale`` > 1 widens and lengthens the streaks, ``stretch`` > 1
only lengthens them (and steepens slanted ones); ``scale`` grows when the image is larger than the layer allows.
Mirroring changes the fall direction. Parametric streaks (:mod:`.rain`) miss the texture of rendered rain:
PReNet6 (Rain100H weights) scores 7 dB lower on the best parametric heavy rain than on Rain100H, 1.35 dB lower on
lengthened layers of Rain100L's rain at the same input strength (``kdrestore calibrate``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .base import Degraded, Range, SeedLike, as_float_image, draw, draw_int, jsonable, like_input, make_rng, \
    seed_record
from .rain import compose_rain


def streak_layer_of(rainy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """The rain of a pair as a gray layer ``H x W`` (float32): ``clip(rainy - clean, 0, 1)``, channel mean."""
    r, c = as_float_image(rainy, "rainy"), as_float_image(clean, "clean")
    if r.shape != c.shape:
        raise ValueError(f"rainy {r.shape} and clean {c.shape} images differ in shape")
    return np.clip(r - c, 0.0, 1.0).mean(axis=2).astype(np.float32)


def _window(layer: np.ndarray, h: int, w: int, scale: float, stretch: float, rng: np.random.Generator
            ) -> tuple[np.ndarray, float]:
    """A random window of ``layer`` resized to ``h x w``: magnified by ``scale`` (raised until the window fits), and
    by ``stretch`` more along the height."""
    lh, lw = layer.shape
    scale = max(scale, h / (lh * stretch), w / lw)
    wh, ww = min(lh, math.ceil(h / (scale * stretch))), min(lw, math.ceil(w / scale))
    y0, x0 = int(rng.integers(lh - wh + 1)), int(rng.integers(lw - ww + 1))
    win = torch.from_numpy(np.ascontiguousarray(layer[y0:y0 + wh, x0:x0 + ww]))[None, None]
    out = F.interpolate(win, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
    return out, scale


def rain_from_streaks(clean: np.ndarray, seed: SeedLike, *, layers: Sequence[np.ndarray],
                      n_layers: int | tuple[int, int] = (3, 5), scale: Range = (1.0, 1.5),
                      stretch: Range = 1.0, gain: Range = (1.0, 1.5), mirror: float = 0.5, veil: Range = 0.0,
                      veil_airlight: Range = (0.8, 1.0)) -> Degraded:
    """Rainy image from ``n_layers`` streak layers drawn from ``layers`` (see the module doc)."""
    if not len(layers):
        raise ValueError("layers: the streak bank is empty")
    if not 0 <= mirror <= 1:
        raise ValueError(f"mirror must be a probability in [0, 1], got {mirror}")
    img = as_float_image(clean, "clean")
    h, w, _ = img.shape
    rng = make_rng(seed)
    n = draw_int(rng, n_layers, "n_layers", low=1)
    total = np.zeros((h, w), np.float32)
    specs = []
    for _ in range(n):
        index = int(rng.integers(len(layers)))
        layer = np.asarray(layers[index], np.float32)
        if layer.ndim != 2:
            raise ValueError(f"layers[{index}]: a streak layer is H x W, got shape {layer.shape}")
        st = draw(rng, stretch, "stretch", low=1.0)
        win, used = _window(layer, h, w, draw(rng, scale, "scale", low=1.0), st, rng)
        mirrored = bool(rng.random() < mirror)
        g = draw(rng, gain, "gain", low=0.0)
        total += g * (win[:, ::-1] if mirrored else win)
        specs.append({"index": index, "scale": used, "stretch": st, "gain": g, "mirrored": mirrored})
    total = np.clip(total, 0.0, 1.0)
    v = draw(rng, veil, "veil", low=0.0, high=1.0)
    va = draw(rng, veil_airlight, "veil_airlight", low=0.0, high=1.0) if v > 0 else None
    out = compose_rain(img, total, mode="additive", veil=v, veil_airlight=va or 0.0)
    params = {"degradation": "rain-streaks", "n_layers": n, "layers": specs, "veil": v, "veil_airlight": va,
              "streak_mean": float(total.mean()), "bank": len(layers), "seed": seed_record(seed)}
    return Degraded(like_input(out, clean), like_input(img, clean), jsonable(params), total)
