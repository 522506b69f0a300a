"""A held-out part of a training folder: validation never sees a training image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdrestore.config import ConfigError, load_config
from kdrestore.data.holdout import holdout_split
from kdrestore.engine.datasets import build_dataset
from kdrestore.errors import KdrestoreError


def _folder(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((12, 12, 3), i * 10, np.uint8)).save(root / f"img{i:02d}.png")
    return root


def test_split_is_disjoint_and_complete() -> None:
    items = list(range(10))
    train, val = holdout_split(items, 3, "train"), holdout_split(items, 3, "val")
    assert train == list(range(7)) and val == [7, 8, 9]
    assert holdout_split(items, None, "val") == items
    with pytest.raises(KdrestoreError, match="data.val.holdout: cannot hold out 10 of 10"):
        holdout_split(items, 10, "val", "data.val")


def test_recipe_trains_and_validates_on_disjoint_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "clean", 8)
    section = {"kind": "synth", "path": str(folder), "degradation": "awgn", "mode": "rgb", "holdout": 3}
    cfg = load_config(data={"data": {"train": {**section, "crop": 8}, "val": {**section, "crop": None}}})
    train = build_dataset(cfg.data.train, "denoise", train=True, seed=0)
    val = build_dataset(cfg.data.val, "denoise", train=False, seed=0)
    train_names = {train.name(i) for i in range(len(train))}
    val_names = {val.name(i) for i in range(len(val))}
    assert val_names == {"img05", "img06", "img07"} and len(train_names) == 5
    assert not train_names & val_names


def test_same_folder_with_different_holdouts_is_refused(tmp_path: Path) -> None:
    section = {"kind": "synth", "path": str(tmp_path), "degradation": "awgn"}
    with pytest.raises(ConfigError, match="hold out 20 and None"):
        load_config(data={"data": {"train": {**section, "holdout": 20}, "val": section}})


def test_holdout_on_builtin_data_is_refused() -> None:
    cfg = load_config(data={"data": {"train": {"kind": "builtin", "holdout": 2}}})
    with pytest.raises(KdrestoreError, match="data.train.holdout: a 'builtin' data set"):
        build_dataset(cfg.data.train, "denoise", train=True, seed=0)


def test_paired_holdout(tmp_path: Path) -> None:
    _folder(tmp_path / "input", 6)
    _folder(tmp_path / "target", 6)
    base = {"kind": "paired", "path": str(tmp_path), "mode": "rgb", "crop": None, "holdout": 2}
    cfg = load_config(data={"data": {"train": base, "val": base}})
    val = build_dataset(cfg.data.val, "denoise", train=False, seed=0)
    train = build_dataset(cfg.data.train, "denoise", train=True, seed=0)
    assert [d.stem for d, _ in val.pairs] == ["img04", "img05"] and len(train) == 4
