"""Mixed data sets: exact per-epoch source shares, determinism per (seed, epoch, index), tags, config."""
from collections import Counter

import pytest
import torch
from torch.utils.data import Dataset

from kdrestore.config import ConfigError, DatasetConfig, load_config
from kdrestore.data.mixed import MixedDataset, quotas
from kdrestore.engine.datasets import KeyedDataset, build_dataset
from kdrestore.errors import KdrestoreError


class Numbers(Dataset):
    """Items ``{'input': tensor([tag, i, epoch])}``; records the epochs it was told."""

    def __init__(self, tag: int, n: int) -> None:
        self.tag, self.n, self.epoch = tag, n, -1

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict:
        return {"input": torch.tensor([self.tag, i, self.epoch]), "name": f"{self.tag}-{i}"}


def test_quotas_are_exact_and_proportional():
    assert quotas([1, 1, 2], 8) == [2, 2, 4]
    assert quotas([1, 1, 1], 10) == [4, 3, 3] and sum(quotas([0.3, 0.7, 1e-9], 17)) == 17
    assert quotas([0, 1], 5) == [0, 5]


def test_every_source_gets_its_share_each_epoch_deterministically():
    def make(seed=0):
        return MixedDataset([Numbers(0, 3), Numbers(1, 50), Numbers(2, 7)], ["a", "b", "c"], [0.5, 0.3, 0.2],
                            seed=seed, length=40)

    ds = make()
    assert len(ds) == 40 and ds.counts == [20, 12, 8]
    epochs = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        items = [ds[i] for i in range(len(ds))]
        assert Counter(it["source"] for it in items) == {"a": 20, "b": 12, "c": 8}
        seen_a = Counter(int(it["input"][1]) for it in items if it["source"] == "a")
        assert set(seen_a) == {0, 1, 2} and max(seen_a.values()) - min(seen_a.values()) <= 1  # cycled evenly
        seen_b = [int(it["input"][1]) for it in items if it["source"] == "b"]
        assert len(set(seen_b)) == 12  # fewer slots than items: no repeats
        assert len({int(it["input"][2]) for it in items}) == 40  # each slot tells its source a unique epoch
        epochs.append([(it["source"], int(it["input"][1])) for it in items])
    assert epochs[0] != epochs[1]
    again = make()
    again.set_epoch(1)
    assert [(again[i]["source"], int(again[i]["input"][1])) for i in (39, 0, 17)] == [epochs[1][i] for i in (39, 0, 17)]
    other = make(seed=1)
    assert [(other[i]["source"], int(other[i]["input"][1])) for i in range(40)] != epochs[0]


def mixed_cfg(**over) -> DatasetConfig:
    data = {"kind": "mixed", "weights": [1, 3], "limit": 8, "sources": [
        {"kind": "builtin", "task": "derain", "crop": 16, "limit": 2, "name": "light", "params": {"n_layers": 1}},
        {"kind": "builtin", "task": "derain", "crop": 16, "limit": 3}]}
    data.update(over)
    return load_config(data={"task": "derain", "data": {"train": data}}).data.train


def test_recipe_builds_a_keyed_tagged_mixed_training_set():
    ds = build_dataset(mixed_cfg(), "derain", train=True, seed=0)
    keyed = KeyedDataset(ds, seed=0)
    items = [keyed[(0, i)] for i in range(8)]
    assert Counter(it["source"] for it in items) == {"light": 2, "builtin:derain": 6}
    again = KeyedDataset(build_dataset(mixed_cfg(), "derain", train=True, seed=0), seed=0)
    for i in (5, 2):
        b = again[(0, i)]
        assert b["source"] == items[i]["source"] and torch.equal(b["input"], items[i]["input"])
    assert any(not torch.equal(keyed[(1, i)]["input"], items[i]["input"]) for i in range(8))  # a new epoch


def test_mixed_recipes_are_checked(monkeypatch, tmp_path):
    with pytest.raises(KdrestoreError, match=r"weights: 1 weights for 2"):
        build_dataset(mixed_cfg(weights=[1]), "derain", train=True, seed=0)
    bad = mixed_cfg()
    bad.sources[1].crop = 32
    with pytest.raises(KdrestoreError, match="same crop"):
        build_dataset(bad, "derain", train=True, seed=0)
    with pytest.raises(KdrestoreError, match="at least one source"):
        build_dataset(mixed_cfg(sources=[]), "derain", train=True, seed=0)
    with pytest.raises(KdrestoreError, match=r"sources\[0\] \(paired:nowhere\)"):
        build_dataset(mixed_cfg(sources=[{"kind": "paired", "path": str(tmp_path / "nowhere")}], weights=None),
                      "derain", train=True, seed=0)
    with pytest.raises(ConfigError, match="sources"):
        load_config(data={"data": {"train": {"kind": "mixed", "sources": [{"kind": "synth", "pth": "x"}]}}})
    monkeypatch.setenv("RAINROOT", "/data/rain")
    cfg = load_config(data={"data": {"train": {"kind": "mixed", "sources": [{"kind": "paired", "path": "${RAINROOT}/L"}]}}})
    assert cfg.data.train.sources[0].path == "/data/rain/L"
