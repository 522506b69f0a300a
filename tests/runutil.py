"""Helpers shared by the tests that train: read a run's logged losses and final weights, simulate a crash."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from safetensors.torch import load_file


def losses_of(run_dir: Path, *columns: str) -> list[tuple]:
    """``(step, loss, *columns)`` of every logged training row of a run."""
    with (run_dir / "log.csv").open() as f:
        return [(int(r["step"]), float(r["loss"]), *(float(r[c]) for c in columns))
                for r in csv.DictReader(f) if r.get("loss")]


def final_weights(run_dir: Path) -> dict:
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    return load_file(str(run_dir / "checkpoints" / latest["dir"] / "model.safetensors"))


def stop_at(method_cls: type, cfg, stop: int):
    """An instance of ``method_cls`` that raises KeyboardInterrupt (a crash) inside step ``stop``."""

    class StopAt(method_cls):
        def losses(self, batch, output, step):
            if step == stop:
                raise KeyboardInterrupt
            return super().losses(batch, output, step)

    return StopAt(cfg)
