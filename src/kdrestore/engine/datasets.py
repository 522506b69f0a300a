"""Data sets of a recipe, and the keyed wrapper that makes every sample a function of (seed, epoch, index)."""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import BATCHED_KINDS, BATCHED_KINDS_TEXT, DatasetConfig
from ..data import PairedDataset, SynthDataset, builtin_dataset, find_pairs, list_images, read_image
from ..data.batched import BatchedPairs, BatchedSynth, ImageBank, pair_bank
from ..data.holdout import holdout_split
from ..data.streaks import resolve_streaks
from ..errors import KdrestoreError

# task -> (degradation, params) used by a ``synth`` data set that names none
TASK_DEGRADATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "denoise": ("awgn", {"sigma": 25.0}),
    "derain": ("rain-heavy", {}),
    "dehaze": ("haze", {}),
}


def degradation_of(cfg: DatasetConfig, task: str) -> tuple[str, dict[str, Any]]:
    """The degradation a synthetic section names, else its task's default, with the default's parameters."""
    return (cfg.degradation, {}) if cfg.degradation else TASK_DEGRADATIONS[cfg.task or task]


def build_dataset(cfg: DatasetConfig, task: str, *, train: bool, seed: int) -> Dataset:
    """A data set from a recipe section; fails before training when a path holds no images."""
    section = "data.train" if train else "data.val"
    augment = cfg.augment and train
    part = "train" if train else "val"
    if cfg.holdout is not None and cfg.kind in ("builtin", "latent", "mixed"):
        raise KdrestoreError(f"{section}.holdout: a '{cfg.kind}' data set has no folder to hold images out of"
                             + (" (set holdout on its sources)" if cfg.kind == "mixed" else ""))
    if cfg.context is not None and (cfg.kind not in ("synth", "paired", "builtin", "mixed") or cfg.context < 8):
        raise KdrestoreError(f"{section}.context: a whole-image view of at least 8 pixels, from a synth, paired, "
                             f"builtin or mixed data set; got {cfg.context} on a '{cfg.kind}' set")
    if cfg.kind == "mixed":  # weighted sources, each sample tagged with its source (data/mixed.py)
        from ..data.mixed import build_mixed

        return build_mixed(cfg, task, train=train, seed=seed, build=build_dataset, where=section)
    if cfg.kind == "builtin":
        ds: Dataset = builtin_dataset(cfg.task or task, split="train" if train else "test",  # type: ignore[arg-type]
                                      params=cfg.params or None, mode=cfg.mode,
                                      crop=cfg.crop, augment=augment, limit=cfg.limit, seed=seed, fixed=not train,
                                      context=cfg.context)
    elif cfg.kind == "latent":  # data-free: a label and a seed per sample, no images (data/latent.py)
        from ..data.latent import LatentDataset, latent_labels

        if not train:
            raise KdrestoreError(f"{section}: a 'latent' data set has no images to validate on")
        ds = LatentDataset(latent_labels(cfg.params, cfg.task or task, section), cfg.limit)
    elif cfg.path is None:
        raise KdrestoreError(f"{section}.path is required for a '{cfg.kind}' data set")
    elif cfg.kind == "nyu-haze":  # NYU rgb + measured depth, RESIDE-ITS haze (data/nyu.py)
        from ..data.nyu import nyu_haze_dataset

        ds = nyu_haze_dataset(cfg.path, cfg.params, holdout=cfg.holdout, train=train, crop=cfg.crop,
                              augment=augment, limit=cfg.limit, seed=seed, where=section)
    elif cfg.kind == "synth":
        name, defaults = degradation_of(cfg, task)
        params = resolve_streaks(name, {**defaults, **cfg.params}, part, section)  # rain-streaks: its layer bank
        ds = SynthDataset(holdout_split(clean_sources(cfg, section), cfg.holdout, part, section), name, params,
                          mode=cfg.mode or "rgb", crop=cfg.crop, augment=augment, limit=cfg.limit, seed=seed,
                          fixed=not train, context=cfg.context)
    elif cfg.kind == "tasks":  # TRNR: N-frequency-K-shot tasks over clustered patches (data/episodes.py)
        from ..data.episodes import TaskDataset

        if not train or cfg.crop is None:
            raise KdrestoreError(f"{section}: a 'tasks' data set is for training and needs crop (the patch size)")
        name, defaults = degradation_of(cfg, task)
        paths = holdout_split(list_images(cfg.path), cfg.holdout, part, section)
        ds = TaskDataset(paths, name, {**defaults, **cfg.params}, patch=cfg.crop, mode=cfg.mode or "rgb",
                         augment=augment, limit=cfg.limit, seed=seed, options=cfg.tasks, where=section)
    else:
        pairs = holdout_split(find_pairs(cfg.path, rule=cfg.rule), cfg.holdout, part, section)
        ds = PairedDataset(pairs, mode=cfg.mode or "rgb", crop=cfg.crop, augment=augment, limit=cfg.limit,
                           context=cfg.context)
    if len(ds) == 0:  # type: ignore[arg-type]
        raise KdrestoreError(f"{section}: the data set is empty ({cfg.kind} {cfg.path or ''})")
    return Repeated(ds, cfg.repeat) if cfg.repeat > 1 else ds


