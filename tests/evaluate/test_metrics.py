import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from kdrestore.evaluate.metrics import Convention, prepare, psnr, psnr_ssim, rgb_to_y, ssim, ssim_tensor


def _pair(shape=(48, 64, 3), noise=0.08, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape)
    return np.clip(clean + rng.normal(0, noise, shape), 0, 1), clean


@pytest.mark.parametrize("shape", [(48, 64, 3), (40, 33)])
def test_psnr_ssim_match_scikit_image(shape):
    pred, clean = _pair(shape)
    axis = 2 if len(shape) == 3 else None
    ref_ssim = structural_similarity(clean, pred, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=axis)
    assert abs(psnr(pred, clean) - peak_signal_noise_ratio(clean, pred, data_range=1.0)) < 1e-4
    assert abs(ssim(pred, clean) - ref_ssim) < 1e-4


def test_y_channel_uses_bt601_studio_range():
    white, black = torch.ones(1, 3, 2, 2, dtype=torch.float64), torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    assert torch.allclose(rgb_to_y(white), torch.full_like(white[:, :1], 235 / 255))
    assert torch.allclose(rgb_to_y(black), torch.full_like(black[:, :1], 16 / 255))
    pred, clean = _pair()
    y = Convention(space="y")
    p, t = prepare(pred, clean, y)
    assert p.shape[1] == 1
    assert psnr(pred, clean, y) != pytest.approx(psnr(pred, clean))


def test_border_crop_clip_and_quantize_are_applied():
    pred, clean = _pair()
    pred[:4] = 0.0  # damage the border only
    assert psnr(pred, clean, Convention(crop_border=4)) > psnr(pred, clean) + 1
    over = clean + 0.5
    assert psnr(over, clean, Convention(clip=False)) < psnr(over, clean, Convention(clip=True))
    q = Convention(quantize=True)
    p, _ = prepare(clean, clean, q)
    assert torch.allclose(p * 255, torch.round(p * 255))


def test_identical_images_and_shape_errors():
    _, clean = _pair()
    assert math.isinf(psnr(clean, clean))
    assert ssim(clean, clean) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(clean, clean[:-1])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(clean[:8, :8], clean[:8, :8])


def test_ssim_tensor_is_differentiable():
    pred, clean = (torch.from_numpy(a).permute(2, 0, 1)[None] for a in _pair())
    pred.requires_grad_(True)
    ssim_tensor(pred, clean).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_psnr_ssim_together_equal_separate():
    pred, clean = _pair()
    conv = Convention(space="y", quantize=True)
    assert psnr_ssim(pred, clean, conv) == (psnr(pred, clean, conv), ssim(pred, clean, conv))
