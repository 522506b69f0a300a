"""Capture intermediate features by module path with forward hooks: models stay untouched."""
from __future__ import annotations

import difflib
from typing import Any

from torch import Tensor, nn

from ..registry import UnknownNameError


def resolve_module(model: nn.Module, path: str, role: str = "model") -> nn.Module:
    """The sub-module at a dotted ``path``; a wrong path lists the nearest existing names."""
    modules = dict(model.named_modules())
    if path not in modules:
        close = difflib.get_close_matches(path, [n for n in modules if n], n=5, cutoff=0.4)
        hint = f"; nearest: {', '.join(close)}" if close else ""
        raise UnknownNameError(f"{role} {type(model).__name__} has no module '{path}'{hint}")
    return modules[path]


class FeatureHooks:
    """Records the outputs of the modules at ``paths`` on every forward pass of ``model``.

    Tuple outputs keep their first element. ``detach=True`` stores detached tensors (teachers).
    """

    def __init__(self, model: nn.Module, paths: list[str], role: str = "model", detach: bool = False) -> None:
        self.paths, self.detach = list(paths), detach
        self.features: dict[str, Tensor] = {}
        self._handles = [resolve_module(model, p, role).register_forward_hook(self._hook(p)) for p in self.paths]

    def _hook(self, path: str) -> Any:
        def store(_module: nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            self.features[path] = out.detach() if self.detach else out

        return store

    def take(self) -> list[Tensor]:
        """The features of the last forward pass, in the order of ``paths``; then forgets them."""
        missing = [p for p in self.paths if p not in self.features]
        if missing:
            raise RuntimeError(f"no output captured at {missing}: did the forward pass reach these modules?")
        out = [self.features[p] for p in self.paths]
        self.features = {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
