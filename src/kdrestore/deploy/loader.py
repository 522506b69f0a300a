"""Resolving a model by name or path: a shipped pretrained student, a run directory, or a registry name.

Shipped students live in ``kdrestore/pretrained/<name>/`` as ``model.safetensors`` + ``card.json``
(format in ``pretrained/README.md``).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import KdrestoreError
# shipped-student lookups live with the models (``shipped.PRETRAINED_DIR`` is read at call time, so one
# setting moves them all); re-exported here for the deploy API
from ..models import shipped
from ..models.shipped import CARD_REQUIRED, card_weights, read_card, shipped_names  # noqa: F401
from ..models.weights import compare_state_dict, load_weights

# the shipped student that ``kdrestore restore --task T`` uses when no --model is given, and the one
# that takes colour images instead when the first is gray (without it the gray student restores the
# luminance of colour images, chroma kept)
DEFAULT_MODELS = {"denoise": "denoise-gray-blind", "derain": "derain-small", "dehaze": "dehaze-small"}
DEFAULT_COLOR_MODELS = {"denoise": "denoise-color"}
# derain: the student per kind of rain (`kdrestore restore --task derain --rain light|heavy`); heavy is the default
RAIN_MODELS = {"heavy": "derain-small", "light": "derain-light"}
DEFAULT_RAIN = "heavy"


@dataclass
class ModelSpec:
    """A loaded model and what is known about it."""

    model: nn.Module
    name: str  # the registry name of the architecture
    channels: int
    task: str | None = None
    source: str = ""  # where the weights came from, in words
    card: dict[str, Any] = field(default_factory=dict)


def _channels(entry_meta: dict[str, Any], args: dict[str, Any]) -> int:
    return int(args.get("in_channels", entry_meta.get("channels", 3)))


def parse_model_args(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` texts (``--model-arg``) as constructor arguments; values are YAML scalars or lists
    (``attention_window=256``, ``attention_window=null``), parsed safely."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise KdrestoreError(f"--model-arg takes KEY=VALUE with KEY a model argument name, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise KdrestoreError(f"--model-arg {item!r}: the value is not a YAML scalar or list ({e})") from e
    return out


def _from_card(folder: Path, weights: str | os.PathLike[str] | None, device: str,
               model_args: dict[str, Any] | None = None) -> ModelSpec:
    from ..models.registry import build_model

    card = read_card(folder)
    model = build_model(card["model"], **{**card.get("args", {}), **(model_args or {})})
    path = Path(weights) if weights else card_weights(folder, card)
    load_weights(model, path)
    return ModelSpec(model.to(torch.device(device)).eval(), card["model"], int(card["channels"]),
                     card["task"], f"pretrained '{folder.name}' ({path.name})", card)


def load_shipped(name: str, root: Path | None = None, device: str = "cpu") -> ModelSpec:
    """A shipped student by name; ``root``: another folder of ``<name>/card.json`` (benchmarks, tests)."""
    root = Path(root) if root else shipped.PRETRAINED_DIR
    if name not in shipped_names(root):
        raise KdrestoreError(f"no shipped model '{name}' in {root} (available: "
                             f"{', '.join(shipped_names(root)) or 'none'})")
    return _from_card(root / name, None, device)


def _from_run(run: Path, weights: str | os.PathLike[str] | None, device: str,
              model_args: dict[str, Any] | None = None) -> ModelSpec:
    """A training run: config.yaml names the model; weights of best.json, else latest.json (EMA preferred)."""
    from ..config import ModelConfig, build_section
    from ..models.registry import build_model, model_entry
    from ..rundir import RunDir

    rundir = RunDir(run)
    data = rundir.config_dict()
    mcfg = build_section(ModelConfig, data.get("model"), "model", str(rundir.config_file))
    args = {**mcfg.args, **(model_args or {})}
    model = build_model(mcfg.name, **args)
    if weights:
        load_weights(model, weights)
        source = f"run {run} with weights {weights}"
    else:
        ckpt, which = rundir.checkpoints.best_or_latest()
        if ckpt is None:
            raise KdrestoreError(f"run directory {run} has no checkpoint yet (checkpoints/latest.json)")
        ema = ckpt.has_ema
        sd = ckpt.model_weights(ema=True)
        report = compare_state_dict(model, sd, str(ckpt.folder))
        if not report.ok:
            raise KdrestoreError(f"checkpoint {ckpt.folder} does not fit {mcfg.name}: {report.describe()}")
        model.load_state_dict(sd)
        source = f"run {run}, {which} checkpoint step {ckpt.step} ({'EMA' if ema else 'raw'} weights)"
    meta = model_entry(mcfg.name).meta
    return ModelSpec(model.to(torch.device(device)).eval(), mcfg.name, _channels(meta, args),
                     data.get("task"), source)


def unknown_name_error(name: str) -> KdrestoreError:
    from ..models.registry import list_models

    shipped = shipped_names()
    registered = [e.name for e in list_models()]
    close = difflib.get_close_matches(name, shipped + registered, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return KdrestoreError(
        f"unknown model '{name}': not a shipped pretrained model (available: "
        f"{', '.join(shipped) or 'none shipped yet'}), not a run directory or .onnx file, and not a "
        f"registered model (see 'kdrestore models').{hint}")


def resolve(name_or_path: str | os.PathLike[str], weights: str | os.PathLike[str] | None = None,
            peers: str | os.PathLike[str] | None = None, device: str = "cpu", *,
            random_init: bool = False, model_args: dict[str, Any] | None = None) -> ModelSpec:
    """Find and load a model: (1) a shipped pretrained name, (2) a run directory, (3) a registry
    name with ``weights`` or its published peer file (``peers`` / ``$KDRESTORE_PEERS``).

    ``model_args``: constructor arguments over the card's or the run's (inference options such as NAFNet's
    ``attention_window``); shipped names and run directories only.

    A registry model with parameters but no weights is refused unless ``random_init`` (tests, export
    checks); classical models without parameters need none.
    """
    from ..evaluate.api import load_model
    from ..models.registry import build_model, list_models

    text = os.fspath(name_or_path)
    if text in shipped_names():
        return _from_card(shipped.PRETRAINED_DIR / text, weights, device, model_args)
    path = Path(text)
    if path.is_dir():
        from ..rundir import RunDir

        if not RunDir(path).is_run():
            raise KdrestoreError(f"{path} is a folder but not a run directory (no config.yaml)")
        return _from_run(path, weights, device, model_args)
    if model_args:
        raise KdrestoreError(f"model arguments ({', '.join(model_args)}) apply to a shipped name or a run "
                             f"directory, not to '{text}'")
    entry = next((e for e in list_models() if e.name.lower() == text.lower()), None)
    if entry is None:
        raise unknown_name_error(text)
    if weights is None and random_init:
        model = build_model(entry.name).to(torch.device(device)).eval()
    else:
        model = load_model(entry.name, weights, peers, device)
    if weights is None and not entry.meta.get("peer_weights") and any(True for _ in model.parameters()) \
            and not random_init:
        raise KdrestoreError(f"model '{entry.name}' has no published weights: pass weights (--weights FILE), "
                             f"a run directory, or a shipped pretrained name ({', '.join(shipped_names()) or 'none yet'})")
    src = f"registry model '{entry.name}'" + (f" with weights {weights}" if weights else
                                               " (random weights)" if random_init else "")
    return ModelSpec(model, entry.name, int(entry.meta.get("channels", 3)), entry.meta.get("task"), src)
