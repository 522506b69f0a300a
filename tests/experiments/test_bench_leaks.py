"""`kdrestore bench` checks the training folders of its tables against the test sets it reports on."""
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from kdrestore.cli import main
from kdrestore.data.leakguard import LeakError
from kdrestore.experiments.bench_leaks import bench_data, bench_leak_guard


def photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = sum(np.asarray(Image.fromarray((rng.random((c, c)) * 255).astype(np.uint8)).resize((40, 40)), float) / c
              for c in (4, 8, 16))
    return Image.fromarray(((img - img.min()) / np.ptp(img) * 255).astype(np.uint8))


def test_a_bench_whose_test_set_is_in_its_training_folder_is_stopped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDRESTORE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    for sub, seeds in (("train/BSD400-gray", [1, 2, 3]), ("denoise/Set12", [4, 5])):
        (root / sub).mkdir(parents=True)
        for s in seeds:
            photo(s).save(root / sub / f"{s}.png")
    assert [label for label, *_ in bench_data("distill", root, ["denoise"])] == ["denoise"]
    assert bench_leak_guard("distill", root, tasks=["denoise"], quiet=True)[0]["result"] == "clean"
    ImageOps.mirror(photo(2)).save(root / "denoise/Set12" / "copy.png")
    with pytest.raises(LeakError, match=r"Set12/copy\.png"):
        bench_leak_guard("distill", root, tasks=["denoise"], quiet=True)
    assert main(["bench", "distill", "--task", "denoise", "--data", str(root), "--steps", "1"]) == 2  # before training
    assert "kdrestore bench distill (denoise) stopped" in capsys.readouterr().err
    out = tmp_path / "bench.json"
    records = bench_leak_guard("distill", root, tasks=["denoise"], allow_leaks=True, json=str(out), quiet=True)
    saved = json.loads((tmp_path / "bench.json.leak_check.json").read_text())
    assert saved == records and saved[0]["override"] is True and saved[0]["result"] == "1 leaked"
