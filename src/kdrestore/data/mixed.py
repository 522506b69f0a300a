"""Several data sources mixed by weight (``kind: mixed``), each sample tagged with its source's name.

Epoch ``e`` of a :class:`MixedDataset` of length ``N`` (default: the sum of the sources' lengths) gives
source ``s`` exactly ``round(N * w_s)`` slots (largest remainders), placed by a permutation drawn from
``(seed, e)``; the slots of source ``s`` visit a fresh permutation of its items (cycled when it has
fewer items than slots). Slot ``i`` is therefore a function of ``(seed, e, i)`` only, as every training
set must be (see :class:`kdrestore.engine.datasets.KeyedDataset`). A synthetic source is told the
epoch ``e * N + i`` before the item is read, so two slots that draw the same clean image in one epoch
still get different crops and degradations.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..errors import KdrestoreError


def quotas(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts proportional to ``weights`` summing to ``total`` (largest-remainder rounding)."""
    w = np.asarray(weights, np.float64)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


class MixedDataset(Dataset):
    """Weighted mixture of ``sources``; items gain ``'source'`` (the source's name)."""

    def __init__(self, sources: Sequence[Dataset], names: Sequence[str], weights: Sequence[float] | None = None,
                 seed: int = 0, length: int | None = None) -> None:
        if not sources or len(names) != len(sources):
            raise ValueError("need at least one source and one name per source")
        weights = list(weights) if weights is not None else [1.0] * len(sources)
        if len(weights) != len(sources) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be one non-negative number per source with a positive sum, got {weights}")
        self.sources, self.names, self.weights = list(sources), list(names), [float(w) for w in weights]
        self.sizes = [len(s) for s in self.sources]  # type: ignore[arg-type]
        self.length = int(length or sum(self.sizes))
        self.counts = quotas(self.weights, self.length)
        self.seed, self.epoch = int(seed), 0
        self._plans: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(source of each slot, item index within that source)`` for ``epoch``."""
        if epoch not in self._plans:
            rng = np.random.default_rng([self.seed, epoch, 0x6D6978])
            src = rng.permutation(np.repeat(np.arange(len(self.sources)), self.counts))
            idx = np.zeros(self.length, np.int64)
            for s, size in enumerate(self.sizes):
                slots = np.flatnonzero(src == s)
                laps = -(-len(slots) // size) if size else 0
                order = np.concatenate([rng.permutation(size) for _ in range(laps)]) if laps else np.zeros(0, np.int64)
                idx[slots] = order[: len(slots)]
            self._plans = {epoch: (src, idx)}  # one epoch at a time is all a sampler asks for
        return self._plans[epoch]

    def __getitem__(self, index: int) -> Any:
        src, idx = self.plan(self.epoch)
        s, j = int(src[index]), int(idx[index])
        source = self.sources[s]
        if hasattr(source, "set_epoch"):
            source.set_epoch(self.epoch * self.length + index)
        item = source[j]
        if item is None:
            return None
        return {**item, "source": self.names[s]}


def source_name(cfg: Any, index: int) -> str:
    """A source's tag: its ``name``, else ``kind:degradation`` / ``kind:folder``."""
    if cfg.name:
        return str(cfg.name)
    detail = cfg.degradation or (str(cfg.path).rstrip("/").rsplit("/", 1)[-1] if cfg.path else cfg.task) or index
    return f"{cfg.kind}:{detail}"


def build_mixed(cfg: Any, task: str, *, train: bool, seed: int, build: Callable[..., Dataset],
                where: str) -> MixedDataset:
    """A :class:`MixedDataset` from a ``kind: mixed`` section; ``build`` makes each source's data set."""
    if not cfg.sources:
        raise KdrestoreError(f"{where}.sources: a mixed data set needs at least one source")
    if cfg.weights is not None and len(cfg.weights) != len(cfg.sources):
        raise KdrestoreError(f"{where}.weights: {len(cfg.weights)} weights for {len(cfg.sources)} sources")
    if cfg.weights is not None and (any(w < 0 for w in cfg.weights) or sum(cfg.weights) <= 0):
        raise KdrestoreError(f"{where}.weights must be non-negative with a positive sum, got {cfg.weights}")
    if train and len({s.crop for s in cfg.sources}) > 1:
        raise KdrestoreError(f"{where}.sources: every source needs the same crop to share a batch, got "
                             f"{[s.crop for s in cfg.sources]}")
    if cfg.repeat != 1:
        raise KdrestoreError(f"{where}.repeat: a mixed set's epoch length is its 'limit' (default: all sources)")
    if any(s.kind == "mixed" for s in cfg.sources):
        raise KdrestoreError(f"{where}.sources: a mixed source cannot itself be mixed")
    if any(s.context is not None and s.context != cfg.context for s in cfg.sources):
        raise KdrestoreError(f"{where}.context: set the whole-image view on the mixed set (every source then "
                             f"gives it), not on a source; got {[s.context for s in cfg.sources]}")
    names = [source_name(s, i) for i, s in enumerate(cfg.sources)]
    if len(set(names)) != len(names):
        raise KdrestoreError(f"{where}.sources: source names must differ (give each a 'name'), got {names}")
    sources = []
    for i, (s, n) in enumerate(zip(cfg.sources, names)):
        try:
            s = dataclasses.replace(s, context=cfg.context)
            sources.append(build(s, task, train=train, seed=zlib.crc32(f"{seed}/{n}".encode()) & 0x7FFFFFFF))
        except KdrestoreError as exc:
            raise KdrestoreError(f"{where}.sources[{i}] ({n}): {exc}") from exc
    return MixedDataset(sources, names, cfg.weights, seed=seed, length=cfg.limit)
