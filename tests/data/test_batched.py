"""The batched device-resident pipeline draws what the per-sample pipeline draws, reproducibly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdrestore.data import SynthDataset
from kdrestore.data.batched import BatchedSynth, ImageBank, dihedral_batch, step_generator
from kdrestore.data.paired import dihedral
from kdrestore.degrade.batched import degrade_batch


def _images(n: int = 6, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(40, 56), (70, 33), (64, 64), (33, 90), (50, 50), (81, 47)][:n]
    return [rng.uniform(0.1, 0.9, (h, w, 3)).astype(np.float32) for h, w in sizes]


def _bank(crop: int = 32) -> ImageBank:
    imgs = _images()
    return ImageBank.from_arrays(imgs, [f"i{k}" for k in range(len(imgs))], min_size=crop)


def _per_sample(name: str, params: dict, n: int, crop: int = 32) -> list[dict]:
    ds = SynthDataset([(f"i{k}", a) for k, a in enumerate(_images())], name, params, crop=crop,
                      augment=True, seed=1, fixed=False)
    items = []
    for i in range(n):
        ds.set_epoch(i // len(ds))
        items.append(ds[i % len(ds)])
    return items


def test_same_seed_same_batch_and_different_steps_differ() -> None:
    synth = BatchedSynth(_bank(), "awgn-blind", {}, crop=32)
    a = synth.batch(8, step_generator(torch.device("cpu"), 3, 10))
    b = synth.batch(8, step_generator(torch.device("cpu"), 3, 10))
    c = synth.batch(8, step_generator(torch.device("cpu"), 3, 11))
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["sigma"], b["sigma"])
    assert not torch.equal(a["input"], c["input"])


def test_crop_windows_stay_inside_each_image_and_reach_its_edges() -> None:
    bank = _bank(crop=32)
    synth = BatchedSynth(bank, "identity", crop=32)
    idx, top, left = synth.windows(4000, step_generator(torch.device("cpu"), 0, 0))
    h, w = bank.sizes[idx, 0], bank.sizes[idx, 1]
    assert bool((top >= 0).all() and (left >= 0).all() and (top + 32 <= h).all() and (left + 32 <= w).all())
    for k in range(len(bank)):
        sel = idx == k
        assert int(top[sel].min()) == 0 and int(top[sel].max()) == int(bank.sizes[k, 0]) - 32
        assert int(left[sel].max()) == int(bank.sizes[k, 1]) - 32
    crop = synth.batch(4, step_generator(torch.device("cpu"), 0, 1))["target"]
    assert crop.shape == (4, 3, 32, 32) and float(crop.min()) >= 0.09 and float(crop.max()) <= 0.91


def test_small_images_are_reflect_padded_to_the_crop() -> None:
    bank = ImageBank.from_arrays([np.zeros((10, 20, 1), np.float32)], ["tiny"], min_size=16)
    assert tuple(bank.sizes[0].tolist()) == (16, 20)
    with pytest.raises(ValueError, match="smaller than the crop 32"):
        BatchedSynth(bank, "identity", crop=32)


def test_dihedral_matches_the_per_sample_transforms() -> None:
    x = torch.rand(8, 2, 5, 5)
    k = torch.arange(8)
    out = dihedral_batch(x, k)
    for i in range(8):
        ref = dihedral([x[i].permute(1, 2, 0).numpy()], i)[0]
        assert np.allclose(out[i].permute(1, 2, 0).numpy(), ref)


def test_awgn_sigma_ranges_match_the_per_sample_path() -> None:
    g = step_generator(torch.device("cpu"), 0, 0)
    fixed = BatchedSynth(_bank(), "awgn", {"sigma": 25}, crop=32).batch(64, g)
    assert torch.all(fixed["sigma"] == 25)
    assert abs(float((fixed["input"] - fixed["target"]).std()) * 255 - 25) < 0.5
    blind = BatchedSynth(_bank(), "awgn", {"sigma": [0, 55]}, crop=32).batch(4000, g)["sigma"]
    ref = torch.tensor([s["params"]["sigma"] for s in _per_sample("awgn", {"sigma": [0, 55]}, 600)])
    for s in (blind, ref):
        assert 0 <= float(s.min()) < 1.5 and 53.5 < float(s.max()) <= 55
    assert abs(float(blind.mean()) - float(ref.mean())) < 2.5  # both U(0, 55): mean 27.5


def test_haze_beta_airlight_ranges_and_model_match() -> None:
    params = {"beta": [0.6, 1.8], "airlight": [0.7, 1.0]}
    g = step_generator(torch.device("cpu"), 0, 0)
    batch = BatchedSynth(_bank(), "haze", params, crop=32).batch(2000, g)
    beta, air = batch["params"]["beta"], batch["params"]["airlight"]
    ref = _per_sample("haze", params, 300)
    ref_beta = torch.tensor([s["params"]["beta"] for s in ref])
    for b in (beta, ref_beta):
        assert 0.6 <= float(b.min()) < 0.65 and 1.75 < float(b.max()) <= 1.8
    assert 0.7 <= float(air.min()) < 0.71 and 0.99 < float(air.max()) <= 1.0
    # with a given depth map the image follows I = J t + A (1 - t) exactly
    clean, depth = torch.rand(3, 3, 8, 8), torch.rand(3, 1, 8, 8)
    hazy, p = degrade_batch("haze", clean, g, {"beta": 1.0, "airlight": 0.8}, depth)
    t = torch.exp(-depth)
    assert torch.allclose(hazy, clean * t + 0.8 * (1 - t), atol=1e-6)
    # the depth prior: haze is thicker far away (top rows, above the horizon) than near (bottom rows)
    haze_amount = (batch["input"] - batch["target"]).abs().mean(dim=(0, 1, 3))
    assert float(haze_amount[:4].mean()) > float(haze_amount[-4:].mean())


@pytest.mark.parametrize("preset,layers,veil", [("rain-light", (1, 1), (0.0, 0.0)),
                                                 ("rain-heavy", (3, 5), (0.1, 0.3))])
def test_rain_parameters_and_streak_amount_match(preset, layers, veil) -> None:
    g = step_generator(torch.device("cpu"), 0, 0)
    batch = BatchedSynth(_bank(48), preset, crop=48).batch(96, g)
    p = batch["params"]
    assert set(p["n_layers"].long().tolist()) <= set(range(layers[0], layers[1] + 1))
    assert veil[0] <= float(p["veil"].min()) and float(p["veil"].max()) <= veil[1]
    ref = _per_sample(preset, {}, 96, crop=48)
    ref_streak = np.mean([s["params"]["streak_mean"] for s in ref])
    ours = float(p["streak_mean"].mean())
    assert 0.6 < ours / ref_streak < 1.6, (ours, ref_streak)
    assert float(batch["input"].min()) >= 0 and float(batch["input"].max()) <= 1


def test_unsupported_degradation_names_the_alternative() -> None:
    with pytest.raises(ValueError, match="no batched form"):
        degrade_batch("haze-nonhomogeneous", torch.rand(1, 3, 8, 8), step_generator(torch.device("cpu"), 0, 0))


def test_batches_are_contiguous() -> None:
    batch = BatchedSynth(_bank(), "awgn", {}, crop=32).batch(16, step_generator(torch.device("cpu"), 0, 0))
    assert batch["input"].is_contiguous() and batch["target"].is_contiguous()
