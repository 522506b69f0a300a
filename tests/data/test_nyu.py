"""NYU rgb + depth reader and the RESIDE-ITS haze synthesised on it."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from kdrestore.config import DatasetConfig
from kdrestore.data.nyu import NYUHazeDataset, find_nyu_scenes, read_scene, scaled_depth
from kdrestore.engine.datasets import build_dataset
from kdrestore.errors import KdrestoreError


def _scene(root, stem, w=64, h=48, depth_size=None, rgb=True, depth=True):
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    if rgb:
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)
        Image.fromarray(img).save(root / "rgb" / f"{stem}.png")
    if depth:
        dw, dh = depth_size or (w // 2, h // 2)
        d = (20 + np.mgrid[0:dh, 0:dw][1] * 200 // max(dw - 1, 1)).astype(np.uint8)  # depth grows left -> right
        Image.fromarray(d).save(root / "depth" / f"{stem}.png")


def test_unpaired_scenes_are_named_and_counted(tmp_path):
    _scene(tmp_path, "0001")
    _scene(tmp_path, "0002", depth=False)
    _scene(tmp_path, "0003", rgb=False)
    with pytest.warns(UserWarning, match=r"skipped 2 unpaired.*0002 \(rgb 0002.png has no depth map\)"):
        found = find_nyu_scenes(tmp_path)
    assert [s.name for s in found.scenes] == ["0001"]
    assert set(found.skipped) == {"0002", "0003"} and "no rgb image" in found.skipped["0003"]


def test_half_size_depth_is_upsampled_silently_and_aligned(tmp_path):
    _scene(tmp_path, "0001")
    scene = find_nyu_scenes(tmp_path).scenes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb, depth = read_scene(scene, border=4)
    assert rgb.shape == (40, 56, 3) and depth.shape == (40, 56)
    # both ramps rise left to right: the depth column profile follows the image's red ramp
    assert np.corrcoef(rgb[20, :, 0].astype(float), depth[20])[0, 1] > 0.99


def test_depth_of_another_size_is_resized_with_a_warning(tmp_path):
    _scene(tmp_path, "0001", depth_size=(20, 15))
    scene = find_nyu_scenes(tmp_path).scenes[0]
    with pytest.warns(UserWarning, match=r"0001.png: depth map is 20 x 15.*resized"):
        rgb, depth = read_scene(scene, border=0)
    assert depth.shape == rgb.shape[:2]


def test_depth_scaling():
    d = np.array([[25.5, 51.0], [102.0, 255.0]], np.float32)
    assert np.allclose(scaled_depth(d, "metres"), [[1, 2], [4, 10]])
    assert scaled_depth(d, "normalized").max() == 1.0
    with pytest.raises(ValueError, match="depth_units"):
        scaled_depth(d, "feet")  # type: ignore[arg-type]


def test_haze_follows_the_its_model_and_normalises_over_the_whole_image(tmp_path):
    _scene(tmp_path, "0001")
    scenes = find_nyu_scenes(tmp_path).scenes
    full = NYUHazeDataset(scenes, beta=1.0, airlight=0.8, border=0)[0]
    crop = NYUHazeDataset(scenes, beta=1.0, airlight=0.8, border=0, crop=16)[0]
    depth = np.rint(read_scene(scenes[0], border=0)[1])  # the data set keeps 8-bit depth values
    t = np.exp(-depth / depth.max())
    expect = full["target"].numpy() * t + 0.8 * (1 - t)
    assert np.allclose(full["input"].numpy(), expect, atol=1e-5)
    # the crop's depth is not re-normalised to its own maximum: its haze is no denser than the far side
    assert crop["params"]["t_mean"] > float(t.min()) - 1e-6
    metres = NYUHazeDataset(scenes, beta=1.0, airlight=0.8, border=0, depth_units="metres")[0]
    assert float((metres["input"] - metres["target"]).abs().mean()) > float((full["input"] - full["target"]).abs().mean())


def test_draws_are_fixed_for_validation_and_vary_by_epoch_for_training(tmp_path):
    for s in ("0001", "0002"):
        _scene(tmp_path, s)
    scenes = find_nyu_scenes(tmp_path).scenes
    val = NYUHazeDataset(scenes, crop=None)
    assert torch.equal(val[1]["input"], val[1]["input"])
    train = NYUHazeDataset(scenes, crop=16, augment=True, fixed=False)
    train.set_epoch(0)
    a = train[0]
    train.set_epoch(1)
    b = train[0]
    train.set_epoch(0)
    assert torch.equal(train[0]["input"], a["input"]) and a["params"]["beta"] != b["params"]["beta"]
    assert 0.6 <= a["params"]["beta"] <= 1.8 and 0.7 <= a["params"]["airlight"] <= 1.0


def test_recipe_kind_holds_out_the_last_scenes(tmp_path):
    for i in range(1, 6):
        _scene(tmp_path, f"{i:04d}")
    cfg = DatasetConfig(kind="nyu-haze", path=str(tmp_path), crop=None, holdout=2, params={"depth_units": "metres"})
    assert [s.name for s in build_dataset(cfg, "dehaze", train=False, seed=0).scenes] == ["0004", "0005"]
    assert len(build_dataset(cfg, "dehaze", train=True, seed=0)) == 3
    bad = DatasetConfig(kind="nyu-haze", path=str(tmp_path), params={"depth_unit": "metres"})
    with pytest.raises(KdrestoreError, match=r"data.train.params: unknown key\(s\) \['depth_unit'\]"):
        build_dataset(bad, "dehaze", train=True, seed=0)
    bad = DatasetConfig(kind="nyu-haze", path=str(tmp_path), params={"depth_units": "feet"})
    with pytest.raises(KdrestoreError, match="depth_units"):
        build_dataset(bad, "dehaze", train=True, seed=0)


def test_real_nyu_scene_aligns_and_matches_sots_size(data_dir):
    root = data_dir / "train" / "NYUv2-indoor"
    if not root.is_dir():
        pytest.skip("NYUv2-indoor not in the data")
    found = find_nyu_scenes(root)
    assert len(found.scenes) == 1399 and not found.skipped
    rgb, depth = read_scene(found.scenes[-1])
    assert rgb.shape == (460, 620, 3) and depth.shape == (460, 620)
    assert rgb[:3].mean() < 250  # the white registration border is cropped
