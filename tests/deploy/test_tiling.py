"""Tiled restoration: equal to the untiled result for local models, seamless otherwise, any size."""
import pytest
import torch
from torch import nn

from kdrestore.deploy.tiling import plan_tiles, restore_tiled, tile_starts
from kdrestore.models.registry import build_model




def three_conv(channels: int = 3) -> nn.Module:
    """Receptive field 7x7 (radius 3 <= overlap 16 // 4)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(8, channels, 3, padding=1)).eval()


class TileMean(nn.Module):
    """A non-local model: adds the mean of whatever it is given, so every tile gets another offset."""

    def forward(self, x):
        return x + x.mean(dim=(1, 2, 3), keepdim=True)


@pytest.mark.parametrize("tile", [40, 64, 100])
def test_tiled_equals_untiled_for_a_local_model(tile):
    model = three_conv()
    x = torch.rand(1, 3, 110, 153)
    with torch.no_grad():
        ref = model(x)
    out = restore_tiled(model, x, tile=tile, overlap=16)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-4


def test_tile_size_from_a_pixel_budget():
    model = three_conv()
    x = torch.rand(1, 3, 150, 203)
    calls = []
    out = restore_tiled(lambda t: calls.append(t.shape) or model(t), x, overlap=16, max_pixels=64 * 64)
    assert all(s[-2] * s[-1] <= 64 * 64 for s in calls) and len(calls) > 1
    with torch.no_grad():
        assert (out - model(x)).abs().max() < 1e-4
    calls.clear()  # within the budget: one call on the whole image
    restore_tiled(lambda t: calls.append(t.shape) or model(t), x, overlap=16, max_pixels=150 * 203)
    assert calls == [torch.Size([1, 3, 150, 203])]


def test_unet_tiles_keep_its_sampling_grid():
    """Origins at multiples of the U-Net's factor 4: far from the tile edges the result is the same."""
    model = build_model("unet-tiny", width=4).eval()
    x = torch.rand(1, 3, 90, 121)
    with torch.no_grad():
        ref = model(x)
    out = restore_tiled(model, x, tile=72, overlap=48)
    assert (out - ref).abs().max() < 1e-4


def test_images_smaller_than_the_tile_and_odd_shapes():
    model = three_conv(1)
    for h, w in [(5, 7), (1, 1), (30, 200), (200, 30)]:
        x = torch.rand(1, 1, h, w)
        out = restore_tiled(model, x, tile=48, overlap=16)
        with torch.no_grad():
            ref = model(x)
        assert out.shape == x.shape and (out - ref).abs().max() < 1e-4


def test_batched_tiles_and_batches_of_images():
    model = three_conv()
    x = torch.rand(2, 3, 90, 110)
    a = restore_tiled(model, x, tile=40, overlap=16, batch_size=1)
    b = restore_tiled(model, x, tile=40, overlap=16, batch_size=5)
    assert torch.allclose(a, b, atol=1e-6) and a.shape == x.shape


def test_seams_are_blended():
    """Tiles that disagree (per-tile offsets) leave no step at the seams: the change is spread."""
    x = torch.linspace(0, 1, 256).repeat(1, 1, 64, 1)  # horizontal ramp: tile means differ a lot
    out = restore_tiled(TileMean(), x, tile=96, overlap=32)
    step_in = (x[..., 1:] - x[..., :-1]).abs().max()
    step_out = (out[..., 1:] - out[..., :-1]).abs().max()
    offsets = [float(x[..., s:s + 96].mean()) for s in tile_starts(256, 96, 32)]
    jump = max(b - a for a, b in zip(offsets, offsets[1:]))  # a hard cut would step by this much
    assert jump > 10 * step_in
    assert step_out < step_in + jump / 8


def test_plan_covers_the_image_and_aligns_to_the_border():
    tiles = plan_tiles(150, 203, 64, 16, None, multiple=8)
    covered = torch.zeros(150, 203, dtype=torch.int32)
    for y, x, h, w in tiles:
        assert y % 8 == 0 and x % 8 == 0
        covered[y:y + h, x:x + w] += 1
    assert covered.min() >= 1
    assert max(y + h for y, _, h, _ in tiles) == 150 and max(x + w for _, x, _, w in tiles) == 203
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(150, 203, 20, 16, None, multiple=8)
