"""PairedDataset, SynthDataset, the safe loader and the built-in images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import kdrestore.degrade
from kdrestore.data import (ImageReadError, PairedDataset, SafeLoader, SynthDataset, TEST_NAMES,
                            TRAIN_NAMES, builtin_dataset, builtin_depth, collate_skip,
                            iter_pairs_safe, split_names)


def _save(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


@pytest.fixture
def inverted_pairs(tmp_path: Path) -> Path:
    """input/target folders where every input is the exact negative of its target."""
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(20, 30), (24, 24), (10, 12)]):
        clean = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _save(tmp_path / "target" / f"{i}.png", clean)
        _save(tmp_path / "input" / f"{i}.png", 255 - clean)
    return tmp_path


def test_paired_full_images(inverted_pairs: Path) -> None:
    ds = PairedDataset(inverted_pairs)
    assert len(ds) == 3 and len(PairedDataset(inverted_pairs, limit=2)) == 2
    item = ds[0]
    assert item["name"] == "0" and item["input"].shape == item["target"].shape == (3, 20, 30)
    assert torch.allclose(item["input"] + item["target"], torch.ones(3, 20, 30), atol=1e-6)
    gray = PairedDataset((inverted_pairs / "input", inverted_pairs / "target"), mode="gray")[1]
    assert gray["input"].shape == (1, 24, 24)


def test_paired_crop_and_augment_use_one_window(inverted_pairs: Path) -> None:
    torch.manual_seed(0)
    ds = PairedDataset(inverted_pairs, crop=16, augment=True)
    for _ in range(4):
        for i in range(len(ds)):  # image 2 (10x12) is smaller than the crop: reflect-padded
            item = ds[i]
            assert item["input"].shape == item["target"].shape == (3, 16, 16)
            assert torch.allclose(item["input"] + item["target"], torch.ones(3, 16, 16), atol=1e-6)
    rect = PairedDataset(inverted_pairs, crop=(8, 12))[0]
    assert rect["input"].shape == (3, 8, 12)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["input"].shape == (3, 3, 16, 16) and batch["name"] == ["0", "1", "2"]


def test_sots_like_border_mismatch_is_center_cropped(tmp_path: Path) -> None:
    gt = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    _save(tmp_path / "gt" / "7.png", gt)
    _save(tmp_path / "hazy" / "7_1.png", gt[2:-2, 2:-2])  # hazy lacks the 2-px frame
    item = PairedDataset(tmp_path)[0]
    assert item["input"].shape == item["target"].shape == (3, 20, 28)
    assert torch.equal(item["input"], item["target"])
    _save(tmp_path / "hazy" / "7_2.png", gt[:8, :8])
    with pytest.raises(ValueError, match="size mismatch"):
        PairedDataset(tmp_path, max_border=3)[1]


def test_corrupt_file_is_skipped_with_a_summary(inverted_pairs: Path) -> None:
    bad = inverted_pairs / "input" / "1.png"
    bad.write_bytes(np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8).tobytes())
    ds = PairedDataset(inverted_pairs, crop=8)
    with pytest.raises(ImageReadError, match="1.png"):
        ds[1]
    loader = SafeLoader(ds, batch_size=2)
    with pytest.warns(RuntimeWarning, match="1 of 3 samples failed"):
        names = [n for batch in loader for n in batch["name"]]
    assert names == ["0", "2"] and loader.seen == 2
    assert [f.path for f in loader.failed] == [str(bad)] and str(bad) in loader.summary()
    failed: list[Any] = []
    with pytest.warns(RuntimeWarning):
        assert len(list(iter_pairs_safe(ds, failed=failed))) == 2
    assert len(failed) == 1

    skipping = PairedDataset(inverted_pairs, crop=8, skip_errors=True)
    assert skipping[1] is None and "1" in skipping.errors and "1.png" in skipping.errors["1"]
    batch = collate_skip([skipping[0], skipping[1], skipping[2]])
    assert batch["name"] == ["0", "2"] and batch["failed"] == []


def _arrays(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.random((20 + 4 * i, 24, 1)).astype(np.float32) for i in range(n)]


def test_synth_fixed_is_reproducible_across_instances() -> None:
    a = SynthDataset(_arrays(), "awgn", {"sigma": 25}, mode="gray", seed=3, fixed=True)
    b = SynthDataset(_arrays(), "awgn", {"sigma": 25}, mode="gray", seed=3, fixed=True)
    torch.manual_seed(123)
    x0 = a[0]
    torch.manual_seed(999)
    assert torch.equal(x0["input"], a[0]["input"]) and torch.equal(x0["input"], b[0]["input"])
    assert x0["target"].shape == (1, 20, 24) and x0["params"]["sigma"] == 25
    assert not torch.equal(x0["input"], SynthDataset(_arrays(), "awgn", {"sigma": 25}, seed=4)[0]["input"][:1])
    cropped = SynthDataset(_arrays(), "awgn", {"sigma": 25}, crop=8, augment=True, seed=3)
    assert torch.equal(cropped[2]["input"], cropped[2]["input"])
    assert cropped[2]["input"].shape == (3, 8, 8)  # default mode rgb


def test_synth_training_changes_between_epochs() -> None:
    a = SynthDataset(_arrays(), "awgn", {"sigma": 25}, mode="gray", crop=8, seed=1, fixed=False)
    b = SynthDataset(_arrays(), "awgn", {"sigma": 25}, mode="gray", crop=8, seed=1, fixed=False)
    a.set_epoch(0), b.set_epoch(0)
    e0 = a[1]
    assert torch.equal(e0["input"], b[1]["input"]) and torch.equal(e0["target"], b[1]["target"])
    a.set_epoch(1)
    assert not torch.equal(e0["input"], a[1]["input"])
    c = SynthDataset(_arrays(), "awgn", {"sigma": 25}, mode="gray", crop=8, seed=1, fixed=False)
    torch.manual_seed(7)
    first = c[0]["input"]
    assert not torch.equal(first, c[0]["input"])  # fresh on every access without set_epoch
    torch.manual_seed(7)
    assert torch.equal(first, c[0]["input"])  # ...but reproducible under torch.manual_seed


def test_synth_noise_is_not_clipped_and_batches_collate(tmp_path: Path) -> None:
    for i in range(4):
        _save(tmp_path / f"im{i}.png", np.full((12, 12), 255 if i % 2 else 0, np.uint8))
    ds = SynthDataset(tmp_path, "awgn", {"sigma": 50}, mode="gray", crop=8)
    assert [ds.name(i) for i in range(4)] == ["im0", "im1", "im2", "im3"]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["input"].shape == (4, 1, 8, 8) and batch["params"]["sigma"].shape == (4,)
    assert batch["input"].min() < 0 and batch["input"].max() > 1


def test_synth_spatial_params_follow_crop_and_augment(monkeypatch: pytest.MonkeyPatch) -> None:
    img = np.random.default_rng(8).random((30, 40, 1)).astype(np.float32)
    seen: dict[str, np.ndarray] = {}

    def fake(name: str, clean: np.ndarray, seed: Any, **params: Any) -> Any:
        seen["depth"], seen["clean"] = params["depth"], clean
        return kdrestore.degrade.Degraded(clean, clean, {"k": 1.0})

    monkeypatch.setattr(kdrestore.degrade, "degrade", fake)
    ds = SynthDataset([("x", img)], "haze", mode="gray", crop=16, augment=True, fixed=False,
                      per_image={"x": {"depth": img[:, :, 0]}})
    for _ in range(5):
        ds[0]
        assert seen["depth"].shape == (16, 16) and np.array_equal(seen["depth"], seen["clean"][:, :, 0])


def test_builtin_split_and_tasks() -> None:
    assert not set(TEST_NAMES) & set(TRAIN_NAMES)
    test, train = split_names("test"), split_names("train")
    if not test or not train:
        pytest.skip("scikit-image sample images not installed")
    den = builtin_dataset("denoise", limit=1)
    item = den[0]
    assert item["input"].shape[0] == 1 and item["params"]["sigma"] == 25
    assert torch.equal(item["input"], builtin_dataset("denoise", limit=1)[0]["input"])
    tr = builtin_dataset("derain", "train", crop=32, limit=2)
    assert tr.fixed is False and tr[0]["input"].shape == (3, 32, 32)
    assert set(tr.name(i) for i in range(len(tr))) <= set(train)
    if "motorcycle_left" in test:
        depth = builtin_depth("motorcycle_left")
        assert depth is not None and np.isfinite(depth).all() and depth.max() == pytest.approx(1)
        hz = builtin_dataset("dehaze", names=["motorcycle_left"], crop=48)[0]
        assert hz["params"]["depth_source"] == "given" and 1.0 <= hz["params"]["beta"] <= 1.5


def test_whole_image_context_views_follow_the_crops_flip_and_come_from_the_whole_image(tmp_path):
    import numpy as np
    import torch

    from kdrestore.data.paired import PairedDataset, dihedral
    from kdrestore.data.synth import SynthDataset
    from kdrestore.models.coic import context_view

    rng = np.random.default_rng(0)
    clean = rng.random((40, 60, 3)).astype(np.float32)
    view = lambda a: context_view(torch.from_numpy(a.transpose(2, 0, 1).copy())[None], 16)[0]  # noqa: E731
    plain = SynthDataset([clean], "rain-heavy", crop=16, augment=False, seed=0, fixed=True, context=16)[0]
    assert plain["input"].shape[-2:] == (16, 16) and plain["context"].shape == (3, 16, 16)
    assert torch.allclose(plain["context_target"], view(clean), atol=1e-6)  # the whole clean image's view
    assert (plain["context"] - plain["context_target"]).abs().mean() > 0.01  # the whole image's rain
    turned = SynthDataset([clean], "rain-heavy", crop=16, augment=True, seed=0, fixed=False, context=16)
    turned.set_epoch(3)
    item = turned[0]
    match = [k for k in range(8) if torch.allclose(item["context_target"],
                                                  view(np.ascontiguousarray(dihedral([clean], k)[0])), atol=1e-5)]
    assert match  # the view went through the crop's flip/rotation
    from kdrestore.data.imageio import write_image
    (tmp_path / "rain").mkdir()
    (tmp_path / "norain").mkdir()
    rainy = np.clip(clean + 0.3 * (rng.random((40, 60, 3)) > 0.9), 0, 1).astype(np.float32)
    write_image(tmp_path / "rain" / "rain-001.png", rainy)
    write_image(tmp_path / "norain" / "norain-001.png", clean)
    pair = PairedDataset(tmp_path, crop=16, context=16)[0]
    assert pair["context"].shape == (3, 16, 16) and pair["input"].shape == (3, 16, 16)
    assert torch.allclose(pair["context"], view(rainy), atol=1 / 255)  # 8-bit files
