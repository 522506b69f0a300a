"""kdrestore: knowledge distillation for small, fast image restoration models."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    """Lazy public API: ``kdrestore.load`` imports torch and the models only when first used."""
    if name == "load":
        from .deploy.restore import load

        return load
    raise AttributeError(f"module 'kdrestore' has no attribute {name!r}")
