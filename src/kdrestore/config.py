"""Run configurations: YAML files validated into typed dataclasses.

A recipe is plain YAML (read with ``yaml.safe_load``; nothing in it is ever evaluated). Unknown keys
fail with the file, the dotted field and a "did you mean"; wrong types name the field and the type
expected. ``--set section.key=value`` overrides apply before validation.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

import yaml

from .errors import KdrestoreError


class ConfigError(KdrestoreError, ValueError):
    """A configuration that does not validate; the message names the file and the field."""


@dataclass
class ModelConfig:
    name: str = "unet-tiny"
    args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initialise from this file (safetensors/.pth)
    # warm start (fresh optimiser and schedule): a shipped student's name, a run directory (its best
    # checkpoint, EMA weights when kept) or a weights file; the chain of starts is kept in lineage.json
    init_from: str | None = None


@dataclass
class DatasetConfig:
    """One data source. ``kind``: synth (clean folder + on-the-fly degradation), paired, builtin, tasks
    (TRNR N-frequency-K-shot tasks over the patches of ``limit`` clean images, ``crop`` the patch size), nyu-haze
    (NYU-Depth-v2 rgb + depth hazed by the RESIDE-ITS model; params: kdrestore.data.nyu.NYU_HAZE_PARAMS)."""

    kind: Literal["synth", "paired", "builtin", "tasks", "latent", "mixed", "nyu-haze"] = "builtin"  # latent: data-free, no path
    path: str | None = None
    task: Literal["denoise", "derain", "dehaze"] | None = None  # builtin: which degradation
    degradation: str | None = None  # synth: a kdrestore.degrade name
    params: dict[str, Any] = field(default_factory=dict)
    rule: str = "auto"  # paired: pairing rule
    mode: Literal["rgb", "gray"] | None = None  # None: the data set's default (builtin: per task; else rgb)
    crop: int | None = 64
    augment: bool = True
    limit: int | None = None
    # the last ``holdout`` images (pairs) of the folder, in sorted order, are held out for validation:
    # data.train uses all but them, data.val only them (set the same number in both sections)
    holdout: int | None = None
    repeat: int = 1  # a small set seen several times per epoch
    # synth training data only: "batched" crops, flips and degrades whole batches on the training device
    # (kdrestore.data.batched); "per-sample" is the DataLoader path (any kind)
    pipeline: Literal["per-sample", "batched"] = "per-sample"
    pack: str | None = None  # read the folder's images from this data pack (kdrestore.data.pack)
    tasks: dict[str, Any] | None = None  # kind tasks: kdrestore.data.episodes.TaskOptions
    sources: list[DatasetConfig] = field(default_factory=list)  # kind mixed: the data sets mixed
    weights: list[float] | None = None  # kind mixed: sampling weight per source (default equal); limit: epoch length
    name: str | None = None  # a source's tag in a mixed set (item["source"])
    # synth / paired / mixed of them: items also carry the WHOLE image (and its target) resized to
    # context x context, for a model that embeds the whole image (CoIC model.args.context_size)
    context: int | None = None


@dataclass
class DataConfig:
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig | None = None
    num_workers: int = 0


@dataclass
class LossTerm:
    name: Literal["l1", "charbonnier", "mse", "ssim"] = "l1"
    weight: float = 1.0


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw"] = "adam"
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class ScheduleConfig:
    name: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr: float = 1e-6
    step_size: int = 1000  # step schedule
    gamma: float = 0.5


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16  # global batch, split across processes under torchrun
    accum_steps: int = 1
    grad_clip: float | None = None
    ema_decay: float | None = None  # e.g. 0.999; validation then uses the EMA weights
    amp: Literal["none", "bf16", "fp16"] = "none"
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    losses: list[LossTerm] = field(default_factory=lambda: [LossTerm()])
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 200
    keep_checkpoints: int = 2
    # wall-clock budget ("90s", "8m", "2h", "1h30m"): the run stops when it is spent (or at ``steps``,
    # whichever comes first), the learning-rate schedule after warm-up is laid over the time, and the
    # final validation and checkpoint fit inside it
    time_budget: str | None = None
    channels_last: bool = False  # CUDA: student inputs in channels_last memory format


@dataclass
class TeacherSpec:
    """One teacher of a recipe (``distill.teachers[i]``)."""

    name: str | None = None  # a registered model (peers included)
    weights: str | None = None  # default for peers: <peers folder>/<published file>
    exported: str | None = None  # or a torch.export file (torch.export.save; .pt2)
    torchscript: str | None = None  # or a TorchScript file (deprecated by PyTorch; prefer 'exported')
    args: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    degradations: list[str] | None = None  # supervise only samples of these degradations
    per_channel: bool = False  # a gray (1-channel) model applied to each channel of colour images
    self_ensemble: bool = False  # target = mean over the 8 flips/rotations (8 passes; distill/ensemble.py)
    members: list[TeacherSpec] | None = None  # an ensemble: the (weighted) mean of these teachers' outputs


@dataclass
class OutputTerm:
    weight: float = 1.0
    criterion: Literal["l1", "charbonnier", "mse"] = "l1"


@dataclass
class FeaturePair:
    student: str  # module path in the student
    teacher: str  # module path in the teacher
    loss: Literal["fitnet", "fakd", "rsd"] = "fitnet"
    weight: float = 1.0
    teacher_index: int = 0
    criterion: Literal["mse", "l1"] = "mse"
    rsd_mode: Literal["pooled", "position"] = "pooled"
    kappa: float = 0.01


@dataclass
class ContrastiveTerm:
    weight: float = 0.1
    points: list[str] | None = None  # teacher module paths; default: its first feature points
    layer_weights: list[float] | None = None
    teacher_index: int = 0


@dataclass
class DistillConfig:
    """The ``distill`` section of a recipe; ``options`` are the method's own, typed beside each method
    (``kdrestore.distill.methods``)."""

    method: str = "kd"
    teachers: list[TeacherSpec] = field(default_factory=list)
    output: OutputTerm | None = field(default_factory=OutputTerm)
    features: list[FeaturePair] = field(default_factory=list)
    contrastive: ContrastiveTerm | None = None
    pseudo_label: bool = False  # no ground truth: the (first) teacher's output is the target
    task_loss: bool = True  # include train.losses against the target
    cache_teacher: bool = False
    teacher_precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # teachers under autocast (speed)
    teacher_channels_last: bool = False
    peers: str | None = None  # folder of peer weights (default $KDRESTORE_PEERS)
    options: dict[str, Any] = field(default_factory=dict)  # method-specific settings


@dataclass
class RunConfig:
    name: str = "run"
    task: Literal["denoise", "derain", "dehaze"] = "denoise"
    output_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # a distillation method and its options, kept as written (saved runs keep their recipe); validated
    # into a DistillConfig when the recipe is read, typed with :func:`distill_section`
    distill: dict[str, Any] | None = None
    source: ClassVar[str] = "<config>"  # the file the recipe was read from (set by load_config; not a key)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def distill_section(cfg: RunConfig) -> DistillConfig:
    """The recipe's ``distill`` section, typed (the defaults when it has none)."""
    return build_section(DistillConfig, cfg.distill or {}, "distill", cfg.source)


