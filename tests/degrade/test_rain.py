"""Rain: line kernels, streak layers, composition, presets and the torch versions."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from kdrestore.degrade import compose_rain, compose_rain_torch, line_kernel, \
    rain100h_like, rain100l_like, streak_layer, streak_layer_torch


def _image(h: int = 64, w: int = 80, c: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return (0.4 + 0.3 * np.sin(5 * x - 2 * y)[..., None] * np.ones(c)).astype(np.float32)


def _autocorr(layer: np.ndarray, dy: int, dx: int) -> float:
    z = layer - layer.mean()
    h, w = z.shape
    a, b = z[: h - dy, : w - dx], z[dy:, dx:]
    return float((a * b).mean() / z.var())


def test_line_kernel_shape_sum_and_orientation():
    k = line_kernel(15, 0.0, 1.0)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and k.sum() == pytest.approx(1.0)
    c = k.shape[0] // 2
    assert k[:, c].sum() > 0.95  # vertical: all weight in the centre column
    assert np.allclose(line_kernel(15, 90.0), line_kernel(15, 0.0).T, atol=1e-6)
    d = line_kernel(15, 45.0)  # positive angle leans the top to the right ("/")
    assert d[:c, c + 1:].sum() > 0.4 and d[:c, :c].sum() < 1e-6
    wide = line_kernel(15, 0.0, 3.0)
    cw = wide.shape[0] // 2
    assert wide[:, cw - 1:cw + 2].sum() > 0.95 and wide[:, cw - 1].sum() > 0.2


@pytest.mark.parametrize("angle, along, across", [(0.0, (6, 0), (0, 6)), (90.0, (0, 6), (6, 0))])
def test_streak_angle_honoured(angle, along, across):
    layer = streak_layer(120, 120, 0, density=0.01, length=25, angle=angle, width=1.0)
    assert _autocorr(layer, *along) > 0.5 and _autocorr(layer, *across) < 0.15


def test_streak_layer_range_and_density():
    layer = streak_layer(50, 60, 1, density=0.02, length=11, angle=10, brightness=0.7)
    assert layer.shape == (50, 60) and layer.dtype == np.float32
    assert layer.min() >= 0 and layer.max() <= 1 and layer.max() > 0.3
    lone = streak_layer(200, 200, 1, density=0.0005, length=11, angle=10, brightness=0.7)
    assert 0.3 < lone.max() <= 0.7 + 1e-6  # an isolated streak peaks at brightness x U(0.5, 1)
    assert (layer == 0).mean() > 0.5  # background exactly streak-free
    assert not streak_layer(50, 60, 1, density=0.0, length=11, angle=0).any()
    denser = streak_layer(50, 60, 1, density=0.05, length=11, angle=10, brightness=0.7)
    assert denser.mean() > layer.mean()


@pytest.mark.parametrize("shape", [(64, 80, 3), (64, 80, 1), (64, 80)])
@pytest.mark.parametrize("preset", [rain100l_like, rain100h_like])
def test_presets_shapes_ranges_layer(shape, preset):
    img = _image(64, 80, 1 if len(shape) == 2 or shape[2] == 1 else 3).reshape(shape)
    out = preset(img, 0)
    assert out.degraded.shape == shape and out.degraded.dtype == np.float32
    assert out.degraded.min() >= 0 and out.degraded.max() <= 1
    np.testing.assert_array_equal(out.clean, img)
    assert out.layer is not None and out.layer.shape == (64, 80) and out.layer.max() <= 1
    json.dumps(out.params)


def test_seeded_reproducibility():
    img = _image()
    a, b, c = rain100h_like(img, 7), rain100h_like(img, 7), rain100h_like(img, 8)
    np.testing.assert_array_equal(a.degraded, b.degraded)
    np.testing.assert_array_equal(a.layer, b.layer)
    assert a.params == b.params
    assert not np.array_equal(a.degraded, c.degraded)


def test_heavy_has_more_streak_energy_than_light():
    img = _image(96, 96)
    light = [rain100l_like(img, s) for s in range(4)]
    heavy = [rain100h_like(img, s) for s in range(4)]
    assert np.mean([h.layer.mean() for h in heavy]) > 2 * np.mean([l.layer.mean() for l in light])
    assert np.mean([np.abs(h.degraded - img).mean() for h in heavy]) > \
        2 * np.mean([np.abs(l.degraded - img).mean() for l in light])


def test_preset_params_recorded():
    light, heavy = rain100l_like(_image(), 3), rain100h_like(_image(), 3)
    assert light.params["degradation"] == "rain-light" and light.params["n_layers"] == 1
    assert light.params["veil"] == 0.0 and light.params["veil_airlight"] is None
    hp = heavy.params
    assert hp["degradation"] == "rain-heavy" and 3 <= hp["n_layers"] <= 5
    assert len(hp["layers"]) == hp["n_layers"] and 0.1 <= hp["veil"] <= 0.3
    angles = [l["angle"] for l in hp["layers"]]
    assert max(angles) - min(angles) > 0 and all(20 <= l["length"] <= 45 for l in hp["layers"])
    over = rain100l_like(_image(), 3, angle=0.0, length=30.0)
    assert over.params["layers"][0]["angle"] == 0.0 and over.params["layers"][0]["length"] == 30.0


def test_compose_modes_and_veil():
    img, layer = _image(), streak_layer(64, 80, 0, density=0.05, length=9, angle=0)
    np.testing.assert_array_equal(compose_rain(img, np.zeros((64, 80), np.float32)), img)
    add = compose_rain(img, layer)
    np.testing.assert_allclose(add, np.clip(img + layer[..., None], 0, 1), atol=1e-7)
    scr = compose_rain(img, layer, mode="screen")
    np.testing.assert_allclose(scr, 1 - (1 - img) * (1 - layer[..., None]), atol=1e-6)
    veiled = compose_rain(img, layer, veil=0.25, veil_airlight=0.9)
    np.testing.assert_allclose(veiled, 0.75 * add + 0.25 * 0.9, atol=1e-6)
    assert add.min() >= 0 and add.max() <= 1 and scr.max() <= 1


@pytest.mark.parametrize("mode", ["additive", "screen"])
def test_compose_torch_matches_numpy(mode):
    img, layer = _image(), streak_layer(64, 80, 2, density=0.05, length=9, angle=20)
    ref = compose_rain(img, layer, mode=mode, veil=0.2, veil_airlight=0.85)
    out = compose_rain_torch(torch.from_numpy(img).permute(2, 0, 1)[None],
                             torch.from_numpy(layer)[None, None], mode=mode,
                             veil=torch.tensor([0.2]), veil_airlight=0.85)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_streak_layer_torch_matches_convolution_and_has_gradients():
    rng = np.random.default_rng(0)
    seeds = (rng.random((40, 50)) < 0.02).astype(np.float32)
    k = line_kernel(13, 30.0, 1.5)
    ref = np.clip(fftconvolve(seeds, k / k.max(), mode="same") * 0.8, 0, 1)
    s = torch.from_numpy(seeds)[None, None].requires_grad_(True)
    out = streak_layer_torch(s, 13, 30.0, 1.5, brightness=torch.tensor([0.8]))
    np.testing.assert_allclose(out[0, 0].detach().numpy(), ref, atol=1e-5)
    clean = torch.rand(1, 3, 40, 50, requires_grad=True)
    compose_rain_torch(clean, out, mode="screen").sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert clean.grad is not None and clean.grad.abs().sum() > 0

