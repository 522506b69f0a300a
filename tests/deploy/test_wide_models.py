"""Models with a wide receptive field or global context (instance norm, squeeze-excitation, GCANet):
restored whole unless the memory budget demands tiles, and then blended over a wide overlap."""
import numpy as np
import pytest
import torch
from torch import nn

from kdrestore.data import builtin_images
from kdrestore.deploy.context import probe_context
from kdrestore.deploy.restore import Restorer, load
from kdrestore.deploy.tiling import restore_tiled


class GlobalTone(nn.Module):
    """A conv with instance normalisation: every output pixel depends on the statistics of the whole input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=False)
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return x + 0.3 * self.out(self.norm(self.conv(x)))


class MeanTone(nn.Module):
    """Brightens by the mean of whatever it is given: each tile alone gets another tone."""

    def forward(self, x):
        return 0.7 * x + 0.3 * x.mean(dim=(1, 2, 3), keepdim=True)


def photo() -> np.ndarray:
    return next(iter(builtin_images("rgb", ["astronaut"])))[1].astype(np.float32)  # 512 x 512 real photo


def seam_step(a: np.ndarray, b: np.ndarray) -> float:
    """Largest row/column-to-next step (255 scale) of the low-pass difference between two results: a
    hard tile seam is a step in tone; a blended one spreads the same change over many pixels."""
    from scipy import ndimage

    d = ndimage.uniform_filter((a.astype(np.float64) - b.astype(np.float64)).mean(axis=2) * 255, 9, mode="nearest")
    return float(max(np.abs(np.diff(d, axis=0)).max(), np.abs(np.diff(d, axis=1)).max()))


def test_the_probe_finds_global_context_and_local_radii():
    ctx = probe_context(GlobalTone().eval(), 3)
    assert ctx.wide and ctx.margin() == 64  # the poke moved every output (instance norm): at least the probe
    assert probe_context(MeanTone(), 3).global_context
    conv = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)).eval()
    local = probe_context(conv, 3)
    assert local.radius == 3 and not local.global_context and local.margin() == 4


def test_a_global_model_is_not_tiled_when_the_budget_allows():
    r = Restorer(GlobalTone(), channels=3, max_memory_mb=4096)
    r.restore_float(np.random.default_rng(0).random((900, 1200, 3), dtype=np.float32))
    assert r.last_plan.tiles == 1 and r.last_plan.tile is None


def test_forced_tiles_of_a_global_model_are_blended_without_visible_seams():
    img = photo()
    r = Restorer(MeanTone(), channels=3, max_memory_mb=4096)
    assert r.context.global_context
    whole = r.restore_float(img)
    r.max_memory_mb = 14.0  # a small laptop: the budget demands tiles
    tiled = r.restore_float(img)
    plan = r.last_plan
    assert plan.tiles > 1 and plan.wide and "memory budget 14 MB" in plan.describe()
    assert plan.overlap >= plan.tile // 3
    tone = np.abs(tiled - whole).mean(axis=2).max() * 255
    assert tone > 1.0  # tiles do see other statistics ...
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
    narrow = restore_tiled(r.model, x, tile=plan.tile, overlap=32, margin=plan.margin)[0].numpy().transpose(1, 2, 0)
    assert seam_step(tiled, whole) < seam_step(np.clip(narrow, 0, 1), whole) / 2  # ... spread, not a step


def test_gcanet_is_restored_whole_unless_the_budget_demands_tiles(peers_dir):
    """GCANet (instance norm, dilated convs): a 2-megapixel photo goes whole under a 16 GB budget
    (the old fixed 1-megapixel cap cut it into tiles that showed); under 2 GB it is tiled with a
    third of a tile of overlap, and the plan says why and that tiles may differ in tone."""
    r = load("gcanet", peers=peers_dir, max_memory_mb=16384)
    assert r.context.wide and r.context.margin() == 64
    assert r.plan(1200, 1600).tiles == 1
    r.max_memory_mb = 2048
    plan = r.plan(1200, 1600)
    assert plan.tiles > 1 and plan.overlap >= plan.tile // 3
    assert "memory budget 2048 MB" in plan.describe() and "--max-memory-mb" in plan.describe()
