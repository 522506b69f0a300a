"""Reading weight files safely and loading them into a model with a by-name report of mismatches."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import KdrestoreError

_NESTED_KEYS = ("state_dict", "model", "params", "params_ema", "net")


class WeightsError(KdrestoreError, RuntimeError):
    """A weights file that cannot be read, or that does not fit the architecture."""


@dataclass
class LoadReport:
    path: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def describe(self, limit: int = 12) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape mismatch", self.shape_mismatch)):
            if keys:
                shown = ", ".join(keys[:limit]) + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")
                parts.append(f"{label} ({len(keys)}): {shown}")
        return "; ".join(parts) or "all keys match"


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a ``.safetensors`` or ``.pth``/``.pt`` file into a flat ``{name: tensor}`` dict.

    ``.pth`` files are read with ``weights_only=True``: no arbitrary object is ever unpickled.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: object = load_file(str(p), device="cpu")
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files raise many different types
        raise WeightsError(f"cannot read weights file {p}: {exc}") from exc
    while isinstance(sd, dict) and len(sd) >= 1 and not any(isinstance(v, Tensor) for v in sd.values()):
        nested = next((k for k in _NESTED_KEYS if isinstance(sd.get(k), dict)), None)
        if nested is None:
            break
        sd = sd[nested]
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise WeightsError(f"{p} does not hold a state dict of tensors")
    return dict(sd)


def compare_state_dict(model: nn.Module, sd: dict[str, Tensor], path: str = "") -> LoadReport:
    own = model.state_dict()
    report = LoadReport(path=path)
    report.missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in sd if k not in own and not k.endswith("num_batches_tracked")]
    report.shape_mismatch = [
        f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    return report


def grow_hint(model: nn.Module, report: LoadReport) -> str:
    """A pointer to ``model.args.init_grow`` when a model that can grow misses keys (a shallower checkpoint)."""
    if report.missing and getattr(model, "init_grow", None) is False:
        return ("; a shallower checkpoint of this architecture loads with model.args.init_grow: true "
                "(the added blocks start as the identity)")
    return ""


def converted_for(model: nn.Module, sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """``sd`` mapped onto ``model``'s own key names and form by its ``convert_state_dict`` (unchanged without one)."""
    convert = getattr(model, "convert_state_dict", None)
    return convert(sd) if callable(convert) else sd


def load_weights(model: nn.Module, path: str | os.PathLike[str], strict: bool = True) -> LoadReport:
    """Load a weights file into ``model``.

    A model whose published checkpoints use other key names defines ``convert_state_dict(sd)``,
    which maps them onto its own names. With ``strict`` any missing, unexpected or mis-shaped key
    raises :class:`WeightsError` listing the keys by name.
    """
    sd = converted_for(model, read_state_dict(path))
    report = compare_state_dict(model, sd, str(path))
    if strict and not report.ok:
        raise WeightsError(f"weights {path} do not fit {type(model).__name__}: {report.describe()}"
                           f"{grow_hint(model, report)}")
    own = model.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(usable, strict=False)
    return report
