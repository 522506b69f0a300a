"""Helpers shared by the tests: read a run's logged losses and final weights, simulate a crash, load a
script of ``benchmarks/`` as a module."""
from __future__ import annotations

import csv
import importlib.util
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

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


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextmanager
def benchmark_script(name: str) -> Iterator[ModuleType]:
    """``benchmarks/NAME.py`` as the module ``NAME``, registered in ``sys.modules`` while in use (its dataclasses
    look their module up, and a script may import a sibling by that name)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
