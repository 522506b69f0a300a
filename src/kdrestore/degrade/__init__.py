"""Synthetic degradations (haze, rain, noise): pure, seeded functions returning :class:`Degraded`.

Every registered degradation is a callable ``f(clean, seed, **params) -> Degraded`` on numpy float
images ``H x W x C`` / ``H x W`` in [0, 1]; see :mod:`.base` for the conventions and each module
for its physical model. Differentiable torch versions are provided for on-the-fly use.

>>> from kdrestore.degrade import degrade
>>> out = degrade("awgn", img, seed=0, sigma=25)          # doctest: +SKIP
>>> out.degraded, out.clean, out.params["sigma"]          # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..registry import Entry, Registry
from .base import Degraded, SeedLike, as_float_image, make_rng, smooth_field
from .haze import add_haze, add_haze_nonhomogeneous, add_haze_torch, synthetic_depth, \
    transmission, transmission_torch
from .identity import identity
from .noise import add_awgn, add_awgn_blind, add_awgn_torch, add_poisson_gaussian, \
    add_poisson_gaussian_torch
from .rain import RAIN100H, RAIN100L, add_rain, compose_rain, compose_rain_torch, line_kernel, \
    rain100h_like, rain100l_like, streak_layer, streak_layer_torch
from .streaks import rain_from_streaks, streak_layer_of

DegradeFn = Callable[..., Degraded]
DEGRADATIONS: Registry[DegradeFn] = Registry("degradation")

DEGRADATIONS.register("haze", add_haze, task="dehaze",
                      summary="homogeneous haze, I = J t + A (1 - t), t = exp(-beta d)")
DEGRADATIONS.register("haze-nonhomogeneous", add_haze_nonhomogeneous, task="dehaze",
                      summary="patchy haze: beta times a smooth random field")
DEGRADATIONS.register("rain-light", rain100l_like, task="derain",
                      summary="Rain100L-like: one sparse layer of thin streaks")
DEGRADATIONS.register("rain-heavy", rain100h_like, task="derain",
                      summary="Rain100H-like: 3-5 dense layers at several angles plus a veil")
DEGRADATIONS.register("rain-streaks", rain_from_streaks, task="derain",
                      summary="real streak layers (a paired rain set's rain) composed over the image; "
                              "params.streaks names the pairs")
DEGRADATIONS.register("awgn", add_awgn, task="denoise",
                      summary="additive white Gaussian noise, fixed sigma (0-255), unclipped")
DEGRADATIONS.register("awgn-blind", add_awgn_blind, task="denoise",
                      summary="AWGN with sigma drawn uniformly per image from a range")
DEGRADATIONS.register("poisson-gaussian", add_poisson_gaussian, task="denoise",
                      summary="signal-dependent noise, variance a x + b^2")
DEGRADATIONS.register("identity", identity, task="any",
                      summary="no degradation: input = clean image (reconstruction/auto-encoder training)")


def degradation_entry(name: str) -> Entry[DegradeFn]:
    """The registry entry (function and metadata: ``task``, ``summary``) for ``name``."""
    return DEGRADATIONS.entry(name)


def degrade(name: str, clean: np.ndarray, seed: SeedLike, **params: Any) -> Degraded:
    """Apply the registered degradation ``name`` to ``clean`` with ``seed`` and its ``params``."""
    return DEGRADATIONS.get(name)(clean, seed, **params)


__all__ = [
    "DEGRADATIONS", "Degraded", "SeedLike", "RAIN100H", "RAIN100L", "add_awgn", "add_awgn_blind",
    "add_awgn_torch", "add_haze", "add_haze_nonhomogeneous", "add_haze_torch",
    "add_poisson_gaussian", "add_poisson_gaussian_torch", "add_rain", "as_float_image",
    "compose_rain", "compose_rain_torch", "degradation_entry", "degrade", "line_kernel",
    "make_rng", "rain100h_like", "rain100l_like", "rain_from_streaks", "smooth_field", "streak_layer",
    "streak_layer_of",
    "streak_layer_torch", "synthetic_depth", "transmission", "transmission_torch",
]
