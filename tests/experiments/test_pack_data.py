"""benchmarks/pack_data.py: the device job's data subset keeps every recipe's held-out part whole."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from kdrestore.data import find_pairs
from kdrestore.data.holdout import holdout_split
from kdrestore.data.nyu import find_nyu_scenes
from runutil import benchmark_script


@pytest.fixture(scope="module")
def pack_data() -> Iterator[ModuleType]:
    with benchmark_script("pack_data") as module:
        yield module


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)


def _data_root(root: Path, pairs: int = 24, scenes: int = 53) -> Path:
    for i in range(1, pairs + 1):
        _png(root / "train/Rain100L-train/rain" / f"rain-{i:03d}.png", i)
        _png(root / "train/Rain100L-train/norain" / f"norain-{i:03d}.png", i)
    for i in range(1, scenes + 1):
        _png(root / "train/NYUv2-indoor/rgb" / f"{i:04d}.png", i)
        _png(root / "train/NYUv2-indoor/depth" / f"{i:04d}.png", i)
    return root


def test_the_subset_validates_on_what_the_full_folder_validates_on(pack_data, tmp_path):
    full = _data_root(tmp_path / "full")
    chosen = pack_data.files_to_copy(full, [], rain_pairs=3, nyu_scenes=2)
    sub = tmp_path / "sub"
    for files in chosen.values():
        for f in files:
            (sub / f.relative_to(full)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, sub / f.relative_to(full))
    rain, nyu = pack_data.RAIN100L, pack_data.NYU
    assert pack_data.held_out(rain, full) == 20 and pack_data.held_out(nyu, full) == 50
    for folder, items, n_train in ((rain, find_pairs, 3), (nyu, lambda p: find_nyu_scenes(p).scenes, 2)):
        names = lambda xs: [Path(x[0] if isinstance(x, tuple) else x.rgb).name for x in xs]  # noqa: E731
        whole, part = items(full / folder), items(sub / folder)
        held = pack_data.held_out(folder, full)
        assert names(holdout_split(part, held, "val", "v")) == names(holdout_split(whole, held, "val", "v"))
        assert names(holdout_split(part, held, "train", "t")) == names(whole[:n_train])


def test_a_subset_without_training_items_or_larger_than_the_folder_is_refused(pack_data, tmp_path):
    full = _data_root(tmp_path)
    with pytest.raises(SystemExit, match=r"--rain100l-pairs\): 0 training items .* give 1 to 4 \(24 in the folder\)"):
        pack_data.files_to_copy(full, [], rain_pairs=0, nyu_scenes=2)
    with pytest.raises(SystemExit, match=r"--nyu-scenes\): 4 training items .* give 1 to 3"):
        pack_data.files_to_copy(full, [], rain_pairs=1, nyu_scenes=4)
