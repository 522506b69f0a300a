"""``kdrestore bench trnr`` end to end on a tiny fake data root (the real one is not needed)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import kdrestore.experiments.bench as bench
import kdrestore.experiments.bench_trnr as bench_trnr
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


def test_bench_trains_every_row_on_the_same_images_per_seed_and_reports_mean_and_spread(fake_root, tmp_path,
                                                                                        capsys):
    out = tmp_path / "trnr.json"
    assert main(["bench", "trnr", "--task", "denoise", "--data", str(fake_root), "--steps", "4", "--batch", "2",
                 "--crop", "12", "--images", "60%", "--test-limit", "1", "--seeds", "0", "1", "--json", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Set12 s25" in text and "Set12 s50" in text and "trnr-official" in text and "ordinary" in text
    record = json.loads(out.read_text())
    assert record["bench"] == "trnr" and record["seeds"] == [0, 1] and record["command"].startswith("kdrestore bench")
    assert record["budget"]["kind"] == "steps" and record["device"].startswith("CPU")
    rows = {(r["row"], r["metric"]): r for r in record["rows"]}
    assert set(rows) == {(m, t) for m in ("ordinary", "trnr", "trnr-official") for t in ("Set12 s25", "Set12 s50")}
    for (row, metric), r in rows.items():
        assert set(r["per_seed"]) == {"0", "1"} and r["psnr_spread"] is not None
        assert r["verdict"] == "reference" if row == "ordinary" else r["verdict"] in ("helps", "hurts", "within spread")
    assert rows[("trnr", "Set12 s25")]["psnr_mean"] > rows[("trnr", "Set12 s50")]["psnr_mean"]
    unit = record["units"][0]["result"]
    assert unit["images"] == 3 and unit["clusters"] == 3 and unit["patches"] == 27
    per_step = {r["method"]: r["patches_per_step"] for r in unit["rows"]}
    assert per_step == {"ordinary": 2 * 3, "trnr": 2 * 3, "trnr-official": 2 * 4}  # official: (n-1+1) query clusters


def test_image_count_and_errors(fake_root):
    folder = fake_root / "train/BSD400-gray"
    assert bench_trnr.image_count(2, folder) == 2 and bench_trnr.image_count("20%", folder) == 1
    with pytest.raises(KdrestoreError, match="asks for 9 of the 5"):
        bench_trnr.image_count(9, folder)
    with pytest.raises(KdrestoreError, match="percentage"):
        bench_trnr.image_count("many", folder)
    with pytest.raises(KdrestoreError, match="does not cover 'dehaze'"):
        bench_trnr.trnr_bench(["dehaze"], fake_root, bench_trnr.BenchOptions())


def test_a_bench_run_again_with_resume_reads_its_finished_rows_back(fake_root, tmp_path, monkeypatch, capsys):
    args = ["bench", "trnr", "--task", "denoise", "--data", str(fake_root), "--steps", "4", "--batch", "2", "--crop",
            "12", "--images", "60%", "--test-limit", "1", "--methods", "ordinary", "trnr", "--resume",
            str(tmp_path / "units"), "--quiet"]
    assert main(args + ["--json", str(tmp_path / "a.json")]) == 0
    assert len(list((tmp_path / "units").glob("unit-*.json"))) == 2  # one file per row

    def no_training(*a, **k):
        raise AssertionError("a finished row trained again")

    monkeypatch.setattr(bench_trnr, "train_and_score", no_training)
    capsys.readouterr()
    assert main(args + ["--json", str(tmp_path / "b.json")]) == 0
    assert "2 of 2 units finished before" in capsys.readouterr().out
    first, again = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert again["rows"] == first["rows"] and again["units"] == first["units"]
    with pytest.raises(AssertionError, match="trained again"):  # another seed is another row: it trains
        main(args + ["--seeds", "1"])
