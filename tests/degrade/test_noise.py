"""Noise (AWGN, blind AWGN, Poisson-Gaussian, torch versions), plus the registry and base helpers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kdrestore.degrade import DEGRADATIONS, Degraded, add_awgn, add_awgn_blind, add_awgn_torch, \
    add_poisson_gaussian, add_poisson_gaussian_torch, as_float_image, degradation_entry, degrade, \
    smooth_field
from kdrestore.registry import UnknownNameError


def _image(h: int = 128, w: int = 128, c: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return np.clip(0.5 + 0.55 * np.sin(7 * x + 4 * y), 0, 1)[..., None].repeat(c, 2).astype(np.float32)


@pytest.mark.parametrize("shape", [(128, 128, 3), (128, 128, 1), (128, 128)])
@pytest.mark.parametrize("sigma", [15.0, 50.0])
def test_awgn_std_matches_sigma_and_is_unclipped(shape, sigma):
    img = _image(c=3 if len(shape) == 3 and shape[2] == 3 else 1).reshape(shape)
    out = add_awgn(img, 0, sigma=sigma)
    assert out.degraded.shape == shape and out.degraded.dtype == np.float32
    noise = out.degraded - img
    assert noise.std() == pytest.approx(sigma / 255, rel=0.03) and abs(noise.mean()) < 0.01
    assert out.degraded.min() < 0 and out.degraded.max() > 1  # DnCNN protocol: no clipping
    assert out.params == {"degradation": "awgn", "sigma": sigma, "blind": False,
                          "clipped": False, "seed": 0}
    np.testing.assert_array_equal(out.clean, img)


def test_awgn_clip_option_and_zero_sigma():
    img = _image()
    clipped = add_awgn(img, 0, sigma=50, clip=True).degraded
    assert clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_array_equal(add_awgn(img, 0, sigma=0).degraded, img)


def test_awgn_reproducible_and_seed_dependent():
    img = _image(32, 32)
    a, b, c = add_awgn(img, 3), add_awgn(img, 3), add_awgn(img, 4)
    np.testing.assert_array_equal(a.degraded, b.degraded)
    assert not np.array_equal(a.degraded, c.degraded)
    g = np.random.default_rng(3)
    assert not np.array_equal(add_awgn(img, g).degraded, add_awgn(img, g).degraded)


def test_blind_sigma_within_range_and_recorded():
    img = _image()
    sigmas = []
    for s in range(6):
        out = add_awgn_blind(img, s, sigma_range=(5, 55))
        p = out.params
        assert p["blind"] and p["sigma_range"] == [5.0, 55.0] and 5 <= p["sigma"] <= 55
        assert (out.degraded - img).std() == pytest.approx(p["sigma"] / 255, rel=0.03)
        sigmas.append(p["sigma"])
    assert len(set(sigmas)) == 6
    assert add_awgn_blind(img, 2).params == add_awgn_blind(img, 2).params


@pytest.mark.parametrize("model", ["heteroscedastic", "poisson"])
def test_poisson_gaussian_variance_is_signal_dependent(model):
    img = np.concatenate([np.full((128, 64, 3), 0.1), np.full((128, 64, 3), 0.9)], 1).astype(np.float32)
    a, b = 0.01, 0.02
    out = add_poisson_gaussian(img, 0, a=a, b=b, model=model)
    n = out.degraded - img
    for sl, x in ((np.s_[:, :64], 0.1), (np.s_[:, 64:], 0.9)):
        assert n[sl].var() == pytest.approx(a * x + b * b, rel=0.05)
        assert abs(n[sl].mean()) < 0.005
    assert out.params == {"degradation": "poisson-gaussian", "model": model, "a": a, "b": b,
                          "clipped": False, "seed": 0}
    pr = add_poisson_gaussian(img, 1).params
    assert 1e-3 <= pr["a"] <= 1e-2 and 2e-3 <= pr["b"] <= 3e-2


def test_awgn_torch_per_sample_sigma_and_generator():
    x = torch.full((3, 3, 64, 64), 0.5)
    sigma = torch.tensor([5.0, 25.0, 50.0])
    y = add_awgn_torch(x, sigma, generator=torch.Generator().manual_seed(0))
    std = (y - x).flatten(1).std(dim=1)
    torch.testing.assert_close(std, sigma / 255, rtol=0.03, atol=0)
    y2 = add_awgn_torch(x, sigma, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)
    assert not torch.equal(y, add_awgn_torch(x, sigma, generator=torch.Generator().manual_seed(1)))
    assert (y.min() < 0) or (y.max() > 1)  # unclipped at sigma 50 around 0.5 -> a few outliers
    assert torch.equal(add_awgn_torch(x, 0.0), x)


def test_awgn_torch_matches_numpy_statistics_and_gradients():
    img = _image(64, 64)
    ref = add_awgn(img, 0, sigma=25).degraded - img
    x = torch.from_numpy(img).permute(2, 0, 1)[None].requires_grad_(True)
    s = torch.tensor([25.0], requires_grad=True)
    y = add_awgn_torch(x, s, generator=torch.Generator().manual_seed(0))
    assert float((y - x).detach().std()) == pytest.approx(float(ref.std()), rel=0.05)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x)) and s.grad is not None


def test_poisson_gaussian_torch_statistics_and_gradients():
    x = torch.full((2, 1, 128, 128), 0.6, requires_grad=True)
    a = torch.tensor([0.01, 0.002], requires_grad=True)
    y = add_poisson_gaussian_torch(x, a, 0.01, generator=torch.Generator().manual_seed(0))
    var = (y - x).detach().flatten(1).var(dim=1)
    torch.testing.assert_close(var, a.detach() * 0.6 + 1e-4, rtol=0.05, atol=0)
    (y - x).square().sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_bad_noise_parameters_raise():
    img = _image(16, 16)
    with pytest.raises(ValueError, match="sigma"):
        add_awgn(img, 0, sigma=-5)
    with pytest.raises(ValueError, match="reversed"):
        add_awgn(img, 0, sigma=(50, 10))
    with pytest.raises(ValueError, match="sigma_range"):
        add_awgn_blind(img, 0, sigma_range=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model"):
        add_poisson_gaussian(img, 0, model="gamma")
    with pytest.raises(ValueError, match="sigma"):
        add_awgn_torch(torch.rand(2, 3, 8, 8), torch.tensor([5.0, -1.0]))
    with pytest.raises(ValueError, match="sigma"):
        add_awgn_torch(torch.rand(2, 3, 8, 8), torch.tensor([5.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        add_awgn(img + 1, 0)
    with pytest.raises(ValueError, match="H x W"):
        add_awgn(np.zeros(16, np.float32), 0)


# ------------------------------------------------------------------------ base helpers, registry
def test_as_float_image_validation():
    arr = as_float_image(np.full((4, 5), 0.5, np.float64))
    assert arr.shape == (4, 5, 1) and arr.dtype == np.float32
    assert as_float_image(np.array([[1.0 + 1e-7]])).max() == 1.0  # float round-off is tolerated
    with pytest.raises(ValueError, match="255"):
        as_float_image(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="noisy image values"):
        as_float_image(np.full((4, 4), 2.0), "noisy")
    assert as_float_image(np.full((4, 4), 2.0), check_range=False).max() == 2.0
    with pytest.raises(TypeError, match="seed"):
        add_awgn(np.zeros((4, 4), np.float32), True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        add_awgn(np.zeros((4, 4), np.float32), -1)


def test_smooth_field_range_and_reproducibility():
    f = smooth_field(np.random.default_rng(0), 37, 53, scale=0.3)
    assert f.shape == (37, 53) and f.dtype == np.float32 and f.min() == 0 and f.max() == 1
    np.testing.assert_array_equal(f, smooth_field(np.random.default_rng(0), 37, 53, scale=0.3))
    assert np.abs(np.diff(f, axis=1)).max() < 0.2  # smooth, not white noise


EXPECTED = {"identity", "haze", "haze-nonhomogeneous", "rain-light", "rain-heavy", "rain-streaks", "awgn",
            "awgn-blind", "poisson-gaussian"}
# what a degradation cannot do without: rain-streaks' bank of streak layers (random sparse dots here)
REQUIRED = {"rain-streaks": {"layers": [(np.random.default_rng(3).random((50, 60)) > 0.97).astype(np.float32)]}}


def test_registry_names_and_meta():
    assert set(DEGRADATIONS.names()) == EXPECTED
    for name in EXPECTED:
        assert degradation_entry(name).meta["task"] in {"denoise", "derain", "dehaze", "any"}
    with pytest.raises(UnknownNameError, match="did you mean"):
        degrade("hazy", _image(8, 8), seed=0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("shape", [(40, 48, 3), (40, 48)])
def test_every_registered_degradation(name, shape):
    img = _image(40, 48, 3)[..., : (3 if len(shape) == 3 else 1)].reshape(shape)
    required = REQUIRED.get(name, {})
    out = degrade(name, img, seed=11, **required)
    assert isinstance(out, Degraded) and out.degraded.shape == shape
    assert out.degraded.dtype == np.float32 and np.isfinite(out.degraded).all()
    assert json.loads(json.dumps(out.params)) == out.params and out.params["seed"] == 11
    again = degrade(name, img, seed=11, **required)
    np.testing.assert_array_equal(out.degraded, again.degraded)
    if name == "identity":  # draws nothing: the input itself, whatever the seed
        np.testing.assert_array_equal(out.degraded, img)
    else:
        assert not np.array_equal(out.degraded, degrade(name, img, seed=12, **required).degraded)
        assert not np.array_equal(out.degraded, img)
    with pytest.raises(ValueError):
        degrade(name, img[None], seed=0, **required)
    gen = degrade(name, img, seed=np.random.default_rng([11, 0]), **required)
    assert gen.params["seed"] is None