def clean_sources(cfg: DatasetConfig, section: str) -> list[Path]:
    """The clean image files of a ``synth`` section's folder."""
    assert cfg.path is not None
    paths = list_images(cfg.path)
    if not paths:
        raise KdrestoreError(f"{section}.path: no images found in {cfg.path}")
    return paths


def build_batched(cfg: DatasetConfig, task: str, device: torch.device) -> BatchedSynth | BatchedPairs:
    """The batched device-resident pipeline of a training section (``pipeline: batched``): ``synth`` clean
    images, ``nyu-haze`` scenes with their depth, or ``paired`` images, held once on ``device``."""
    section = "data.train"
    if cfg.kind not in BATCHED_KINDS or cfg.path is None or cfg.crop is None:
        raise KdrestoreError(f"{section}.pipeline 'batched' needs kind {BATCHED_KINDS_TEXT} with a path and a crop, "
                             f"got kind '{cfg.kind}'")
    if cfg.context is not None:
        raise KdrestoreError(f"{section}.context: the batched pipeline works on crops, not whole images; "
                             "use pipeline: per-sample with a whole-image context")
    try:
        if cfg.kind == "paired":
            return _batched_pairs(cfg, section, device)
        if cfg.kind == "nyu-haze":
            return _batched_nyu(cfg, section, device)
        sources = holdout_split(clean_sources(cfg, section), cfg.holdout, "train", section)
        sources = sources[:cfg.limit] if cfg.limit is not None else sources
        name, defaults = degradation_of(cfg, task)
        bank = ImageBank.from_arrays([read_image(s, cfg.mode or "rgb") for s in sources], [s.stem for s in sources],
                                     min_size=cfg.crop, device=device)
        return BatchedSynth(bank, name, resolve_streaks(name, {**defaults, **cfg.params}, "train", section),
                            crop=cfg.crop, augment=cfg.augment)
    except ValueError as exc:
        raise KdrestoreError(f"{section}: {exc}") from exc


def _batched_pairs(cfg: DatasetConfig, section: str, device: torch.device) -> BatchedPairs:
    assert cfg.path is not None and cfg.crop is not None
    pairs = holdout_split(find_pairs(cfg.path, rule=cfg.rule), cfg.holdout, "train", section)
    reader = PairedDataset(pairs, mode=cfg.mode or "rgb", limit=cfg.limit)  # its border rule for sizes
    loaded = [reader.load(i) for i in range(len(reader))]
    bank = pair_bank(loaded, [reader.name(i) for i in range(len(reader))], min_size=cfg.crop, device=device)
    return BatchedPairs(bank, crop=cfg.crop, augment=cfg.augment)


def _batched_nyu(cfg: DatasetConfig, section: str, device: torch.device) -> BatchedSynth:
    from ..data.nyu import depth_divisor, nyu_haze_dataset

    assert cfg.path is not None and cfg.crop is not None
    scenes = nyu_haze_dataset(cfg.path, cfg.params, holdout=cfg.holdout, train=True, crop=cfg.crop,
                              augment=cfg.augment, limit=cfg.limit, seed=0, where=section)
    scenes.cache = False  # each scene is read once, into the bank
    images, depths, scales = [], [], []
    for i in range(len(scenes)):
        rgb, depth = scenes.scene(i)  # depth in file units, rounded to 8 bits as the per-sample path
        images.append(rgb)
        depths.append(depth.astype(np.uint8))  # exact in the float16 bank; scaled per crop
        scales.append(1.0 / depth_divisor(depth, scenes.depth_units, scenes.depth_scale))
    bank = ImageBank.from_arrays(images, [s.name for s in scenes.scenes], depths=depths, depth_scales=scales,
                                 min_size=cfg.crop, device=device)
    return BatchedSynth(bank, "haze", {"beta": scenes.beta, "airlight": scenes.airlight}, crop=cfg.crop,
                        augment=cfg.augment)


class Repeated(Dataset):
    """A small data set seen ``times`` times per epoch."""

    def __init__(self, base: Dataset, times: int) -> None:
        self.base, self.times = base, times

    def __len__(self) -> int:
        return len(self.base) * self.times  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.base[index % len(self.base)]  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


class KeyedDataset(Dataset):
    """Index by ``(epoch, index)``: the sample's randomness depends on those and the seed only.

    Data sets with ``set_epoch`` (synthesis) get it; for the others torch's global generator is
    seeded from the key inside a forked RNG scope (random crops/flips of paired data), so batches are
    the same with any number of worker processes and after a resume.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base, self.seed = base, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(f"{self.seed}/{epoch}/{index}".encode()))
            item = self.base[index]
        item = dict(item)
        params = item.pop("params", None) or {}  # per-sample parameters vary in keys: not collated
        item["degradation"] = str(params.get("degradation", ""))  # lets a teacher supervise one kind
        sigma = params.get("sigma")  # per-sample noise level (0-255), NaN when the degradation has none
        item["sigma"] = float(sigma) if isinstance(sigma, (int, float)) and not isinstance(sigma, bool) else math.nan
        return item
