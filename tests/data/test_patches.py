"""TRNR patch analysis (histograms, KL, leader clustering, cache) and the N-frequency-K-shot task set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import kdrestore.data.patches as patches
from kdrestore.data.episodes import TaskDataset
from kdrestore.data.patches import build_patch_bank, intensity_histograms, kl_divergence, leader_clusters, symmetric_kl
from kdrestore.errors import KdrestoreError

LEVELS = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)


def band(level: float, n: int = 1, size: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` patches of uniform noise in a narrow band around ``level``: same statistics, other pixels."""
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.uniform(-0.04, 0.04, (n, size, size)), 0, 1).astype(np.float32)


def level_images(levels=LEVELS, side: int = 32) -> list[np.ndarray]:
    """One image per level: all its patches fall in one cluster whose level identifies it."""
    return [band(v, 1, side, seed=i)[0] for i, v in enumerate(levels)]


def test_kl_is_zero_on_equal_histograms_positive_otherwise_and_the_symmetric_one_is_symmetric():
    h = intensity_histograms(np.concatenate([band(0.2, 2), band(0.8, 1)]), bins=16)
    assert np.allclose(h.sum(1), 1.0) and (h > 0).all()
    assert kl_divergence(h[0], h[0]) == pytest.approx(0.0, abs=1e-12)
    assert symmetric_kl(h[0], h[0]) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(h[0], h[2]) > 1.0 and kl_divergence(h[0], h[2]) != pytest.approx(kl_divergence(h[2], h[0]))
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    assert symmetric_kl(p, q) == pytest.approx(symmetric_kl(q, p))
    assert symmetric_kl(p, q) == pytest.approx(0.5 * sum((p - q) * np.log(p / q)))


def test_leader_clustering_groups_same_statistics_splits_others_and_follows_the_threshold():
    dark, bright = band(0.2, 6, seed=1), band(0.8, 6, seed=2)
    order = np.random.default_rng(0).permutation(12)
    hists = intensity_histograms(np.concatenate([dark, bright])[order], bins=16)
    is_dark = order < 6
    labels = leader_clusters(hists, threshold=0.5)
    assert len(set(labels)) == 2 and len(set(labels[is_dark])) == 1 and len(set(labels[~is_dark])) == 1
    assert labels[0] == 0  # the first patch leads cluster 0
    assert np.array_equal(labels, leader_clusters(hists, threshold=0.5))  # deterministic
    assert len(set(leader_clusters(hists, threshold=1e9))) == 1  # a huge radius: one cluster
    distinct = len(np.unique(hists.round(12), axis=0))
    assert 2 < distinct == len(set(leader_clusters(hists, threshold=0.0)))  # zero radius: equal histograms only
    assert 2 < len(set(leader_clusters(hists, threshold=0.05))) < distinct


def test_small_clusters_are_dissolved_into_the_nearest_leader():
    hists = intensity_histograms(np.concatenate([band(0.2, 5), band(0.8, 5), band(0.3, 1, seed=9)]), bins=16)
    alone = leader_clusters(hists, threshold=0.5)
    assert len(set(alone)) == 3
    merged = leader_clusters(hists, threshold=0.5, min_size=2)
    assert len(set(merged)) == 2 and merged[10] == merged[0]  # the stray patch joins the dark one
    with pytest.raises(ValueError, match="threshold"):
        leader_clusters(hists, threshold=-1)


