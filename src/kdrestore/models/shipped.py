"""Where the shipped students live and how their model cards are read.

Shipped students are folders ``kdrestore/pretrained/<name>/`` holding ``model.safetensors`` and
``card.json`` (format in ``pretrained/README.md``). This module sits below the engine and the deploy
layer so that both can find them: warm starts (``--init-from NAME``) and ``kdrestore restore``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import KdrestoreError

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
CARD_REQUIRED = ("model", "task", "channels")


def shipped_names(root: Path | None = None) -> list[str]:
    """Names of the pretrained students shipped inside the package (folders with a ``card.json``)."""
    root = root or PRETRAINED_DIR
    return sorted(d.name for d in root.iterdir() if (d / "card.json").is_file()) if root.is_dir() else []


def read_card(folder: Path) -> dict[str, Any]:
    """Read and check a model card (``card.json``)."""
    try:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KdrestoreError(f"cannot read model card {folder / 'card.json'}: {exc}") from exc
    missing = [k for k in CARD_REQUIRED if k not in card] if isinstance(card, dict) else []
    if not isinstance(card, dict) or missing:
        raise KdrestoreError(f"model card {folder / 'card.json'} lacks {', '.join(missing) or 'a mapping'}")
    return card


def card_weights(folder: Path, card: dict[str, Any]) -> Path:
    """The weights file a card names (default ``model.safetensors``)."""
    return folder / str(card.get("weights", "model.safetensors"))
