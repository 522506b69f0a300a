"""The batched pipeline on real pairs (kind paired) and on NYU scenes with measured depth (kind nyu-haze):
the same windows and transforms on both halves, the haze model on the bank's depth, and the recipe path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kdrestore.config import DatasetConfig, load_config
from kdrestore.data.batched import BatchedPairs, BatchedSynth, pair_bank, step_generator
from kdrestore.data.nyu import find_nyu_scenes, read_scene
from kdrestore.engine.datasets import build_batched, build_dataset
from kdrestore.errors import KdrestoreError

CPU = torch.device("cpu")


def _pairs(root, n=5, h=40, w=52):
    rng = np.random.default_rng(0)
    for sub in ("rain", "norain"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        clean = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
        Image.fromarray(clean).save(root / "norain" / f"norain-{i:03d}.png")
        Image.fromarray(clean + 50).save(root / "rain" / f"rain-{i:03d}.png")  # degraded = clean + 50 everywhere


def test_pairs_share_one_window_and_transform(tmp_path):
    _pairs(tmp_path)
    cfg = DatasetConfig(kind="paired", path=str(tmp_path), mode="rgb", crop=24, holdout=2, pipeline="batched")
    batched = build_batched(cfg, "derain", CPU)
    assert isinstance(batched, BatchedPairs) and len(batched.bank) == 3  # the last 2 pairs held out
    assert batched.bank.names == ["rain-001", "rain-002", "rain-003"]
    b = batched.batch(16, step_generator(CPU, 0, 0))
    assert b["input"].shape == b["target"].shape == (16, 3, 24, 24)
    assert torch.allclose(b["input"] - b["target"], torch.full_like(b["input"], 50 / 255), atol=1e-6)
    assert bool(torch.isnan(b["sigma"]).all()) and b["degradation"] == [""] * 16
    again = batched.batch(16, step_generator(CPU, 0, 0))
    assert torch.equal(again["input"], b["input"])


def test_pairs_of_different_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match="pair b: degraded"):
        pair_bank([(np.zeros((8, 8, 3)), np.zeros((8, 8, 3))), (np.zeros((8, 9, 3)), np.zeros((8, 8, 3)))],
                  ["a", "b"])


def _scene(root, stem, w=64, h=48):
    for sub in ("rgb", "depth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    Image.fromarray(np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)).save(
        root / "rgb" / f"{stem}.png")
    Image.fromarray((20 + np.mgrid[0:h // 2, 0:w // 2][1] * 200 // (w // 2 - 1)).astype(np.uint8)).save(
        root / "depth" / f"{stem}.png")


def test_nyu_haze_uses_each_scenes_measured_depth(tmp_path):
    for i in range(1, 5):
        _scene(tmp_path, f"{i:04d}")
    params = {"beta": [0.5, 0.5], "airlight": [0.9, 0.9], "depth_units": "metres", "border": 0}
    cfg = DatasetConfig(kind="nyu-haze", path=str(tmp_path), crop=64, holdout=1, params=params,
                        pipeline="batched", augment=False)
    batched = build_batched(cfg, "dehaze", CPU)
    assert isinstance(batched, BatchedSynth) and batched.bank.names == ["0001", "0002", "0003"]
    depth = np.rint(read_scene(find_nyu_scenes(tmp_path).scenes[0], border=0)[1])  # 8-bit file units
    assert np.array_equal(batched.bank.depth[0, 0, :48, :64].float().numpy(), depth)  # exact in the bank
    assert torch.allclose(batched.bank.depth_scale, torch.full((3,), 1 / 25.5))  # to metres, per crop
    b = batched.batch(6, step_generator(CPU, 1, 0))  # the whole 48x64 scene (reflect-padded to 64 rows)
    metres = batched.bank.depth[0, 0].float() / 25.5
    t = torch.exp(-0.5 * metres)
    # every scene has the same image and depth, so one expectation holds for every sample
    expect = b["target"] * t[:64, :64] + 0.9 * (1 - t[:64, :64])
    assert torch.allclose(b["input"], expect, atol=1e-5)
    assert torch.allclose(b["params"]["beta"], torch.full((6,), 0.5))
    normalised = build_batched(DatasetConfig(**{**cfg.__dict__, "params": {**params, "depth_units": "normalized"}}),
                               "dehaze", CPU)
    assert torch.allclose(normalised.bank.depth_scale, torch.full((3,), 1 / float(depth.max())))


def test_recipes_may_ask_for_the_batched_pipeline_on_pairs_and_nyu_but_not_on_other_kinds(tmp_path):
    for kind in ("paired", "nyu-haze"):
        load_config(data={"data": {"train": {"kind": kind, "path": str(tmp_path), "pipeline": "batched"}}})
    with pytest.raises(Exception, match="pipeline 'batched' needs kind 'synth' or 'nyu-haze' or 'paired'"):
        load_config(data={"data": {"train": {"kind": "tasks", "path": str(tmp_path), "pipeline": "batched"}}})
    with pytest.raises(KdrestoreError, match="context"):
        build_batched(DatasetConfig(kind="paired", path=str(tmp_path), crop=8, context=16), "derain", CPU)


def test_the_trainer_trains_on_batched_pairs(tmp_path):
    from kdrestore.engine.trainer import Trainer

    _pairs(tmp_path / "pairs", n=6)
    data = {"task": "derain", "model": {"name": "msresnet-tiny"},
            "data": {"train": {"kind": "paired", "path": str(tmp_path / "pairs"), "crop": 24, "holdout": 2,
                               "pipeline": "batched"},
                     "val": {"kind": "paired", "path": str(tmp_path / "pairs"), "crop": None, "holdout": 2}},
            "train": {"steps": 3, "batch_size": 4, "val_every": 3, "ckpt_every": 3, "log_every": 1}}
    final = Trainer(load_config(data=data), tmp_path / "run", progress=False).fit()
    assert final["pipeline"] == "batched" and final["steps"] == 3 and final["val_psnr"] > 0
    assert len(build_dataset(load_config(data=data).data.val, "derain", train=False, seed=0)) == 2
