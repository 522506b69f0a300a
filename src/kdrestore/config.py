"""Run configurations: YAML files validated into typed dataclasses.

A recipe is plain YAML (read with ``yaml.safe_load``; nothing in it is ever evaluated). Unknown keys
fail with the file, the dotted field and a "did you mean"; wrong types name the field and the type
expected. ``--set section.key=value`` overrides apply before validation. The schema lives here, the
generic reading and validation in :mod:`kdrestore.recipe`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from .recipe import (ConfigError, apply_overrides, build_section, config_differences, expand_env, parse_duration,
                     plain_data, read_recipe)

__all__ = ["ConfigError", "RunConfig", "DatasetConfig", "DistillConfig", "load_config", "distill_section",
           "method_options", "build_section", "apply_overrides", "parse_duration", "read_recipe",
           "config_differences"]


@dataclass
class ModelConfig:
    name: str = "unet-tiny"
    args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initialise from this file (safetensors/.pth)
    # warm start (fresh optimiser and schedule): a shipped student's name, a run directory (its best
    # checkpoint, EMA weights when kept) or a weights file; the chain of starts is kept in lineage.json
    init_from: str | None = None


BATCHED_KINDS = ("synth", "nyu-haze", "paired")  # training data kinds with a batched pipeline (data/batched.py)
BATCHED_KINDS_TEXT = " or ".join(map(repr, BATCHED_KINDS))


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
    # synth, nyu-haze and paired training data: "batched" crops, flips (and degrades) whole batches on the
    # training device (kdrestore.data.batched); "per-sample" is the DataLoader path (any kind)
    pipeline: Literal["per-sample", "batched"] = "per-sample"
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
    sigma_from_batch: bool = False  # a noise-map teacher (FFDNet) gets each sample's true sigma (blind noise)


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
        return plain_data(dataclasses.asdict(self))


def distill_section(cfg: RunConfig) -> DistillConfig:
    """The recipe's ``distill`` section, typed (the defaults when it has none)."""
    return build_section(DistillConfig, cfg.distill or {}, "distill", cfg.source)


OptionsT = TypeVar("OptionsT")


def method_options(cfg: RunConfig, options_type: type[OptionsT]) -> OptionsT:
    """``distill.options`` validated into a method's own options type (errors name the file and field)."""
    return build_section(options_type, distill_section(cfg).options, "distill.options", cfg.source)


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
            ds.path = expand_env(ds.path, f"{source}: {section}.path")
        for i, src in enumerate(ds.sources if ds is not None else []):  # kind mixed
            if src.path is not None:
                src.path = expand_env(src.path, f"{source}: {section}.sources[{i}].path")
    _check_holdout(cfg, source)
    if cfg.train.time_budget is not None:
        parse_duration(cfg.train.time_budget, f"{source}: train.time_budget")
    if cfg.data.train.pipeline == "batched" and cfg.data.train.kind not in BATCHED_KINDS:
        raise ConfigError(f"{source}: data.train.pipeline 'batched' needs kind {BATCHED_KINDS_TEXT} (images held on "
                          f"the training device), got kind '{cfg.data.train.kind}'")
    return cfg


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
