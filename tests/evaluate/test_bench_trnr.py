"""``kdrestore bench trnr`` end to end on a tiny fake data root (the real one is not needed)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import kdrestore.evaluate.bench as bench
import kdrestore.evaluate.bench_trnr as bench_trnr
from kdrestore.cli import main
from kdrestore.data import write_image
from kdrestore.errors import KdrestoreError


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for i, level in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        clean = np.clip(level + rng.uniform(-0.05, 0.05, (24, 24)), 0, 1)
        write_image(tmp_path / "train/BSD400-gray" / f"{i}.png", clean)
    for i in range(2):
        write_image(tmp_path / "denoise/Set12" / f"{i:02d}.png", rng.uniform(0, 1, (20, 20)))
    monkeypatch.setattr(bench, "measure_latency", lambda *a, **k: SimpleNamespace(median_ms=0.0))  # not timed here
    small = {"n_freqs": 2, "k_shot": 1, "query_freqs": 1, "query_shots": 1, "threshold": 0.5, "stride": 6}
    monkeypatch.setitem(bench_trnr.TASKS, "denoise", bench_trnr.FewShotTask(
        **{**bench_trnr.TASKS["denoise"].__dict__, "tasks": small}))
    return tmp_path


def test_bench_trains_both_rows_on_the_same_images_and_scores_both_noise_levels(fake_root, tmp_path, capsys):
    out = tmp_path / "trnr.json"
    assert main(["bench", "trnr", "--task", "denoise", "--data", str(fake_root), "--steps", "2", "--batch", "2",
                 "--crop", "12", "--images", "60%", "--test-limit", "1", "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Set12 s25 PSNR" in text and "Set12 s50 PSNR" in text and "trnr" in text and "ordinary" in text
    (result,) = json.loads(out.read_text())
    assert result["images"] == 3 and result["clusters"] == 3 and result["patches"] == 27
    assert result["budget"]["patches_per_step"] == 2 * 3  # tasks x (support + query) patches
    assert [r["method"] for r in result["rows"]] == ["ordinary", "trnr"]
    for r in result["rows"]:
        assert set(r["scores"]) == {"Set12 s25", "Set12 s50"}
        assert r["scores"]["Set12 s25"]["psnr"] > r["scores"]["Set12 s50"]["psnr"]
    assert result["input_psnr"]["Set12 s25"] > result["input_psnr"]["Set12 s50"]


def test_image_count_and_errors(fake_root):
    folder = fake_root / "train/BSD400-gray"
    assert bench_trnr.image_count(2, folder) == 2 and bench_trnr.image_count("20%", folder) == 1
    with pytest.raises(KdrestoreError, match="asks for 9 of the 5"):
        bench_trnr.image_count(9, folder)
    with pytest.raises(KdrestoreError, match="percentage"):
        bench_trnr.image_count("many", folder)
    with pytest.raises(KdrestoreError, match="not 'dehaze'"):
        bench_trnr.run_trnr_bench("dehaze", fake_root)
