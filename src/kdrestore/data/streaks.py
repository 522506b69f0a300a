"""The streak bank of the ``rain-streaks`` degradation: the rain layers of a paired rain folder, read once.

A recipe names the pairs and the part of them it may use::

    data:
      train: {kind: synth, degradation: rain-streaks, path: .../BSDS500-train-color, holdout: 13,
              params: {streaks: "${KDRESTORE_DATA}/train/Rain100L-train", streaks_holdout: 20, n_layers: [3, 5]}}

``data.train`` draws its layers from all pairs but the last ``streaks_holdout``, ``data.val`` only from those,
so validation rain is rain no training image carried. Only the rain (``rainy - clean``) is used: none of the
pairs' backgrounds enters the data.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import KdrestoreError
from ..recipe import ConfigError, expand_env
from .holdout import Part, holdout_split
from .imageio import read_image
from .pairing import find_pairs

STREAK_KEYS = ("streaks", "streaks_holdout")


@lru_cache(maxsize=4)
def _bank(folder: str, holdout: int | None, part: Part, where: str) -> tuple[np.ndarray, ...]:
    from ..degrade import streak_layer_of

    pairs = holdout_split(find_pairs(folder), holdout, part, f"{where}.streaks")
    layers = []
    for rainy, clean in pairs:
        try:
            layers.append(streak_layer_of(read_image(rainy, mode="rgb"), read_image(clean, mode="rgb")))
        except ValueError as exc:
            raise KdrestoreError(f"{where}.streaks: pair {rainy.name} / {clean.name}: {exc}") from exc
    return tuple(layers)


def streak_bank(folder: str | os.PathLike[str], holdout: int | None, part: Part,
                where: str = "data") -> tuple[np.ndarray, ...]:
    """The gray rain layers of the pairs in ``folder`` (``part`` of them after holding out the last ``holdout``)."""
    path = Path(folder)
    if not path.is_dir():
        raise KdrestoreError(f"{where}.streaks: folder not found: {path}")
    return _bank(str(path.resolve()), holdout, part, where)


def streak_source(degradation: str | None, params: Mapping[str, Any], where: str) -> tuple[str, int | None] | None:
    """``(folder, streaks_holdout)`` that a ``rain-streaks`` section's params name (environment expanded), None for
    another degradation; a missing or malformed field is an error naming it."""
    if degradation != "rain-streaks":
        extra = [k for k in STREAK_KEYS if k in params]
        if extra:
            raise KdrestoreError(f"{where}.params.{extra[0]} applies to the rain-streaks degradation, not {degradation}")
        return None
    folder, holdout = params.get("streaks"), params.get("streaks_holdout")
    if not isinstance(folder, str):
        raise KdrestoreError(f"{where}.params.streaks: rain-streaks needs the folder of rain pairs its layers come "
                             f"from (e.g. \"${{KDRESTORE_DATA}}/train/Rain100L-train\"), got {folder!r}")
    if holdout is not None and (isinstance(holdout, bool) or not isinstance(holdout, int)):
        raise KdrestoreError(f"{where}.params.streaks_holdout must be a whole number of pairs, got {holdout!r}")
    try:
        return expand_env(folder, f"{where}.params.streaks"), holdout
    except ConfigError as exc:
        raise KdrestoreError(str(exc)) from exc


def resolve_streaks(degradation: str, params: Mapping[str, Any], part: Part, where: str) -> dict[str, Any]:
    """``params`` with ``streaks`` (a folder) replaced by the loaded ``layers`` for ``rain-streaks``; as is otherwise."""
    source = streak_source(degradation, params, where)
    if source is None:
        return dict(params)
    out = {k: v for k, v in params.items() if k not in STREAK_KEYS}
    out["layers"] = streak_bank(source[0], source[1], part, where)
    return out
