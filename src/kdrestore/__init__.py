"""kdrestore: knowledge distillation for small, fast image restoration models."""
from __future__ import annotations

__version__ = "0.1.0"
