"""The student/teacher zoo: shapes on odd sizes, live gradients, feature points, sizes, ONNX parity."""
import importlib

import pytest
import torch

from kdrestore.models.registry import _ARCH_MODULES, MODELS

ZOO_MODULES = ("mdrn", "msresnet", "dnnet", "tinydehaze", "unet", "nafnet", "restormer")
for _m in ZOO_MODULES:
    importlib.import_module(f"kdrestore.models.{_m}")

# name -> (min params, max params) of the registered default config
SIZES = {
    "mdrn": (300_000, 500_000), "mdrn-rgb": (300_000, 500_000), "mdrn-tiny": (10_000, 60_000),
    "mdrn-fast": (300_000, 500_000), "mdrn-rgb-fast": (300_000, 500_000),
    "msresnet": (800_000, 1_000_000), "msresnet-tiny": (5_000, 100_000),
    "dnnet": (1_000_000, 1_400_000), "dnnet-tiny": (2_000, 50_000),
    "tinydehaze": (5_000, 50_000), "tinydehaze-s": (5_000, 50_000),
    "unet-tiny": (20_000, 300_000),
    "nafnet-tiny": (50_000, 500_000), "nafnet": (5_000_000, 10_000_000),
    "restormer-tiny": (200_000, 1_500_000), "restormer": (25_000_000, 27_000_000),
}
BIG = {"nafnet", "restormer"}  # checked for size only (on the meta device), not run
RUN = sorted(set(SIZES) - BIG)


def _build(name: str, **kw) -> tuple[torch.nn.Module, int]:
    entry = MODELS.entry(name)
    torch.manual_seed(0)
    return entry.obj(**kw), entry.meta["channels"]


def test_zoo_is_registered_with_metadata():
    assert set(ZOO_MODULES) <= set(_ARCH_MODULES)
    for name in SIZES:
        meta = MODELS.entry(name).meta
        assert meta["family"] in {"student", "teacher"}
        assert meta["task"] in {"denoise", "derain", "dehaze", "any"}
        assert meta["channels"] in {1, 3} and meta["published"]["text"]
    assert MODELS.entry("nafnet").meta["family"] == MODELS.entry("restormer-tiny").meta["family"] == "teacher"


@pytest.mark.parametrize("name", sorted(SIZES))
def test_default_sizes(name):
    lo, hi = SIZES[name]
    with torch.device("meta"):
        model = MODELS.get(name)()
    n = sum(p.numel() for p in model.parameters())
    assert lo <= n <= hi, f"{name}: {n:,} params not in [{lo:,}, {hi:,}]"
    modules = dict(model.named_modules())
    assert model.feature_points and all(p in modules for p in model.feature_points)


@pytest.mark.parametrize("name", RUN)
def test_forward_odd_sizes_features_and_gradients(name):
    model, c = _build(name)
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    for p in model.feature_points:
        modules[p].register_forward_hook(lambda m, i, o, p=p: captured.__setitem__(p, o))
    for h, w in [(17, 23), (5, 3)]:
        x = torch.rand(2, c, h, w)
        y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert set(captured) == set(model.feature_points)
    assert all(t.dim() == 4 and t.shape[0] == 2 for t in captured.values())

    # zero-initialised residual scales (NAFNet beta/gamma) would hide dead branches behind them
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.fill_(0.1)
    model.zero_grad()
    model(torch.rand(2, c, 12, 10)).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name}: zero gradient at {pname}"


def test_channels_and_widths_are_configurable():
    for name, kw in [("mdrn", {"in_channels": 3, "channels": 8, "blocks": 2}),
                     ("msresnet", {"in_channels": 1, "channels": 8, "blocks": 1}),
                     ("dnnet", {"in_channels": 3, "channels": 8, "blocks": 1}),
                     ("tinydehaze", {"in_channels": 1, "width": 4}),
                     ("unet-tiny", {"in_channels": 1, "width": 8, "levels": 4, "blocks": 2}),
                     ("nafnet-tiny", {"in_channels": 1, "width": 8, "enc_blocks": (1, 2), "dec_blocks": (1, 1)}),
                     ("restormer-tiny", {"in_channels": 1, "dim": 8, "heads": (1, 2, 2, 4)})]:
        model, _ = _build(name, **kw)
        c = kw["in_channels"]
        x = torch.rand(1, c, 9, 7)
        assert model(x).shape == x.shape, name


def test_mdrn_fast_works_on_a_quarter_of_the_pixels():
    from kdrestore.evaluate.profile import count_macs

    full, fast = _build("mdrn")[0], _build("mdrn-fast")[0]
    ratio = count_macs(fast, (1, 1, 64, 64)) / count_macs(full, (1, 1, 64, 64))
    assert 0.2 < ratio < 0.3 and fast.multiple == 8
    assert set(full.state_dict()) == set(fast.state_dict())  # the shipped mdrn weights keep their keys


def test_restormer_converts_the_authors_key_layout():
    from kdrestore.models.restormer import Restormer

    model, _ = _build("restormer-tiny")
    theirs = {k.replace("norm1.", "norm1.body.").replace("norm2.", "norm2.body.")
              .replace("down1_2.", "down1_2.body.").replace("up2_1.", "up2_1.body."): v
              for k, v in model.state_dict().items()}
    theirs = {("patch_embed.proj." + k[len("patch_embed."):] if k.startswith("patch_embed.") else k): v
              for k, v in theirs.items()}
    assert model.load_state_dict(Restormer.convert_state_dict(theirs), strict=True)
