"""The identity "degradation": the input is the clean image itself (clean -> clean training).

Used to train reconstruction teachers, e.g. the auto-encoder teacher of KDDN (Hong et al., "Distilling
Image Dehazing with Heterogeneous Task Imitation", CVPR 2020), with the ordinary synth data pipeline:
``data.train: {kind: synth, degradation: identity}``. It takes no parameters and draws nothing.
"""
from __future__ import annotations

import numpy as np

from .base import Degraded, SeedLike, as_float_image, jsonable, like_input, make_rng, seed_record


def identity(clean: np.ndarray, seed: SeedLike) -> Degraded:
    """``y = x``: a float32 copy of ``clean`` (layout kept); ``seed`` is validated, not used."""
    make_rng(seed)
    img = as_float_image(clean, "clean")
    params = {"degradation": "identity", "seed": seed_record(seed)}
    return Degraded(like_input(img.copy(), clean), like_input(img, clean), jsonable(params))

