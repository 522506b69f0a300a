"""The layout of a training run directory, and reading one back.

A run directory (``kdrestore train --out RUN``)::

    config.yaml                the resolved recipe the run trained with
    log.csv  [tb/]             training log (:mod:`.logger`)
    final_metrics.json         what the finished run measured (validation, time, throughput)
    lineage.json               where its first weights came from (``--init-from``), oldest first
    leak_check.json            the leak guard's record at training time
    checkpoints/
        step_00000200/         model.safetensors  [ema.safetensors]  state.pt  meta.json
        latest.json            {"dir": "step_00000200", "step": 200}
        best.json              {"dir": ..., "step": ..., "metric": ...}

The engine writes it (``engine.checkpoint.CheckpointManager``); the loader, packaging, the report and
the benches read it through this module only. ``state.pt`` holds only tensors and plain numbers and is
read with ``weights_only=True``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

from ..config import RunConfig, load_config
from ..errors import KdrestoreError

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.csv"
FINAL_METRICS = "final_metrics.json"
LINEAGE_FILE = "lineage.json"
LEAK_CHECK_FILE = "leak_check.json"
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
BEST = "best.json"
MODEL_WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"


class CheckpointError(KdrestoreError):
    """A checkpoint folder that is missing or unreadable."""


def step_folder(step: int) -> str:
    """The name of the checkpoint folder of ``step``."""
    return f"step_{step:08d}"


@dataclass
class Checkpoint:
    """One checkpoint folder of a run."""

    folder: Path
    step: int
    meta: dict[str, Any]

    @property
    def has_ema(self) -> bool:
        return (self.folder / EMA_WEIGHTS).is_file()

    def weights_file(self, ema: bool = True) -> Path:
        """The EMA weights file when asked for and present, else the plain one."""
        return self.folder / (EMA_WEIGHTS if ema and self.has_ema else MODEL_WEIGHTS)

    def model_weights(self, ema: bool = False) -> dict[str, torch.Tensor]:
        """The plain weights, or the EMA weights when ``ema`` and the run kept them."""
        return load_file(str(self.weights_file(ema)))

    def state(self) -> dict[str, Any]:
        """The training state (optimiser, schedules, method state, RNG), tensors and plain values only."""
        return torch.load(self.folder / STATE_FILE, map_location="cpu", weights_only=True)


class RunCheckpoints:
    """Finds the checkpoints of one run directory (its ``checkpoints/`` folder)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir) / CHECKPOINTS

    def _pointer(self, name: str) -> dict[str, Any] | None:
        path = self.root / name
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def latest(self) -> Checkpoint | None:
        return self._load(self._pointer(LATEST))

    def best(self) -> Checkpoint | None:
        return self._load(self._pointer(BEST))

    def best_metric(self) -> float | None:
        pointer = self._pointer(BEST)
        return None if pointer is None else float(pointer["metric"])

    def folders(self) -> list[Path]:
        """Every checkpoint folder of the run, oldest step first (complete or not)."""
        return sorted(d for d in self.root.glob("step_*") if d.is_dir()) if self.root.is_dir() else []

    def best_or_latest(self) -> tuple[Checkpoint | None, str]:
        """The best checkpoint when the run validated, else the latest; with which one it is."""
        best = self.best()
        return (best, "best") if best is not None else (self.latest(), "latest")

    def _load(self, pointer: dict[str, Any] | None) -> Checkpoint | None:
        if pointer is None:
            return None
        folder = self.root / pointer["dir"]
        if not (folder / MODEL_WEIGHTS).is_file():
            raise CheckpointError(f"checkpoint {folder} named in {self.root} is missing or incomplete")
        meta = json.loads((folder / META_FILE).read_text())
        return Checkpoint(folder, int(pointer["step"]), meta)


class RunDir:
    """A training run directory: its saved recipe and its checkpoints."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = RunCheckpoints(self.path)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    def is_run(self) -> bool:
        """Whether the folder holds a saved recipe (``config.yaml``)."""
        return self.config_file.is_file()

    def config_dict(self) -> dict[str, Any]:
        """The saved recipe as plain data (``{}`` when empty); :class:`KdrestoreError` when unreadable."""
        try:
            return yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KdrestoreError(f"{self.path} is not a run directory: cannot read {CONFIG_FILE} ({exc})") from exc

    def config(self) -> RunConfig:
        """The saved recipe, validated like any recipe."""
        return load_config(self.config_file)

    def _json(self, name: str, default: Any) -> Any:
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default

    def final_metrics(self) -> dict[str, Any] | None:
        """What the finished run measured (``final_metrics.json``); None while it has not finished."""
        return self._json(FINAL_METRICS, None)

    def lineage(self) -> list[dict[str, Any]]:
        """Where the run's first weights came from (``lineage.json``), oldest first; ``[]`` when trained from scratch."""
        return self._json(LINEAGE_FILE, [])
