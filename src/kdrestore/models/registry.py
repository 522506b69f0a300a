"""The model registry: every architecture (student, teacher, peer, classical baseline) by name.

Every registered model follows one convention: ``forward(x)`` takes a batch ``B x C x H x W`` with
values in [0, 1] (the degraded image) and returns the restored image in the same range, unclipped.
Peers whose published code uses another convention (residual output, 0-255 input, a noise-level
map) convert inside their own ``forward``.
"""
from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import KdrestoreError
from ..registry import Entry, Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

# Modules that register models when imported. One file per architecture.
_ARCH_MODULES = ("dncnn", "ffdnet", "prenet", "gcanet", "aodnet", "dcp", "classical", "mdrn", "msresnet", "dnnet", "tinydehaze", "unet", "nafnet", "restormer", "kddn", "coic", "repdn")
_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _ARCH_MODULES:
            importlib.import_module(f"{__package__}.{mod}")


def register_model(name: str, **meta: Any) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model factory.

    Useful ``meta`` keys: ``task`` (denoise/derain/dehaze/any), ``family`` (peer/student/teacher/
    classical), ``channels`` (1 or 3), ``peer_weights`` (path relative to the peers folder),
    ``published`` (dict of the published score: data set, metric convention, value, source).
    """
    return MODELS.register(name, **meta)  # type: ignore[return-value]


def model_entry(name: str) -> Entry[Callable[..., nn.Module]]:
    _load_all()
    return MODELS.entry(name)


def list_models() -> list[Entry[Callable[..., nn.Module]]]:
    _load_all()
    return list(MODELS)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered model with its default (or the given) hyper-parameters; an argument the
    model does not take is refused by name, with the ones it does."""
    factory = model_entry(name).obj
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise KdrestoreError(f"model '{name}' has no argument {', '.join(map(repr, unknown))} (it takes: "
                                 f"{', '.join(params) or 'none'})")
    return factory(**kwargs)


def peers_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder of published peer weights: the argument, else ``$KDRESTORE_PEERS``, else None."""
    value = explicit or os.environ.get("KDRESTORE_PEERS")
    return Path(value) if value else None


def default_weights(name: str, peers: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the published weights of a peer live, if the model has some and the folder is known."""
    rel = model_entry(name).meta.get("peer_weights")
    root = peers_root(peers)
    if rel is None or root is None:
        return None
    return root / rel
