"""Peer re-implementations: shapes on odd sizes, published weights load by name, sanity on real data."""
from pathlib import Path

import numpy as np
import pytest
import torch

from kdrestore.models.common import count_parameters
from kdrestore.models.registry import build_model, model_entry
from kdrestore.models.weights import WeightsError, load_weights

PEERS = {  # name: (channels, params)
    "dncnn-s15": (1, 556_032), "dncnn-s25": (1, 556_032), "dncnn-s50": (1, 556_032),
    "dncnn-b": (1, 667_008), "dncnn-s25-folded": (1, 555_137),
    "ffdnet-gray": (1, 486_080), "ffdnet-rgb": (3, 854_688),
    "prenet6": (3, 168_963), "prenet6-rain100l": (3, 168_963), "prenet6-r": (3, 94_979), "prn6": (3, 95_107), "prn6-r": (3, 21_123),
    "gcanet": (3, 702_818), "aodnet": (3, 1_761), "dcp": (3, 0),
}
WITH_WEIGHTS = [n for n in PEERS if n != "dcp"]


@pytest.mark.parametrize("name", sorted(PEERS))
def test_builds_registered_and_keeps_odd_sizes(name):
    channels, params = PEERS[name]
    meta = model_entry(name).meta
    assert meta["channels"] == channels and meta["published"]["value"] > 0
    assert meta["family"] == ("classical" if name == "dcp" else "peer")
    model = build_model(name).eval()
    assert count_parameters(model) == params
    torch.manual_seed(0)
    for h, w in ((17, 23), (3, 5)):
        x = torch.rand(1, channels, h, w)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_published_weights_load_with_all_keys(name, peers_dir):
    model = build_model(name)
    report = load_weights(model, peers_dir / model_entry(name).meta["peer_weights"])
    assert report.ok, report.describe()


def test_wrong_weights_raise_naming_keys(peers_dir, tmp_path):
    with pytest.raises(WeightsError, match=r"missing \(15\): dncnn\.48\.weight"):
        load_weights(build_model("dncnn-b"), peers_dir / "DnCNN/DnCNN-S-25/net.pth")
    with pytest.raises(WeightsError, match=r"conv_i\.0\.weight"):
        load_weights(build_model("prenet6"), peers_dir / "PReNet/Rain100H/PRN6/net_latest.pth")
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "random.pth")
    with pytest.raises(WeightsError, match=r"unexpected \(1\): foo\.weight"):
        load_weights(build_model("aodnet"), tmp_path / "random.pth")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a.clamp(0, 1) - b) ** 2).mean()))


@pytest.mark.parametrize("name", ["dncnn-s25", "dncnn-s25-folded"])
def test_dncnn_s25_denoises_a_real_set12_crop(name, peers_dir, data_dir):
    from PIL import Image

    img = np.asarray(Image.open(data_dir / "denoise/Set12/01.png").convert("L"), dtype=np.float32) / 255.0
    clean = torch.from_numpy(img[:128, :128].copy())[None, None]
    rng = np.random.default_rng(0)
    noisy = clean + torch.from_numpy(rng.normal(0, 25 / 255, clean.shape).astype(np.float32))
    model = build_model(name).eval()
    load_weights(model, peers_dir / model_entry(name).meta["peer_weights"])
    with torch.no_grad():
        out = model(noisy)
    assert _psnr(out, clean) - _psnr(noisy, clean) > 8.0


def test_ffdnet_noise_level_is_used():
    model = build_model("ffdnet-gray").eval()
    x = torch.rand(1, 1, 9, 11)
    with torch.no_grad():
        a = model(x)
        model.set_noise_level(50)
        b = model(x)
        c = model(x, sigma=torch.tensor([50.0]))
    assert not torch.equal(a, b) and torch.allclose(b, c)


def test_dcp_dehazes_a_synthetic_hazy_image():
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 160, 200) * 0.8  # random colours: a dark pixel in every patch
    t = torch.full((1, 1, 160, 200), 0.6)
    t[..., :30, :30] = 0.05  # a dense-haze corner from which the airlight can be read
    hazy = clean * t + 0.9 * (1 - t)
    model = build_model("dcp")
    with torch.no_grad():
        airlight = model.atmospheric_light(hazy, model.dark_channel(hazy))
        out = model(hazy)
    assert torch.allclose(airlight.flatten(), torch.full((3,), 0.9), atol=0.05)
    assert _psnr(out[..., 40:, 40:], clean[..., 40:, 40:]) > 25 > _psnr(hazy, clean) + 10



def test_peers_folder_layout(peers_dir):
    assert isinstance(peers_dir, Path) and (peers_dir / "DnCNN").is_dir()
