"""Batched pipeline in the trainer, time budgets and warm starts (--init-from)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdrestore.config import ConfigError, load_config
from kdrestore.engine import Trainer
from kdrestore.engine.init_from import init_model
from kdrestore.distill.method import Supervised
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from runutil import final_weights, losses_of, stop_at


@pytest.fixture()
def clean_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "train" / "clean"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


def recipe(folder: Path, **train) -> dict:
    section = {"kind": "synth", "path": str(folder), "degradation": "awgn", "params": {"sigma": [5, 50]},
               "mode": "gray", "holdout": 2}
    return {"name": "b", "task": "denoise",
            "model": {"name": "unet-tiny", "args": {"in_channels": 1, "width": 8, "levels": 2}},
            "data": {"train": {**section, "crop": 24, "pipeline": "batched"}, "val": {**section, "crop": None}},
            "train": {"steps": 4, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 2, **train}}


def test_batched_run_resumes_exactly(clean_folder: Path, tmp_path: Path) -> None:
    cfg = load_config(data=recipe(clean_folder, ema_decay=0.9))
    final = Trainer(cfg, tmp_path / "full", progress=False).fit()
    assert final["pipeline"] == "batched" and final["steps"] == 4 and 5 < final["val_psnr"] < 60
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut", method=stop_at(Supervised, cfg, 3), progress=False).fit()
    Trainer(cfg, tmp_path / "cut", resume=True, progress=False).fit()
    assert losses_of(tmp_path / "cut") == losses_of(tmp_path / "full")
    for k, v in final_weights(tmp_path / "full").items():
        assert torch.equal(v, final_weights(tmp_path / "cut")[k]), k
    header = (tmp_path / "full" / "log.csv").read_text().splitlines()[0]
    assert "samples_per_s" in header and "data_wait_share" in header


def test_batched_pipeline_needs_data_it_can_hold_on_the_device(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pipeline 'batched' needs kind 'synth' or 'nyu-haze' or 'paired'"):
        load_config(data={"data": {"train": {"kind": "tasks", "path": str(tmp_path), "pipeline": "batched"}}})


def test_time_budget_ends_a_run_validated_and_saved(clean_folder: Path, tmp_path: Path) -> None:
    cfg = load_config(data=recipe(clean_folder, steps=10**9, val_every=10**9), overrides=["train.time_budget=6s"])
    final = Trainer(cfg, tmp_path / "run", progress=False).fit()
    assert final["time_budget_s"] == 6 and final["steps"] > 2
    assert final["time_spent_s"] <= 6.5 and "val_psnr" in final
    assert json.loads((tmp_path / "run/checkpoints/latest.json").read_text())["step"] == final["steps"]
    # the learning rate fell along the time: the cosine reached its floor by the end
    with (tmp_path / "run/log.csv").open() as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f) if r.get("lr")]
    assert lrs[0] > 10 * lrs[-1]


def test_time_budget_too_short_is_refused_with_the_minimum(clean_folder: Path, tmp_path: Path) -> None:
    cfg = load_config(data=recipe(clean_folder), overrides=["train.time_budget=1s"])
    with pytest.raises(KdrestoreError, match=r"time_budget of 1 s is too short: one validation takes .* needs at least"):
        Trainer(cfg, tmp_path / "run", progress=False).fit()
    with pytest.raises(ConfigError, match="train.time_budget: expected a duration"):
        load_config(data=recipe(clean_folder), overrides=["train.time_budget=soon"])


def test_init_from_a_run_records_the_chain(clean_folder: Path, tmp_path: Path) -> None:
    first = load_config(data=recipe(clean_folder, ema_decay=0.9))
    Trainer(first, tmp_path / "a", progress=False).fit()
    second = load_config(data=recipe(clean_folder), overrides=[f"model.init_from={tmp_path / 'a'}"])
    trainer = Trainer(second, tmp_path / "b", progress=False)
    latest = json.loads((tmp_path / "a/checkpoints/latest.json").read_text())["dir"]
    from safetensors.torch import load_file
    ema = load_file(str(tmp_path / "a/checkpoints" / latest / "ema.safetensors"))
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, ema[k]), k
    trainer.fit()
    lineage = json.loads((tmp_path / "b/lineage.json").read_text())
    assert lineage == [{"kind": "run", "source": "a", "step": 4, "weights": "ema",
                        "final_metrics": json.loads((tmp_path / "a/final_metrics.json").read_text())}]
    third = load_config(data=recipe(clean_folder), overrides=[f"model.init_from={tmp_path / 'b'}"])
    Trainer(third, tmp_path / "c", progress=False).fit()
    chain = json.loads((tmp_path / "c/lineage.json").read_text())
    assert [r["source"] for r in chain] == ["a", "b"]


def test_init_from_weights_that_do_not_fit_lists_the_keys(tmp_path: Path) -> None:
    model = build_model("unet-tiny", in_channels=1, width=8, levels=2)
    with pytest.raises(KdrestoreError, match="do not fit .*missing"):
        init_model(model, "denoise-gray-blind", tmp_path, write=False)
    with pytest.raises(KdrestoreError, match="not a shipped student, a run directory or a weights file"):
        init_model(model, str(tmp_path / "nothing"), tmp_path, write=False)


def test_init_from_a_shipped_student(tmp_path: Path) -> None:
    card = json.loads((Path(__file__).parents[2] / "src/kdrestore/pretrained/dehaze-small/card.json").read_text())
    model = build_model(card["model"], **card.get("args", {}))
    lineage = init_model(model, "dehaze-small", tmp_path)
    assert lineage[-1]["kind"] == "shipped" and lineage[-1]["source"] == "dehaze-small"
    assert json.loads((tmp_path / "lineage.json").read_text()) == lineage


def test_init_from_grows_the_shipped_repdn_into_a_deeper_one(tmp_path: Path) -> None:
    import torch

    card = json.loads((Path(__file__).parents[2] / "src/kdrestore/pretrained/denoise-gray-s25/card.json").read_text())
    args = {k: v for k, v in card["args"].items() if k != "init_grow"}
    shipped = build_model(card["model"], **args)
    init_model(shipped, "denoise-gray-s25", tmp_path, write=False)
    depth = args["depth"] + 4
    with pytest.raises(KdrestoreError, match=f"{args['depth']} layers but the model has depth {depth}.*init_grow"):
        init_model(build_model(card["model"], **{**args, "depth": depth}), "denoise-gray-s25", tmp_path, write=False)
    deeper = build_model(card["model"], **{**args, "depth": depth, "init_grow": True})
    init_model(deeper, "denoise-gray-s25", tmp_path, write=False)
    x = torch.rand(1, 1, 48, 40)
    with torch.no_grad():
        assert torch.allclose(deeper.eval()(x), shipped.eval()(x), atol=1e-5)
