"""N-frequency-K-shot tasks (TRNR episodes) over the clustered patches of a few clean images.

One item is one task: a **support** set of ``n_freqs * k_shot`` degraded/clean patch pairs, ``k_shot``
distinct patches from each of ``n_freqs`` distinct clusters ("frequencies", :mod:`.patches`), and a
**query** set of ``query_shots`` patches from each of ``query_freqs`` further clusters that are not in
the support, so the outer loss measures how the adapted network does on an unseen frequency.
With ``tasks.query: official`` the query follows the authors' code instead: ``query_shots`` NEW patches
(not in the support) from each of ``n_freqs - 1`` of the support's clusters plus ``query_freqs`` clusters
not in the support ((n_freqs - 1 + query_freqs) x query_shots query patches).
Clusters are drawn uniformly (a rare texture counts as much as the sky), patches uniformly within a
cluster. Each patch is augmented (one of 8 flips/rot90) and degraded independently, as
:class:`.synth.SynthDataset` does for a crop.

Item ``i`` of epoch ``e`` draws everything from ``numpy.random.default_rng([seed, e, i])``: the same
task whatever the worker count, the order of access or a resume. Items::

    input, target              (n_freqs * k_shot) x C x P x P   support (degraded, clean)
    query_input, query_target  (query_freqs * query_shots) x C x P x P
    support_clusters           n_freqs cluster ids;  query_clusters: query_freqs cluster ids
    name                       "task-<epoch>-<index>";  params: {"degradation": name}
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import build_section
from ..errors import KdrestoreError
from .imageio import Mode, PathLike, list_images, read_image
from .paired import dihedral, to_tensor
from .patches import PatchBank, build_patch_bank
from .synth import as_mode


@dataclass
class TaskOptions:
    """``data.train.tasks`` of a recipe (the patch size is ``data.train.crop``)."""

    n_freqs: int = 8  # N: clusters in the support
    k_shot: int = 2  # K: patches per support cluster
    query_freqs: int = 1  # clusters of the query, none of them in the support
    query_shots: int = 4  # patches per query cluster
    query: str = "unseen"  # "unseen": query clusters not in the support; "official": n-1 support + new ones
    stride: int | None = None  # patch grid step (default: half the patch size)
    bins: int = 32  # intensity histogram bins
    threshold: float = 0.2  # symmetric-KL radius of a cluster (leader algorithm)
    tasks_per_epoch: int | None = None  # default: patches // (n_freqs * k_shot)
    cache_dir: str | None = None  # store the clustering here (patches-<hash>.npz)


class TaskDataset(Dataset):
    """Tasks over a few clean images (module doc); ``clean`` a folder or in-memory H x W [x C] arrays."""

    def __init__(self, clean: PathLike | Sequence[np.ndarray], degradation: str,
                 params: Mapping[str, Any] | None = None, *, patch: int = 48, mode: Mode = "rgb",
                 augment: bool = True, limit: int | None = None, seed: int = 0,
                 options: TaskOptions | Mapping[str, Any] | None = None, where: str = "data.train") -> None:
        o = options if isinstance(options, TaskOptions) else build_section(TaskOptions, dict(options or {}),
                                                                           f"{where}.tasks")
        for name in ("n_freqs", "k_shot", "query_freqs", "query_shots", "bins"):
            if getattr(o, name) < 1:
                raise KdrestoreError(f"{where}.tasks.{name} must be >= 1, got {getattr(o, name)}")
        if o.query not in ("unseen", "official"):
            raise KdrestoreError(f"{where}.tasks.query must be 'unseen' or 'official', got {o.query!r}")
        sources = list_images(clean) if isinstance(clean, (str, Path)) else list(clean)
        sources = sources[:limit] if limit is not None else sources
        if not sources:
            raise KdrestoreError(f"{where}.path: no images found in {clean}")
        images = [read_image(s, mode) if isinstance(s, (str, Path)) else as_mode(s, mode) for s in sources]
        self.opts, self.degradation, self.params = o, degradation, dict(params or {})
        self.augment, self.seed, self.epoch, self.where = augment, int(seed), 0, where
        self.bank: PatchBank = build_patch_bank(images, patch, stride=o.stride or max(patch // 2, 1), bins=o.bins,
                                                threshold=o.threshold, min_size=max(o.k_shot, o.query_shots),
                                                cache_dir=o.cache_dir)
        self.groups = self.bank.members()
        need = o.n_freqs + o.query_freqs
        usable = sum(len(g) >= self.min_cluster for g in self.groups)
        if usable < need:
            raise KdrestoreError(
                f"{where}.tasks: the patches of {len(images)} image(s) form {usable} cluster(s) of at least "
                f"{self.min_cluster} patches, fewer than n_freqs + query_freqs = {need}; lower "
                f"tasks.threshold (now {o.threshold}), tasks.k_shot or tasks.query_shots, or add images")
        self.length = o.tasks_per_epoch or max(len(self.bank.labels) // (o.n_freqs * o.k_shot), 1)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def min_cluster(self) -> int:
        """Patches a cluster needs to take part in a task (official queries take new patches of support clusters)."""
        o = self.opts
        return o.k_shot + o.query_shots if o.query == "official" else max(o.k_shot, o.query_shots)

    @property
    def query_size(self) -> int:
        o = self.opts
        return (o.n_freqs - 1 + o.query_freqs if o.query == "official" else o.query_freqs) * o.query_shots

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
        """``(support clusters, query clusters, support patch ids, query patch ids)`` of one task."""
        o = self.opts
        big = [c for c, g in enumerate(self.groups) if len(g) >= self.min_cluster]
        chosen = rng.choice(big, o.n_freqs + o.query_freqs, replace=False)
        support, query = chosen[:o.n_freqs], chosen[o.n_freqs:]
        picked = {int(c): [int(i) for i in rng.choice(self.groups[c], o.k_shot, replace=False)] for c in support}
        s_ids = [i for c in support for i in picked[int(c)]]
        if o.query == "official":  # n - 1 of the support's clusters (new patches) + the unseen ones
            kept = rng.choice(support, o.n_freqs - 1, replace=False)
            query = np.concatenate([kept, query])
        q_ids = []
        for c in query:
            left = [int(i) for i in self.groups[c] if int(i) not in picked.get(int(c), [])]
            q_ids += [int(i) for i in rng.choice(left, o.query_shots, replace=False)]
        return support, query, s_ids, q_ids

    def _pairs(self, ids: list[int], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from ..degrade import degrade

        degraded, clean = [], []
        for i in ids:
            patch = self.bank.crop(i)
            if self.augment:
                patch = dihedral([patch], int(rng.integers(0, 8)))[0]
            patch = np.ascontiguousarray(patch)
            out = degrade(self.degradation, patch, seed=rng, **self.params)
            degraded.append(to_tensor(out.degraded.reshape(patch.shape)))
            clean.append(to_tensor(patch))
        return torch.stack(degraded), torch.stack(clean)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        support, query, s_ids, q_ids = self.draw(rng)
        x, y = self._pairs(s_ids, rng)
        qx, qy = self._pairs(q_ids, rng)
        return {"input": x, "target": y, "query_input": qx, "query_target": qy,
                "support_clusters": torch.as_tensor(support, dtype=torch.long),
                "query_clusters": torch.as_tensor(query, dtype=torch.long),
                "name": f"task-{self.epoch}-{index}", "params": {"degradation": self.degradation}}
