"""bench datafree: the multi-weather student is one unit over all tasks, compared per task with data-trained."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn

import kdrestore.data.tasks as data_tasks
import kdrestore.experiments.bench_datafree as bd
from kdrestore.config import load_config
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.bench_common import BenchOptions


@pytest.fixture
def fake(monkeypatch):
    trained = []

    def train(recipe, run_dir, opts):
        load_config(data=recipe)  # every recipe validates
        trained.append(recipe)
        return nn.Identity(), 0.0

    def evaluate(model, samples, conv, name, **kw):
        psnr = {"multi-weather": 20.0, "data-trained": 19.0}.get(name.split("/")[-1], 25.0)
        return SimpleNamespace(psnr=psnr, ssim=0.5, input_psnr=10.0, images=[0])

    monkeypatch.setattr(bd, "_train", train)
    monkeypatch.setattr(bd, "evaluate", evaluate)
    monkeypatch.setattr(bd, "load_model", lambda *a, **k: nn.Identity())
    monkeypatch.setattr(bd, "_cost", lambda *a, **k: {"params": 0, "macs": 0, "cpu_ms": 0.0})
    monkeypatch.setattr(data_tasks, "eval_samples", lambda *a, **k: (None, 0, "fake"))
    return trained


def test_multi_weather_trains_once_for_all_tasks_and_is_compared_per_task(fake):
    record = bd.datafree_bench("/data", BenchOptions(samples=800, seeds=[0, 1]), tasks=["denoise", "dehaze"],
                               rows=["data-trained", "multi-weather"])
    multi = [r for r in fake if r["name"] == "bench-datafree-multi"]
    assert len(multi) == 2 and all(r["train"]["steps"] == 2 * 100 for r in multi)  # one per seed, 2 tasks' budget
    rows = {(r["table"].split(":")[0], r["row"]): r for r in record["rows"]}
    assert set(rows) == {(f"datafree {t}", r) for t in ("denoise", "dehaze") for r in ("data-trained", "multi-weather")}
    assert rows[("datafree dehaze", "multi-weather")]["gain"] == pytest.approx(1.0)
    assert rows[("datafree dehaze", "multi-weather")]["verdict"] == "helps"  # no spread in fakes: 1 dB > 0
    assert {t["teacher"] for t in record["teachers"]} == {"dncnn-s25", "gcanet"}


def test_multi_weather_gets_one_rows_time_budget_per_task(fake):
    bd.datafree_bench("/data", BenchOptions(time_budget="2m"), tasks=["denoise", "dehaze", "derain"],
                      rows=["data-trained", "multi-weather"])
    budgets = {r["name"]: r["train"]["time_budget"] for r in fake}
    assert budgets["bench-datafree-multi"] == "360s"  # three tasks' worth, as with a step budget
    assert {v for k, v in budgets.items() if k != "bench-datafree-multi"} == {"2m"}


def test_the_advdeg_row_does_not_apply_to_denoising_with_a_fixed_sigma():
    with pytest.raises(KdrestoreError, match="'data-free-advdeg' does not apply to denoise"):
        bd.datafree_bench("/data", BenchOptions(), tasks=["denoise"], rows=["data-free-advdeg"])
