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


def _run_main(pack_data, monkeypatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["pack_data.py", *args])
    return pack_data.main()


def test_only_the_named_peers_travel_and_the_checkout_counts_against_the_call(pack_data, tmp_path, monkeypatch):
    full, peers, out = _data_root(tmp_path / "full"), tmp_path / "peers", tmp_path / "job"
    for rel in ("FFDNet/net_gray.pth", "GCANet/wacv_gcanet_dehaze.pth"):
        (peers / rel).parent.mkdir(parents=True, exist_ok=True)
        (peers / rel).write_bytes(b"\0" * 1000)
    common = ["--data", str(full), "--peers", str(peers), "--out", str(out), "--whole",
              "--rain100l-pairs", "1", "--nyu-scenes", "1", "--peer-files", "FFDNet/net_gray.pth"]
    monkeypatch.setattr(pack_data, "checkout_mb", lambda: 9.0)
    assert _run_main(pack_data, monkeypatch, *common) == 0
    assert [p.name for p in (out / "peers").rglob("*.pth")] == ["net_gray.pth"]
    # a checkout that leaves less room than the job takes: refused, whatever the job alone would weigh
    monkeypatch.setattr(pack_data, "checkout_mb", lambda: pack_data.CALL_LIMIT_MB - 0.001)
    assert _run_main(pack_data, monkeypatch, *common) == 1


def test_the_checkout_is_measured_without_ignored_folders(pack_data):
    readme = (pack_data.ROOT / "README.md").stat().st_size / 1e6
    # .venv alone weighs far more than a call carries: counting ignored folders would break this bound
    assert readme < pack_data.checkout_mb() < pack_data.CALL_LIMIT_MB / 2
