"""kdrestore: knowledge distillation for small, fast image restoration models."""
from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["__version__", "load", "load_default"]


def __getattr__(name: str) -> Any:
    """Lazy public API: ``kdrestore.load`` / ``kdrestore.load_default`` import torch only when first used."""
    if name in ("load", "load_default"):
        from .deploy import restore

        return getattr(restore, name)
    raise AttributeError(f"module 'kdrestore' has no attribute {name!r}")