def test_patch_bank_grid_and_cache(tmp_path, monkeypatch):
    imgs = level_images()[:3]
    bank = build_patch_bank(imgs, 16, stride=8, threshold=0.5, cache_dir=tmp_path)
    assert bank.positions.shape == (27, 3) and bank.clusters == 3
    assert np.array_equal(bank.crop(4), imgs[0][8:24, 8:24, None])
    assert build_patch_bank([imgs[0][:10, :12]], 16).crop(0).shape == (16, 16, 1)  # small: padded
    assert [sorted(set(bank.positions[g, 0])) for g in bank.members()] == [[0], [1], [2]]
    assert len(list(tmp_path.glob("patches-*.npz"))) == 1
    def recluster(*args, **kwargs):
        raise RuntimeError("clustered again")

    monkeypatch.setattr(patches, "leader_clusters", recluster)
    again = build_patch_bank(imgs, 16, stride=8, threshold=0.5, cache_dir=tmp_path)
    assert np.array_equal(again.labels, bank.labels) and np.array_equal(again.positions, bank.positions)
    with pytest.raises(RuntimeError, match="clustered again"):  # another setting is another key
        build_patch_bank(imgs, 16, stride=8, threshold=0.4, cache_dir=tmp_path)


def task_set(seed=0, **options):
    opts = {"n_freqs": 3, "k_shot": 2, "query_freqs": 2, "query_shots": 2, "threshold": 0.5, "stride": 8,
            "tasks_per_epoch": 6, **options}
    return TaskDataset(level_images(), "awgn", {"sigma": 5}, patch=16, mode="gray", seed=seed, options=opts)


def levels_of(patches_: torch.Tensor) -> set[int]:
    return {int(np.argmin([abs(float(p.mean()) - v) for v in LEVELS])) for p in patches_}


def test_tasks_never_put_a_query_cluster_in_the_support_and_are_deterministic():
    ds = task_set()
    assert len(ds) == 6
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            t = ds[i]
            assert t["input"].shape == t["target"].shape == (6, 1, 16, 16)
            assert t["query_input"].shape == (4, 1, 16, 16)
            support, query = set(t["support_clusters"].tolist()), set(t["query_clusters"].tolist())
            assert len(support) == 3 and len(query) == 2 and not support & query
            s_levels, q_levels = levels_of(t["target"]), levels_of(t["query_target"])  # from the pixels
            assert len(s_levels) == 3 and len(q_levels) == 2 and not s_levels & q_levels
            assert not torch.equal(t["input"], t["target"])  # degraded
    ds.set_epoch(1)
    a = ds[2]
    other = task_set()
    other.set_epoch(1)
    b = other[2]
    assert all(torch.equal(a[k], b[k]) for k in ("input", "target", "query_input", "support_clusters"))
    other.set_epoch(2)
    assert not torch.equal(other[2]["input"], a["input"])
    assert not torch.equal(task_set(seed=1)[0]["input"], task_set(seed=0)[0]["input"])


def test_too_few_clusters_names_the_field():
    with pytest.raises(KdrestoreError, match=r"data.train.tasks.*threshold"):
        task_set(n_freqs=6, query_freqs=2)
    with pytest.raises(KdrestoreError, match="data.train.tasks.k_shot"):
        task_set(k_shot=0)
    with pytest.raises(KdrestoreError, match="data.train.tasks.*nfreqs"):
        task_set(nfreqs=3)


def test_official_query_takes_new_patches_of_n_minus_1_support_clusters_and_one_new_cluster():
    ds = task_set(query="official", query_freqs=1)
    assert ds.query_size == (3 - 1 + 1) * 2
    for i in range(20):
        support, query, s_ids, q_ids = ds.draw(np.random.default_rng(i))
        support, query = [int(c) for c in support], [int(c) for c in query]
        assert len(query) == 3 and len(set(query) & set(support)) == 2 and query[-1] not in support
        assert not set(s_ids) & set(q_ids) and len(set(q_ids)) == len(q_ids) == 6
        labels = ds.bank.labels
        assert [int(labels[j]) for j in q_ids] == [c for c in query for _ in range(2)]
    t = ds[0]
    assert t["query_input"].shape == (6, 1, 16, 16) and len(levels_of(t["query_target"]) & levels_of(t["target"])) == 2
    with pytest.raises(KdrestoreError, match="tasks.query"):
        task_set(query="seen")
