"""Better distillation targets than one teacher: a teacher's self-ensemble and ensembles of teachers.

* :class:`SelfEnsemble`: the mean of a model's outputs over the 8 flips/rotations of its input (each
  output mapped back), the "x8" test-time ensemble of the restoration literature (8 teacher passes).
* :class:`MeanEnsemble`: the mean (or weighted mean) of several teachers' outputs, e.g. DnCNN-S-25 and
  FFDNet at sigma 25.

Recipes reach both through a teacher spec (``distill.teachers[i]``): ``self_ensemble: true`` and
``members: [spec, ...]`` (each member a spec of its own, its ``weight`` its share of the mean). An
ensemble's members must share one input convention: the same colour mode (gray vs colour; a gray
model with ``per_channel`` takes any) and the same noise-level input (a model with a noise-level map,
such as FFDNet, counts as map-less only when its ``args.sigma`` fixes the map). Otherwise the
ensemble is refused, naming the teacher that differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import KdrestoreError


def dihedral(x: Tensor, k: int) -> Tensor:
    """The ``k``-th (0-7) of the 8 flips/rotations of ``B x C x H x W`` images."""
    y = torch.flip(x, dims=(-1,)) if k >= 4 else x
    return torch.rot90(y, k % 4, dims=(-2, -1))


def dihedral_inverse(x: Tensor, k: int) -> Tensor:
    """Undo :func:`dihedral` ``k``."""
    y = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


class SelfEnsemble(nn.Module):
    """Mean of ``model`` over the 8 flips/rotations of the input (outputs mapped back)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        out = dihedral_inverse(self.model(dihedral(x, 0)), 0)
        for k in range(1, 8):
            out = out + dihedral_inverse(self.model(dihedral(x, k)), k)
        return out / 8.0


class MeanEnsemble(nn.Module):
    """Weighted mean of several models' outputs (weights normalised to sum 1)."""

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not models:
            raise KdrestoreError("an ensemble needs at least one member")
        w = [1.0] * len(models) if weights is None else [float(v) for v in weights]
        if len(w) != len(models) or any(v <= 0 for v in w):
            raise KdrestoreError(f"ensemble weights must be positive, one per member; got {list(weights or [])}")
        self.members = nn.ModuleList(models)
        self.weights = [v / sum(w) for v in w]

    def forward(self, x: Tensor) -> Tensor:
        out = self.weights[0] * self.members[0](x)
        for w, m in zip(self.weights[1:], self.members[1:]):
            out = out + w * m(x)
        return out


@dataclass(frozen=True)
class InputConvention:
    """What a teacher takes: ``channels`` (1, 3, or None: any/unknown) and a free noise-level map."""

    name: str
    channels: int | None
    noise_map: bool

    def describe(self) -> str:
        mode = {1: "gray (1 channel)", 3: "colour (3 channels)"}.get(self.channels or 0, "any channels")
        return mode + (", a noise-level map (args.sigma not fixed)" if self.noise_map else ", no noise-level map")


def input_convention(name: str, model: nn.Module, args: dict[str, Any], per_channel: bool = False,
                     meta_channels: int | None = None) -> InputConvention:
    """The input convention of one ensemble member (see the module notes)."""
    noise_map = callable(getattr(model, "set_noise_level", None)) and "sigma" not in args
    channels = None if per_channel else (int(args["in_channels"]) if "in_channels" in args else meta_channels)
    return InputConvention(name, channels, noise_map)


def check_conventions(conventions: Sequence[InputConvention]) -> None:
    """Refuse an ensemble whose members take different inputs, naming the member that differs."""
    if not conventions:
        return
    first = conventions[0]
    known = [c for c in conventions if c.channels is not None]
    for c in conventions[1:]:
        if c.noise_map != first.noise_map:
            raise KdrestoreError(f"ensemble teacher '{c.name}' takes {c.describe()} but '{first.name}' takes "
                                 f"{first.describe()}: members must share one input convention (fix the noise "
                                 "level with args: {sigma: S})")
    for c in known[1:]:
        if c.channels != known[0].channels:
            raise KdrestoreError(f"ensemble teacher '{c.name}' takes {c.describe()} but '{known[0].name}' takes "
                                 f"{known[0].describe()}: members must share one input convention "
                                 "(per_channel: true applies a gray teacher to each colour channel)")