OptionsT = TypeVar("OptionsT")


def method_options(cfg: RunConfig, options_type: type[OptionsT]) -> OptionsT:
    """``distill.options`` validated into a method's own options type (errors name the file and field)."""
    return build_section(options_type, distill_section(cfg).options, "distill.options", cfg.source)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, source: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp``; raise ConfigError naming the field."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{source}: {where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: {where} must be one of {list(args)}, got {value!r}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where, source)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {where} must be a list, got {value!r}")
        return [_convert(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{source}: {where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 2e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: {where} must be {_type_name(tp)}, got {value!r}")


def build_section(cls: type, data: Any, where: str, source: str = "<config>") -> Any:
    """Validate a mapping into the dataclass ``cls``; errors name ``source`` and the dotted field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or 'the top level'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}")
        kwargs[key] = _convert(value, hints[key], dotted, source)
    return cls(**kwargs)


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML scalars/lists) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: '{key}' goes through a non-mapping field")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None,
                data: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML recipe (or a dict), apply overrides, validate into a :class:`RunConfig`."""
    source = str(path) if path else "<config>"
    if path is not None:
        data = read_recipe(Path(path))
    data = apply_overrides(dict(data or {}), overrides or [])
    cfg = build_section(RunConfig, data, "", source)
    cfg.source = source
    if cfg.distill is not None:
        distill_section(cfg)  # a typo under distill: is reported now, before any data is read
    for section, ds in (("data.train", cfg.data.train), ("data.val", cfg.data.val)):
        if ds is not None and ds.path is not None:
            ds.path = _expand(ds.path, f"{source}: {section}.path")
        if ds is not None and ds.pack is not None:
            ds.pack = _expand(ds.pack, f"{source}: {section}.pack")
        for i, src in enumerate(ds.sources if ds is not None else []):  # kind mixed
            if src.path is not None:
                src.path = _expand(src.path, f"{source}: {section}.sources[{i}].path")
    _check_holdout(cfg, source)
    if cfg.train.time_budget is not None:
        parse_duration(cfg.train.time_budget, f"{source}: train.time_budget")
    for section, ds in (("data.train", cfg.data.train), ("data.val", cfg.data.val)):
        if ds is not None and ds.pack is not None and ds.kind != "synth":
            raise ConfigError(f"{source}: {section}.pack holds clean images for kind 'synth'; kind '{ds.kind}' "
                              "reads its folder")
    if cfg.data.train.pipeline == "batched" and cfg.data.train.kind != "synth":
        raise ConfigError(f"{source}: data.train.pipeline 'batched' needs kind 'synth' (clean images degraded "
                          f"on the fly), got kind '{cfg.data.train.kind}'")
    return cfg


def parse_duration(text: str, where: str = "duration") -> float:
    """Seconds in ``"90s"``, ``"8m"``, ``"2h"``, ``"1h30m"`` or a plain number of seconds."""
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", s)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", s).strip():
        raise ConfigError(f"{where}: expected a duration like '90s', '8m', '2h' or '1h30m', got {text!r}")
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)


def _check_holdout(cfg: RunConfig, source: str) -> None:
    """Train and validation on one folder must hold out the same part, or validation sees training data."""
    train, val = cfg.data.train, cfg.data.val
    for section, ds in (("data.train", train), ("data.val", val)):
        if ds is not None and ds.holdout is not None and ds.holdout < 1:
            raise ConfigError(f"{source}: {section}.holdout must be at least 1, got {ds.holdout}")
    if val is None or val.path is None or train.path is None:
        return
    if Path(val.path) == Path(train.path) and train.holdout != val.holdout:
        raise ConfigError(f"{source}: data.train and data.val read the same folder {val.path} but hold out "
                          f"{train.holdout} and {val.holdout} images: set data.train.holdout and "
                          f"data.val.holdout to the same number")


def read_recipe(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML recipe; a top-level ``base: other.yaml`` (relative to the file) is merged under it."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" + (f" (base of {_seen[-1]})" if _seen else ""))
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(read_recipe(path.parent / str(base), (*_seen, path.resolve())), data)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _expand(value: str, where: str) -> str:
    """Expand ``$VAR``/``${VAR}`` (e.g. ``${KDRESTORE_DATA}``); an unset variable is an error."""
    expanded = os.path.expandvars(value)
    if "$" in expanded:
        raise ConfigError(f"{where}: environment variable in {value!r} is not set")
    return expanded


def config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += config_differences(va, vb, dotted + ".")
        elif va != vb:
            diffs.append(f"{dotted}: {va!r} -> {vb!r}")
    return diffs
