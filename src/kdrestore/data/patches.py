"""Patch analysis for TRNR: cut clean images into patches and group them into "frequencies".

TRNR (Ran et al., "TRNR: Task-Driven Image Rain and Noise Removal with a Few Images Based on Patch
Analysis", arXiv 2112.01924) clusters the clean training patches by the KL divergence between their
intensity histograms; each cluster is one "frequency" of an N-frequency-K-shot task.

Our reading (bins, smoothing, the symmetric divergence and the small-cluster rule are ours):

* a patch's **histogram** is the distribution of its luma (BT.601 for RGB) over ``bins`` equal bins
  of [0, 1], smoothed by ``eps`` per bin and renormalised, so every divergence is finite;
* the **divergence** is the symmetric KL, ``D(p, q) = (KL(p||q) + KL(q||p)) / 2`` (natural log);
* **online leader clustering**, one pass over the patches in a fixed order (image by image, row-major):
  a patch joins the cluster of the nearest leader when ``D <= threshold``, else it becomes the leader
  of a new cluster; leaders never move, so the result depends only on the order and the threshold;
* clusters with fewer than ``min_size`` members are dissolved and their patches join the nearest
  remaining leader (every patch is used; every cluster can give ``min_size`` distinct patches).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import KdrestoreError
from ..fsutil import atomic_path
from .paired import pad_to

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
CACHE_VERSION = 1


def intensity_histograms(patches: np.ndarray, bins: int = 32, eps: float = 1e-3) -> np.ndarray:
    """Smoothed luma histograms (rows sum to 1) of ``patches`` ``N x P x P [x C]`` in [0, 1]."""
    a = np.asarray(patches, np.float32)
    if a.ndim == 4:
        a = a[..., 0] if a.shape[3] == 1 else a[..., :3] @ _LUMA
    if a.ndim != 3:
        raise ValueError(f"patches must be N x P x P or N x P x P x C, got shape {np.shape(patches)}")
    idx = np.clip((a.reshape(len(a), -1) * bins).astype(np.int64), 0, bins - 1)
    rows = np.repeat(np.arange(len(a)), idx.shape[1])
    counts = np.bincount(rows * bins + idx.ravel(), minlength=len(a) * bins).reshape(len(a), bins)
    h = counts / max(idx.shape[1], 1) + eps
    return h / h.sum(1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p || q) = sum p log(p / q)`` over the last axis (broadcasts); inputs must be positive."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(KL(p||q) + KL(q||p)) / 2``: symmetric, zero for equal histograms."""
    return 0.5 * (kl_divergence(p, q) + kl_divergence(q, p))


def leader_clusters(hists: np.ndarray, threshold: float, min_size: int = 1) -> np.ndarray:
    """Cluster labels ``0..C-1`` of histogram rows by the online leader algorithm (module doc)."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    h = np.asarray(hists, np.float64)
    logs = np.log(h)
    leaders: list[int] = []
    labels = np.empty(len(h), np.int64)
    lead_h = np.empty((0, h.shape[1]))
    lead_log = np.empty((0, h.shape[1]))
    for i in range(len(h)):
        if leaders:
            d = 0.5 * ((h[i] - lead_h) * (logs[i] - lead_log)).sum(1)  # symmetric KL to every leader
            j = int(np.argmin(d))
            if d[j] <= threshold:
                labels[i] = j
                continue
        labels[i] = len(leaders)
        leaders.append(i)
        lead_h, lead_log = np.vstack([lead_h, h[i]]), np.vstack([lead_log, logs[i]])
    sizes = np.bincount(labels, minlength=len(leaders))
    keep = np.flatnonzero(sizes >= min_size)
    if len(keep) == len(leaders) or len(keep) == 0:
        return labels
    small = sizes[labels] < min_size
    d = 0.5 * ((h[small, None] - lead_h[None, keep]) * (logs[small, None] - lead_log[None, keep])).sum(2)
    labels[small] = keep[np.argmin(d, axis=1)]
    return np.searchsorted(keep, labels)  # renumber 0..len(keep)-1, order of the leaders kept


def patch_grid(h: int, w: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of ``patch``-sized windows every ``stride`` pixels, the last flush with the edge."""
    def starts(n: int) -> list[int]:
        s = list(range(0, max(n - patch, 0) + 1, stride))
        return s if s[-1] == max(n - patch, 0) else s + [n - patch]
    return [(t, l) for t in starts(h) for l in starts(w)]


@dataclass(frozen=True)
class PatchBank:
    """Clean patches of a few images grouped by frequency: ``positions[i] = (image, top, left)``."""

    images: list[np.ndarray]  # H x W x C float32, padded to at least patch x patch
    positions: np.ndarray  # N x 3 int64
    labels: np.ndarray  # N cluster labels 0..C-1
    patch: int

    @property
    def clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def members(self) -> list[np.ndarray]:
        """The patch indices of each cluster, in order."""
        order = np.argsort(self.labels, kind="stable")
        return np.split(order, np.cumsum(np.bincount(self.labels, minlength=self.clusters))[:-1])

    def crop(self, i: int) -> np.ndarray:
        """Clean patch ``i`` (P x P x C)."""
        k, t, l = (int(v) for v in self.positions[i])
        return self.images[k][t:t + self.patch, l:l + self.patch]


def _cache_key(images: Sequence[np.ndarray], settings: dict[str, object]) -> str:
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **settings}, sort_keys=True).encode())
    for img in images:
        h.update(str(img.shape).encode())
        h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()[:20]


def build_patch_bank(images: Sequence[np.ndarray], patch: int, *, stride: int | None = None, bins: int = 32,
                     threshold: float = 0.2, min_size: int = 1, eps: float = 1e-3,
                     cache_dir: str | Path | None = None) -> PatchBank:
    """Cut ``images`` (H x W [x C] in [0, 1], reflect-padded when smaller than a patch) into patches
    and cluster them (module doc).

    With ``cache_dir`` the clustering is stored as ``patches-<key>.npz``, ``key`` a hash of the pixels
    and every setting, and read back by later calls.
    """
    if patch < 1 or (stride is not None and stride < 1) or bins < 2:
        raise ValueError(f"need patch >= 1, stride >= 1, bins >= 2; got {patch}, {stride}, {bins}")
    stride = stride or patch
    arrays = [np.asarray(im, np.float32) for im in images]
    imgs = [pad_to(a[:, :, None] if a.ndim == 2 else a, patch, patch) for a in arrays]
    if not imgs:
        raise KdrestoreError("patch analysis needs at least one clean image")
    settings = {"patch": patch, "stride": stride, "bins": bins, "threshold": threshold, "min_size": min_size,
                "eps": eps}
    cache = Path(cache_dir) / f"patches-{_cache_key(imgs, settings)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return PatchBank(imgs, z["positions"], z["labels"], patch)
        except (OSError, ValueError, KeyError) as exc:
            raise KdrestoreError(f"patch cache {cache} is unreadable ({exc}); delete it to rebuild") from exc
    positions, hists = [], []
    for k, im in enumerate(imgs):
        grid = patch_grid(*im.shape[:2], patch, stride)
        positions += [(k, t, l) for t, l in grid]
        hists.append(intensity_histograms(np.stack([im[t:t + patch, l:l + patch] for t, l in grid]), bins, eps))
    pos, labels = np.array(positions, np.int64), leader_clusters(np.concatenate(hists), threshold, min_size)
    if cache is not None:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, positions=pos, labels=labels)
    return PatchBank(imgs, pos, labels, patch)
