"""Writing checkpoints: safetensors weights + a tensor-only training state + JSON metadata.

The layout (``<run>/checkpoints/step_<step>/``, ``latest.json``, ``best.json``) and reading it back
live in :mod:`kdrestore.rundir`. A checkpoint folder is written under a temporary name and renamed into
place; the pointer files are replaced atomically afterwards. A crash at any moment therefore leaves the
previous checkpoint and pointers intact.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..fsutil import atomic_write_json
from ..rundir.layout import (BEST, EMA_WEIGHTS, LATEST, META_FILE, MODEL_WEIGHTS, STATE_FILE, Checkpoint,
                             CheckpointError, RunCheckpoints, step_folder)

__all__ = ["Checkpoint", "CheckpointError", "CheckpointManager", "rng_state", "set_rng_state"]


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


class CheckpointManager(RunCheckpoints):
    """Writes, finds and prunes the checkpoints of one run directory."""

    def __init__(self, run_dir: str | Path, keep: int = 2) -> None:
        super().__init__(run_dir)
        self.keep = max(1, keep)

    def save(self, step: int, model: nn.Module, state: dict[str, Any], meta: dict[str, Any],
             ema: nn.Module | None = None, best_metric: float | None = None) -> Path:
        """Write ``step_<step>`` atomically; update ``latest.json`` (and ``best.json`` when given)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / step_folder(step)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.root))
        try:
            save_file(_weights(model), str(tmp / MODEL_WEIGHTS))
            if ema is not None:
                save_file(_weights(ema), str(tmp / EMA_WEIGHTS))
            torch.save(state, tmp / STATE_FILE)
            (tmp / META_FILE).write_text(json.dumps({**meta, "step": step}, indent=2, default=str))
            if final.exists():  # a rerun of the same step after a resume: replace it
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = {"dir": final.name, "step": step}
        atomic_write_json(self.root / LATEST, pointer)
        if best_metric is not None:
            atomic_write_json(self.root / BEST, {**pointer, "metric": best_metric})
        self._prune()
        return final

    def _prune(self) -> None:
        protected = {p["dir"] for p in (self._pointer(LATEST), self._pointer(BEST)) if p}
        for old in self.folders()[: -self.keep]:
            if old.name not in protected:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.root.glob(".step_*"):  # temp folders of a killed write
            shutil.rmtree(stale, ignore_errors=True)
