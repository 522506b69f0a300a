"""Warm starts: initialise a run's model from a shipped student, an earlier run or a weights file.

The optimiser and the schedule start fresh (a warm restart); the run records where its weights came
from in ``lineage.json``, the source's own chain first, so a model card can show every session's
contribution (``kdrestore package`` copies it into the card).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..errors import KdrestoreError
from ..fsutil import atomic_write_json
from ..models.shipped import PRETRAINED_DIR, card_weights, read_card
from ..models.weights import compare_state_dict, converted_for, grow_hint, read_state_dict
from ..rundir import LINEAGE_FILE, RunDir


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def resolve_init(source: str) -> tuple[dict[str, Tensor], dict[str, Any], list[dict[str, Any]]]:
    """``(state dict, this start's record, the source's earlier chain)`` for ``source``."""
    shipped = PRETRAINED_DIR / source
    path = Path(source)
    if "/" not in source and (shipped / "card.json").is_file():
        card = read_card(shipped)
        weights = card_weights(shipped, card)
        record = {"kind": "shipped", "source": source, "sha256": _sha256(weights),
                  "trained": card.get("training", {}).get("budget") if isinstance(card.get("training"), dict) else None}
        return read_state_dict(weights), record, list(card.get("lineage", []))
    if path.is_dir():
        run = RunDir(path)
        chosen, _ = run.checkpoints.best_or_latest()
        if chosen is None:
            raise KdrestoreError(f"model.init_from: {path} is a folder without checkpoints (not a run directory)")
        record = {"kind": "run", "source": path.name, "step": chosen.step,
                  "weights": "ema" if chosen.has_ema else "raw", "final_metrics": run.final_metrics()}
        return chosen.model_weights(ema=True), record, run.lineage()
    if path.is_file():
        return read_state_dict(path), {"kind": "file", "source": path.name, "sha256": _sha256(path)}, []
    raise KdrestoreError(f"model.init_from: '{source}' is not a shipped student, a run directory or a weights file")


def init_model(model: nn.Module, source: str, run_dir: Path, write: bool = True) -> list[dict[str, Any]]:
    """Load ``source`` into ``model`` (converted by the model's ``convert_state_dict`` where it has one; every
    key must fit, the error lists the keys that do not) and
    write ``run_dir/lineage.json``; returns the lineage."""
    sd, record, chain = resolve_init(source)
    sd = converted_for(model, sd)  # other checkpoint forms, as load_weights
    report = compare_state_dict(model, sd, source)
    if not report.ok:
        raise KdrestoreError(f"model.init_from: the weights of '{source}' do not fit {type(model).__name__}: "
                             f"{report.describe()}{grow_hint(model, report)}")
    model.load_state_dict({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, strict=False)
    lineage = [*chain, record]
    if write:
        atomic_write_json(run_dir / LINEAGE_FILE, lineage)
    return lineage
