"""Atomic, resumable checkpoints: safetensors weights + a tensor-only training state + JSON metadata.

Layout of ``<run>/checkpoints``::

    step_00000200/  model.safetensors  [ema.safetensors]  state.pt  meta.json
    latest.json     {"dir": "step_00000200", "step": 200}
    best.json       {"dir": ..., "step": ..., "metric": ...}

A checkpoint folder is written under a temporary name and renamed into place; the pointer files are
replaced atomically afterwards. A crash at any moment therefore leaves the previous checkpoint and
pointers intact. ``state.pt`` holds only tensors and plain numbers and is read with
``weights_only=True``.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import KdrestoreError
from ..fsutil import atomic_write_json


class CheckpointError(KdrestoreError):
    """A checkpoint folder that is missing or unreadable."""


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def rng_state() -> dict[str, Any]:
    """All global random states (Python, NumPy, torch CPU and CUDA) as JSON-able values / tensors."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy[0], np.asarray(npy[1], dtype=np.uint32), *npy[2:]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Checkpoint:
    folder: Path
    step: int
    meta: dict[str, Any]

    def model_weights(self, ema: bool = False) -> dict[str, torch.Tensor]:
        name = "ema.safetensors" if ema and (self.folder / "ema.safetensors").is_file() else "model.safetensors"
        return load_file(str(self.folder / name))

    def state(self) -> dict[str, Any]:
        return torch.load(self.folder / "state.pt", map_location="cpu", weights_only=True)


class CheckpointManager:
    """Writes, finds and prunes the checkpoints of one run directory."""

    def __init__(self, run_dir: str | Path, keep: int = 2) -> None:
        self.root = Path(run_dir) / "checkpoints"
        self.keep = max(1, keep)

    def save(self, step: int, model: nn.Module, state: dict[str, Any], meta: dict[str, Any],
             ema: nn.Module | None = None, best_metric: float | None = None) -> Path:
        """Write ``step_<step>`` atomically; update ``latest.json`` (and ``best.json`` when given)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"step_{step:08d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.root))
        try:
            save_file(_weights(model), str(tmp / "model.safetensors"))
            if ema is not None:
                save_file(_weights(ema), str(tmp / "ema.safetensors"))
            torch.save(state, tmp / "state.pt")
            (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=2, default=str))
            if final.exists():  # a rerun of the same step after a resume: replace it
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = {"dir": final.name, "step": step}
        atomic_write_json(self.root / "latest.json", pointer)
        if best_metric is not None:
            atomic_write_json(self.root / "best.json", {**pointer, "metric": best_metric})
        self._prune()
        return final

    def _pointer(self, name: str) -> dict[str, Any] | None:
        path = self.root / name
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def latest(self) -> Checkpoint | None:
        return self._load(self._pointer("latest.json"))

    def best(self) -> Checkpoint | None:
        return self._load(self._pointer("best.json"))

    def best_metric(self) -> float | None:
        pointer = self._pointer("best.json")
        return None if pointer is None else float(pointer["metric"])

    def _load(self, pointer: dict[str, Any] | None) -> Checkpoint | None:
        if pointer is None:
            return None
        folder = self.root / pointer["dir"]
        if not (folder / "model.safetensors").is_file():
            raise CheckpointError(f"checkpoint {folder} named in {self.root} is missing or incomplete")
        meta = json.loads((folder / "meta.json").read_text())
        return Checkpoint(folder, int(pointer["step"]), meta)

    def _prune(self) -> None:
        protected = {p["dir"] for p in (self._pointer("latest.json"), self._pointer("best.json")) if p}
        steps = sorted(d for d in self.root.glob("step_*") if d.is_dir())
        for old in steps[: -self.keep]:
            if old.name not in protected:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.root.glob(".step_*"):  # temp folders of a killed write
            shutil.rmtree(stale, ignore_errors=True)
