"""Rain from real streak layers: the layer of a pair, its composition, the bank a recipe names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kdrestore.config import load_config
from kdrestore.data.imageio import write_image
from kdrestore.data.streaks import resolve_streaks, streak_bank
from kdrestore.degrade import degrade, rain_from_streaks, streak_layer_of
from kdrestore.engine.datasets import build_dataset
from kdrestore.errors import KdrestoreError


def _vertical_streaks(h: int, w: int, columns: list[int], value: float = 0.4) -> np.ndarray:
    layer = np.zeros((h, w), np.float32)
    layer[:, columns] = value
    return layer


def _write_pairs(root, n: int, h: int = 40, w: int = 60) -> None:
    """``n`` Rain100L-style pairs: a background and the same plus bright vertical streaks in column 5 * i."""
    (root / "rain").mkdir(parents=True)
    (root / "norain").mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        clean = rng.uniform(0.1, 0.5, (h, w, 3)).astype(np.float32)
        rainy = np.clip(clean + _vertical_streaks(h, w, [5 * i])[:, :, None], 0, 1)
        write_image(root / "norain" / f"norain-{i}.png", clean)
        write_image(root / "rain" / f"rain-{i}.png", rainy)


def test_layer_of_a_pair_is_its_rain_only():
    clean = np.random.default_rng(1).uniform(0.0, 0.6, (8, 9, 3)).astype(np.float32)
    layer = _vertical_streaks(8, 9, [2, 7], 0.3)
    rainy = np.clip(clean + layer[:, :, None], 0, 1)
    np.testing.assert_allclose(streak_layer_of(rainy, clean), layer, atol=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        streak_layer_of(rainy[:4], clean)


def test_composition_adds_the_drawn_layers_and_records_them():
    clean = np.full((30, 20, 3), 0.2, np.float32)
    bank = [_vertical_streaks(30, 20, [3], 0.25), _vertical_streaks(30, 20, [11], 0.25)]
    out = rain_from_streaks(clean, 0, layers=bank, n_layers=2, scale=1.0, gain=2.0, mirror=0.0)
    assert out.params["n_layers"] == 2 and len(out.params["layers"]) == 2
    columns = {3: 0, 11: 1}
    expected = np.zeros((30, 20), np.float32)
    for spec in out.params["layers"]:
        assert spec["scale"] == 1.0 and spec["gain"] == 2.0 and not spec["mirrored"]
        expected[:, [c for c, i in columns.items() if i == spec["index"]]] += 0.5
    np.testing.assert_allclose(out.layer, np.clip(expected, 0, 1), atol=1e-6)
    np.testing.assert_allclose(out.degraded, np.clip(clean + out.layer[:, :, None], 0, 1), atol=1e-6)
    np.testing.assert_array_equal(out.clean, clean)
    json.dumps(out.params)  # recordable


def test_mirroring_flips_the_fall_direction_and_scale_widens_streaks():
    clean = np.zeros((16, 16, 1), np.float32)
    diagonal = np.eye(16, dtype=np.float32) * 0.5  # "\" streak
    mirrored = rain_from_streaks(clean, 0, layers=[diagonal], n_layers=1, scale=1.0, gain=1.0, mirror=1.0)
    np.testing.assert_allclose(mirrored.layer, diagonal[:, ::-1], atol=1e-6)  # now "/"
    thin = _vertical_streaks(64, 64, list(range(0, 64, 8)), 0.5)  # any 22-px window holds a streak
    wide = rain_from_streaks(np.zeros((64, 64, 1), np.float32), 3, layers=[thin], n_layers=1, scale=3.0,
                             gain=1.0, mirror=0.0)

    def widest(row: np.ndarray) -> int:
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row > 0.05, 0])))[::2]
        return int(runs.max())

    assert widest(thin[10]) == 1 and widest(wide.layer[10]) >= 2


def test_a_larger_image_than_the_layer_magnifies_it_to_fit():
    small = _vertical_streaks(10, 10, [4], 0.5)
    out = rain_from_streaks(np.zeros((40, 25, 3), np.float32), 0, layers=[small], n_layers=1, scale=1.0,
                            gain=1.0)
    assert out.layer.shape == (40, 25) and out.params["layers"][0]["scale"] == pytest.approx(4.0)
    assert out.layer.max() > 0.3


@pytest.mark.parametrize("kwargs,message", [({"layers": []}, "empty"), ({"mirror": 2.0}, "probability"),
                                            ({"layers": [np.zeros((4, 4, 3))]}, "H x W")])
def test_bad_parameters_are_refused(kwargs, message):
    args = {"layers": [np.zeros((8, 8), np.float32)], **kwargs}
    with pytest.raises(ValueError, match=message):
        rain_from_streaks(np.zeros((8, 8, 3), np.float32), 0, **args)


def test_bank_holds_out_the_last_pairs_and_a_recipe_uses_each_part(tmp_path, monkeypatch):
    _write_pairs(tmp_path / "pairs", 5)
    train, val = streak_bank(tmp_path / "pairs", 2, "train"), streak_bank(tmp_path / "pairs", 2, "val")
    assert [int(np.argmax(l[0])) for l in train] == [5, 10, 15]
    assert [int(np.argmax(l[0])) for l in val] == [20, 25]
    backgrounds = tmp_path / "photos"
    backgrounds.mkdir()
    for i in range(4):
        write_image(backgrounds / f"{i}.png", np.full((40, 60, 3), 0.1 * (i + 1), np.float32))
    monkeypatch.setenv("KDRESTORE_DATA", str(tmp_path))
    section = {"kind": "synth", "path": str(backgrounds), "degradation": "rain-streaks", "holdout": 1,
               "params": {"streaks": "${KDRESTORE_DATA}/pairs", "streaks_holdout": 2, "n_layers": 1,
                          "scale": 1.0, "mirror": 0.0}}
    cfg = load_config(data={"task": "derain", "model": {"name": "unet-tiny"},
                            "data": {"train": {**section, "crop": 32}, "val": {**section, "crop": None}}})
    val = build_dataset(cfg.data.val, "derain", train=False, seed=0)
    item = val[0]
    rain = (item["input"] - item["target"]).mean(0).numpy()
    column = int(np.argmax(rain.sum(0)))
    assert column in (20, 25)  # a held-out layer, unmagnified on a 40 x 60 photo
    train_ds = build_dataset(cfg.data.train, "derain", train=True, seed=0)
    assert len(train_ds) == 3 and train_ds[0]["input"].shape[-2:] == (32, 32)


def test_recipe_mistakes_name_the_field(tmp_path):
    with pytest.raises(KdrestoreError, match=r"data.train.params.streaks: rain-streaks needs the folder"):
        resolve_streaks("rain-streaks", {"n_layers": 2}, "train", "data.train")
    with pytest.raises(KdrestoreError, match=r"params.streaks applies to the rain-streaks"):
        resolve_streaks("rain-heavy", {"streaks": "x"}, "train", "data.train")
    with pytest.raises(KdrestoreError, match=r"data.val.streaks: folder not found"):
        resolve_streaks("rain-streaks", {"streaks": str(tmp_path / "none")}, "val", "data.val")
    _write_pairs(tmp_path / "pairs", 3)
    with pytest.raises(KdrestoreError, match=r"data.train.streaks.holdout: cannot hold out 3 of 3"):
        resolve_streaks("rain-streaks", {"streaks": str(tmp_path / "pairs"), "streaks_holdout": 3}, "train",
                        "data.train")


def test_degrade_command_path_takes_a_streak_folder(tmp_path):
    from kdrestore.data.degrade_folder import degrade_folder

    _write_pairs(tmp_path / "pairs", 2)
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "a.png", np.full((40, 60, 3), 0.2, np.float32))
    report = degrade_folder(photos, tmp_path / "out", "rain-streaks", params={"streaks": str(tmp_path / "pairs")},
                            progress=False)
    assert report["written"] == 1
    record = json.loads((tmp_path / "out" / "params.json").read_text())
    assert record["params"] == {"streaks": str(tmp_path / "pairs")} and record["images"]["a.png"]["bank"] == 2
    direct = degrade("rain-streaks", np.full((8, 8, 3), 0.2, np.float32), 0, layers=[np.zeros((8, 8))])
    np.testing.assert_allclose(direct.degraded, 0.2, atol=1e-6)


def _direction(layer: np.ndarray) -> float:
    """> 0 for "\\" streaks, < 0 for "/": correlation along the two diagonals."""
    a = layer - layer.mean()
    return float((a[1:, 1:] * a[:-1, :-1]).sum() - (a[1:, :-1] * a[:-1, 1:]).sum())


def test_batched_form_draws_the_same_rain_as_the_per_sample_one():
    import torch

    from kdrestore.degrade.batched import degrade_batch

    diagonals = sum(np.roll(np.eye(48, dtype=np.float32), k, axis=1) for k in range(0, 48, 8))  # "\\" every 8 px
    bank = tuple(np.roll(diagonals, 3 * i, axis=1) * 0.3 for i in range(4))
    params = {"layers": bank, "n_layers": [1, 3], "scale": [1.0, 2.0], "gain": [1.0, 1.5], "mirror": 0.5}
    clean = torch.full((64, 3, 24, 24), 0.2)
    out, drawn = degrade_batch("rain-streaks", clean, torch.Generator().manual_seed(0), params)
    layer = (out - clean)[:, 0].numpy()
    assert out.shape == clean.shape and set(drawn["n_layers"].tolist()) <= {1.0, 2.0, 3.0}
    per_sample = [rain_from_streaks(np.full((24, 24, 3), 0.2, np.float32), i, **params).layer for i in range(64)]
    batched_mean, sample_mean = layer.mean(), np.mean([l.mean() for l in per_sample])
    assert abs(batched_mean - sample_mean) < 0.15 * sample_mean
    directions = np.sign([_direction(l) for l in layer])
    assert 0.25 < (directions < 0).mean() < 0.75  # about half mirrored to "/"
    unmirrored, _ = degrade_batch("rain-streaks", clean[:8], torch.Generator().manual_seed(1), {**params, "mirror": 0.0})
    assert all(_direction(l) > 0 for l in (unmirrored - clean[:8])[:, 0].numpy())
    with pytest.raises(ValueError, match="non-empty bank"):
        degrade_batch("rain-streaks", clean, torch.Generator(), {"layers": ()})


def test_a_recipe_trains_on_streak_rain_on_the_batched_pipeline(tmp_path):
    import torch

    from kdrestore.engine.datasets import build_batched

    _write_pairs(tmp_path / "pairs", 4, h=40, w=60)
    (tmp_path / "photos").mkdir()
    for i in range(3):
        write_image(tmp_path / "photos" / f"{i}.png", np.full((40, 60, 3), 0.1 * (i + 1), np.float32))
    cfg = load_config(data={"task": "derain", "model": {"name": "unet-tiny"}, "data": {"train": {
        "kind": "synth", "path": str(tmp_path / "photos"), "degradation": "rain-streaks", "crop": 32,
        "pipeline": "batched", "params": {"streaks": str(tmp_path / "pairs"), "streaks_holdout": 1, "n_layers": 2}}}})
    batch = build_batched(cfg.data.train, "derain", torch.device("cpu")).batch(5, torch.Generator().manual_seed(0))
    rain = (batch["input"] - batch["target"]).numpy()
    assert batch["input"].shape == (5, 3, 32, 32) and (rain >= -1e-6).all() and rain.max() > 0.2


def test_leak_check_also_compares_the_photos_of_the_streak_pairs(tmp_path):
    from kdrestore.data.leakguard import recipe_leak_check

    _write_pairs(tmp_path / "pairs", 4, h=64, w=64)
    (tmp_path / "photos").mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        write_image(tmp_path / "photos" / f"{i}.png", rng.uniform(0, 1, (64, 64, 3)).astype(np.float32))
    section = {"kind": "synth", "path": str(tmp_path / "photos"), "degradation": "rain-streaks", "holdout": 1,
               "params": {"streaks": str(tmp_path / "pairs"), "streaks_holdout": 1}}
    cfg = load_config(data={"task": "derain", "model": {"name": "unet-tiny"},
                            "data": {"train": section, "val": {**section, "crop": None}}})
    check = recipe_leak_check(cfg, benchmark=False)
    assert check.report is not None
    compared = {r.label: r.images for r in check.report.results}  # the validation sets
    assert any("params.streaks" in label and n == 1 for label, n in compared.items())  # pair 4
    trained = {t["label"]: t["images"] for t in check.report.train}
    assert any("params.streaks" in label and n == 3 for label, n in trained.items())  # pairs 1-3


def _mean_run(mask: np.ndarray) -> float:
    """Mean length of the runs of True along the rows of ``mask``."""
    runs = [np.diff(np.flatnonzero(np.diff(np.r_[0, row, 0])))[::2] for row in mask.astype(int)]
    return float(np.concatenate(runs).mean())


def test_stretch_lengthens_streaks_without_widening_them():
    import torch

    from kdrestore.degrade.batched import degrade_batch

    dots = np.zeros((64, 64), np.float32)
    dots[::16, ::16] = 1.0  # a dot every 16 px: any window holds one
    for stretched in (rain_from_streaks(np.zeros((64, 64, 1), np.float32), 0, layers=[dots], n_layers=1, scale=1.0,
                                        stretch=4.0, gain=1.0, mirror=0.0).layer,
                      degrade_batch("rain-streaks", torch.zeros(1, 1, 64, 64), torch.Generator().manual_seed(0),
                                    {"layers": [dots], "n_layers": 1, "scale": 1.0, "stretch": 4.0, "gain": 1.0,
                                     "mirror": 0.0})[0][0, 0].numpy()):
        lit = stretched > 0.02
        assert _mean_run(lit.T) >= 2 * _mean_run(lit)  # each dot became a vertical dash
