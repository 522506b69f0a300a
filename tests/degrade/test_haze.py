"""Haze: the atmospheric scattering model, its depth prior and the differentiable torch version."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kdrestore.degrade import add_haze, add_haze_nonhomogeneous, add_haze_torch, synthetic_depth, \
    transmission, transmission_torch


def _image(h: int = 48, w: int = 64, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.4 * np.sin(6 * x + 3 * y)[..., None] * np.linspace(0.6, 1.0, c)
    return np.clip(base + 0.05 * rng.standard_normal((h, w, c)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("shape", [(48, 64, 3), (48, 64, 1), (48, 64)])
def test_shapes_dtype_range_and_layout(shape):
    img = _image(48, 64, 3 if len(shape) == 3 and shape[2] == 3 else 1).reshape(shape)
    for fn in (add_haze, add_haze_nonhomogeneous):
        out = fn(img, 0)
        assert out.degraded.shape == shape and out.clean.shape == shape
        assert out.degraded.dtype == np.float32 and out.clean.dtype == np.float32
        assert out.degraded.min() >= 0 and out.degraded.max() <= 1
        np.testing.assert_array_equal(out.clean, img)
        assert out.layer is None
        json.dumps(out.params)


def test_seeded_reproducibility():
    img = _image()
    a, b, c = (add_haze_nonhomogeneous(img, s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.degraded, b.degraded)
    assert a.params == b.params and a.params["seed"] == 5
    assert not np.array_equal(a.degraded, c.degraded)
    g = add_haze(img, np.random.default_rng(5))
    assert g.params["seed"] is None


@pytest.mark.parametrize("nonhomogeneity", [0.0, 0.8])
def test_beta_zero_is_exact_identity(nonhomogeneity):
    img = _image()
    out = add_haze(img, 3, beta=0.0, nonhomogeneity=nonhomogeneity)
    np.testing.assert_array_equal(out.degraded, img)
    assert out.params["t_min"] == 1.0


def test_params_honoured_and_recorded():
    img = _image()
    out = add_haze(img, 1, beta=(0.6, 1.8), airlight=(0.7, 1.0))
    p = out.params
    assert 0.6 <= p["beta"] <= 1.8 and len(p["airlight"]) == 3
    assert all(0.7 <= a <= 1.0 for a in p["airlight"]) and len(set(p["airlight"])) == 1
    assert p["depth_source"] == "synthetic" and p["nonhomogeneity"] == 0.0
    col = add_haze(img, 1, airlight=0.8, colored_airlight=True, airlight_tint=0.1).params["airlight"]
    assert len(set(col)) == 3 and all(0.72 - 1e-6 <= a <= 0.88 + 1e-6 for a in col)


def test_higher_beta_lowers_contrast_towards_airlight():
    img = _image()
    depth = np.tile(np.linspace(0.2, 1.0, 48)[:, None], (1, 64))
    dists, stds = [], []
    for beta in (0.3, 1.0, 2.0, 4.0):
        hazy = add_haze(img, 0, depth=depth, beta=beta, airlight=0.9).degraded
        dists.append(np.abs(hazy - 0.9).mean())
        stds.append(hazy.std())
    assert all(d1 > d2 for d1, d2 in zip(dists, dists[1:]))
    assert all(s1 > s2 for s1, s2 in zip(stds, stds[1:]))


def test_transmission_matches_exp_minus_beta_d():
    img = _image()
    depth = np.random.default_rng(2).uniform(0, 3, (48, 64)).astype(np.float32)  # metres
    beta, a = 0.7, 0.85
    out = add_haze(img, 0, depth=depth, depth_units="metres", beta=beta, airlight=a)
    t_expected = np.exp(-beta * depth)
    mask = np.abs(a - img) > 0.2  # where t is well determined by (A - I) / (A - J)
    t_est = (a - out.degraded) / (a - img)
    np.testing.assert_allclose(t_est[mask], np.broadcast_to(t_expected[..., None], img.shape)[mask],
                               atol=1e-4)
    np.testing.assert_allclose(transmission(depth, beta), t_expected, rtol=1e-6)
    assert out.params["t_min"] == pytest.approx(float(t_expected.min()), rel=1e-5)


def test_normalized_depth_divides_by_max():
    img, d = _image(), np.random.default_rng(3).uniform(0.1, 1, (48, 64))
    a = add_haze(img, 0, depth=d * 7.0, beta=1.2, airlight=0.9).degraded
    b = add_haze(img, 0, depth=d / d.max(), depth_units="metres", beta=1.2, airlight=0.9).degraded
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_nonhomogeneous_varies_transmission_at_constant_depth():
    img, depth = _image(), np.ones((48, 64), np.float32)
    t_hom = add_haze(img, 4, depth=depth, beta=1.0, airlight=0.9).params
    homog = add_haze(img, 4, depth=depth, beta=1.0, airlight=0.9).degraded
    patchy = add_haze_nonhomogeneous(img, 4, depth=depth, beta=1.0, airlight=0.9,
                                     nonhomogeneity=0.8)
    mask = np.abs(0.9 - img) > 0.2
    t_h = ((0.9 - homog) / (0.9 - img))[mask]
    t_p = ((0.9 - patchy.degraded) / (0.9 - img))[mask]
    assert t_h.std() < 1e-4 and t_p.std() > 0.05
    assert t_hom["t_min"] == pytest.approx(np.exp(-1.0), rel=1e-5)
    assert patchy.params["degradation"] == "haze-nonhomogeneous"
    assert np.exp(-1.8) - 1e-5 <= patchy.params["t_min"] and t_p.max() <= np.exp(-0.2) + 1e-4


def test_synthetic_depth_prior():
    d = synthetic_depth(60, 80, 0)
    assert d.shape == (60, 80) and d.dtype == np.float32 and d.min() >= 0 and d.max() <= 1
    assert d[:10].mean() > d[-10:].mean() + 0.3  # far at the top, near at the bottom
    np.testing.assert_array_equal(d, synthetic_depth(60, 80, 0))
    flat = synthetic_depth(60, 80, 1, horizon=0.5, roughness=0.0)
    assert np.all(flat[:30] == 1.0) and flat[-1].max() < 0.01
    assert np.all(np.diff(flat[:, 0]) <= 0)


def test_torch_matches_numpy():
    img = _image()
    depth = np.random.default_rng(1).uniform(0, 1, (48, 64)).astype(np.float32)
    ref = add_haze(img, 0, depth=depth, depth_units="metres", beta=1.3, airlight=0.8).degraded
    out = add_haze_torch(torch.from_numpy(img).permute(2, 0, 1)[None],
                         torch.from_numpy(depth)[None, None], torch.tensor([1.3]), torch.tensor([0.8]))
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_torch_per_sample_params_and_maps():
    clean = torch.rand(2, 3, 8, 8)
    depth = torch.rand(2, 1, 8, 8)
    out = add_haze_torch(clean, depth, torch.tensor([0.0, 1.0]), torch.tensor([[0.9, 0.8, 0.7]] * 2))
    torch.testing.assert_close(out[0], clean[0])  # beta = 0 -> identity for that sample
    beta_map = torch.full((2, 1, 8, 8), 1.0)
    torch.testing.assert_close(add_haze_torch(clean, depth, beta_map, 0.9),
                               add_haze_torch(clean, depth, torch.tensor([1.0, 1.0]), 0.9))
    torch.testing.assert_close(transmission_torch(depth, 2.0), torch.exp(-2.0 * depth))


def test_gradients_flow_through_torch_haze():
    clean = torch.rand(2, 3, 16, 16, requires_grad=True)
    depth = torch.rand(2, 1, 16, 16, requires_grad=True)
    beta = torch.tensor([0.8, 1.5], requires_grad=True)
    airlight = torch.tensor([[0.9], [0.8]], requires_grad=True)
    add_haze_torch(clean, depth, beta, airlight).square().mean().backward()
    for t in (clean, depth, beta, airlight):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 4, 4, 3), np.float32), "H x W"),
    (np.full((4, 4, 3), 1.5, np.float32), r"\[0, 1\]"),
    (np.full((4, 4, 3), -0.1, np.float32), r"\[0, 1\]"),
    (np.zeros((4, 4, 3), np.uint8), "floating-point"),
    (np.zeros((4, 4, 2), np.float32), "1 or 3 channels"),
    (np.full((4, 4), np.nan, np.float32), "NaN"),
])
def test_bad_images_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        add_haze(bad, 0)


def test_bad_parameters_raise():
    img = _image()
    with pytest.raises(ValueError, match="beta"):
        add_haze(img, 0, beta=-1.0)
    with pytest.raises(ValueError, match="airlight"):
        add_haze(img, 0, airlight=1.5)
    with pytest.raises(ValueError, match="reversed"):
        add_haze(img, 0, beta=(1.8, 0.6))
    with pytest.raises(ValueError, match="depth must be"):
        add_haze(img, 0, depth=np.ones((10, 10)))
    with pytest.raises(ValueError, match="depth_units"):
        add_haze(img, 0, depth=np.ones((48, 64)), depth_units="feet")
    with pytest.raises(ValueError, match="non-negative"):
        add_haze(img, 0, depth=-np.ones((48, 64)))
    with pytest.raises(ValueError, match="depth must be"):
        add_haze_torch(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 4, 4), 1.0, 0.9)
    with pytest.raises(ValueError, match="airlight"):
        add_haze_torch(torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8), 1.0, torch.rand(3))
    with pytest.raises(TypeError, match="seed"):
        add_haze(img, 1.5)  # type: ignore[arg-type]
