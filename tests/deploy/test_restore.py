"""The Restorer, restore_files, load() and the ``kdrestore restore`` command on real files."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import kdrestore
from kdrestore.cli import main
from kdrestore.data.imageio import read_image, write_image
from kdrestore.deploy import loader
from kdrestore.models import shipped
from kdrestore.deploy.restore import Restorer, load, load_default, output_names, read_source, restore_files
from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model




def identity(channels: int = 3) -> nn.Module:
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return conv


class Brighten(nn.Module):
    def forward(self, x):
        return x + 0.1


def test_restore_keeps_dtype_and_layout():
    r = Restorer(identity(3), channels=3)
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = r.restore(u8)
    assert out.dtype == np.uint8 and np.array_equal(out, u8)
    u16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    assert np.array_equal(r.restore(u16), u16)
    f = rng.random((20, 30, 3))
    out = r.restore(f)
    assert out.dtype == np.float32 and np.allclose(out, f, atol=1e-6)
    gray = Restorer(Brighten(), channels=1).restore(np.full((9, 11), 100, np.uint8))
    assert gray.shape == (9, 11) and gray.dtype == np.uint8 and (gray == 126).all()


def test_alpha_passes_through():
    rgba = np.random.default_rng(1).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    out = Restorer(Brighten(), channels=3).restore(rgba)
    assert out.shape == (16, 16, 4) and np.array_equal(out[..., 3], rgba[..., 3])
    assert (out[..., :3] >= rgba[..., :3]).all()


def test_gray_model_on_rgb_needs_color_conversion():
    rgb = np.random.default_rng(2).random((12, 14, 3)).astype(np.float32)
    with pytest.raises(KdrestoreError, match="color conversion"):
        Restorer(identity(1), channels=1).restore(rgb)
    out = Restorer(identity(1), channels=1, allow_color_conversion=True).restore(rgb)
    assert np.allclose(out, rgb, atol=1e-5)  # luminance restored, chroma kept
    out = Restorer(Brighten(), channels=1, allow_color_conversion=True).restore(rgb * 0.5)
    assert np.allclose(out, rgb * 0.5 + 0.1, atol=1e-5)


def test_restore_files_formats(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(3)
    img16 = rng.random((20, 24, 3))
    write_image(src / "deep.png", img16, bits=16)
    rgba = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    tall = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # stored 20x30, displayed 30x20
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(tall).save(src / "rotated.png", exif=exif)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    summary = restore_files(Restorer(identity(3), channels=3), [src], out, progress=False)
    assert sorted(p.name for p in summary.written) == ["alpha.png", "deep.png", "rotated.png"]
    assert [n for n, _ in summary.failed] == [str(src / "broken.png")] and "cannot read" in summary.failed[0][1]
    assert read_source(out / "deep.png")[2] == 16
    assert np.abs(read_image(out / "deep.png") - img16).max() <= 1 / 65535
    with Image.open(out / "alpha.png") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)
    assert np.array_equal(np.asarray(Image.open(out / "rotated.png")), np.rot90(tall, -1))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # atomic writes left no temp files


def test_inputs_are_never_overwritten(tmp_path):
    img = tmp_path / "a.png"
    write_image(img, np.zeros((8, 8, 3)))
    before = img.read_bytes()
    with pytest.raises(KdrestoreError, match="never overwritten"):
        restore_files(Restorer(Brighten(), channels=3), [img], tmp_path, progress=False)
    assert img.read_bytes() == before


def test_globs_order_and_name_clashes(tmp_path):
    for name in ["10.png", "2.png", "2.jpg", "x.bmp"]:
        write_image(tmp_path / "in" / name, np.zeros((8, 8, 3)))
    summary = restore_files(Restorer(Brighten(), channels=3), [str(tmp_path / "in" / "*.png"),
                            tmp_path / "in" / "2.jpg", tmp_path / "missing.png"], tmp_path / "out", progress=False)
    assert [p.name for p in summary.written] == ["2_png.png", "10.png", "2_jpg.png"]
    assert summary.skipped == [(str(tmp_path / "missing.png"), "no such file or folder")] and not summary.failed
    assert output_names([tmp_path / "a/x.png", tmp_path / "b/x.png"]) == ["x_png.png", "x_png_2.png"]


def test_load_a_run_directory(run_dir, tmp_path):
    r = load(run_dir)
    assert r.channels == 1 and r.task == "denoise" and "EMA" in r.source and "step 2" in r.source
    noisy = np.random.default_rng(4).integers(0, 256, (40, 52), dtype=np.uint8)
    out = r.restore(noisy)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    tiled = load(run_dir, tile=24, overlap=8).restore(noisy)
    assert np.abs(tiled.astype(int) - out.astype(int)).max() <= 2
    assert kdrestore.load is load


def test_restore_command(run_dir, tmp_path, capsys):
    for i in range(2):
        write_image(tmp_path / "in" / f"{i}.png", np.random.default_rng(i).random((24, 20, 1)))
    code = main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(run_dir),
                 "--tile", "16", "--overlap", "4", "--quiet"])
    assert code == 0 and "wrote 2 image(s)" in capsys.readouterr().out
    assert read_image(tmp_path / "out" / "1.png").shape == (24, 20, 1)
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "in"), "--model", str(run_dir)]) == 2


def test_unknown_names_and_missing_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path / "none")
    with pytest.raises(KdrestoreError, match="none shipped yet.*Did you mean 'unet-tiny'"):
        load("unet-tiy")
    with pytest.raises(KdrestoreError, match="no published weights"):
        load("unet-tiny")
    with pytest.raises(KdrestoreError, match="not a run directory"):
        load(tmp_path)


def test_shipped_pretrained_card(monkeypatch, tmp_path):
    folder = tmp_path / "gray-small"
    folder.mkdir()
    model = build_model("unet-tiny", in_channels=1, width=4, levels=2)
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    (folder / "card.json").write_text(json.dumps({"model": "unet-tiny", "args": {"in_channels": 1, "width": 4,
                                                  "levels": 2}, "task": "denoise", "channels": 1}))
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    assert loader.shipped_names() == ["gray-small"]
    r = load("gray-small")
    assert r.channels == 1 and r.task == "denoise" and "pretrained" in r.source
    with pytest.raises(KdrestoreError, match="available: gray-small"):
        load("nope")


def _ship(folder, channels: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = build_model("unet-tiny", in_channels=channels, width=4, levels=2)
    folder.mkdir()
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    (folder / "card.json").write_text(json.dumps({"model": "unet-tiny", "args": {"in_channels": channels, "width": 4,
                                                  "levels": 2}, "task": "denoise", "channels": channels}))


def test_task_default_sends_colour_images_to_the_colour_student(monkeypatch, tmp_path):
    _ship(tmp_path / "gray", 1, 0)
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    monkeypatch.setattr(loader, "DEFAULT_MODELS", {"denoise": "gray"})
    monkeypatch.setattr(loader, "DEFAULT_COLOR_MODELS", {"denoise": "color"})
    rng = np.random.default_rng(4)
    rgb, gray = rng.random((16, 20, 3)).astype(np.float32), rng.random((16, 20, 1)).astype(np.float32)
    alone = load_default("denoise")  # no colour student shipped: the gray one restores the luminance
    assert alone.color is None and alone.restore(rgb).shape == rgb.shape
    _ship(tmp_path / "color", 3, 1)
    both = load_default("denoise")
    assert both.color is not None and both.color.channels == 3 and "colour images" in both.source
    assert np.array_equal(both.restore(rgb), load("color").restore(rgb))
    assert np.array_equal(both.restore(gray), load("gray").restore(gray))
    assert not np.allclose(both.restore(rgb), alone.restore(rgb))
    with pytest.raises(KdrestoreError, match="no shipped student for task 'deblur'"):
        load_default("deblur")


def test_rain_option_picks_the_light_or_heavy_student(monkeypatch, tmp_path, capsys):
    _ship(tmp_path / "heavy", 3, 0)
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    monkeypatch.setattr(loader, "RAIN_MODELS", {"heavy": "heavy", "light": "light"})
    assert "heavy" in load_default("derain").source  # the default is the heavy-rain student
    with pytest.raises(KdrestoreError, match="light-rain student 'light' is not shipped"):
        load_default("derain", rain="light")
    _ship(tmp_path / "light", 3, 1)
    x = np.random.default_rng(0).random((16, 20, 3)).astype(np.float32)
    light = load_default("derain", rain="light")
    assert "light" in light.source and np.array_equal(light.restore(x), load("light").restore(x))
    assert not np.array_equal(light.restore(x), load_default("derain", rain="heavy").restore(x))
    with pytest.raises(KdrestoreError, match="--rain picks the deraining student"):
        load_default("dehaze", rain="light")
    assert main(["restore", str(tmp_path), "-o", str(tmp_path / "out"), "--model", "light", "--rain", "light"]) == 2
    assert "--rain picks the shipped deraining student" in capsys.readouterr().err


def test_import_kdrestore_stays_light():
    code = "import sys, kdrestore; assert 'torch' not in sys.modules, 'import kdrestore loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_default_denoiser_shows_both_students():
    """print(load_default('denoise')) names the colour student that colour images go to, by shipped name."""
    from kdrestore.deploy.loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS

    if DEFAULT_COLOR_MODELS["denoise"] not in loader.shipped_names():
        pytest.skip("no colour denoiser shipped")
    text = repr(load_default("denoise"))
    assert DEFAULT_MODELS["denoise"] in text and f"colour images: Restorer({DEFAULT_COLOR_MODELS['denoise']}" in text


def test_restore_command_reports_and_goes_on_past_bad_files(tmp_path, capsys):
    """Bad inputs are named before the model loads; a batch goes on past a bad file, says how many failed,
    names the JPEG -> PNG change, and exits non-zero only when nothing could be done."""
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(0).random((20, 24, 3)))
    write_image(tmp_path / "in" / "b.jpg", np.random.default_rng(1).random((20, 24, 3)))
    (tmp_path / "in" / "bad.png").write_bytes(b"not a png")
    code = main(["restore", str(tmp_path / "in"), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out"),
                 "--task", "dehaze", "--quiet"])
    cap = capsys.readouterr()
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "JPG input(s) are written as PNG" in cap.out
    assert "wrote 2 image(s)" in cap.out and "skipped 1 input(s); 1 failed" in cap.out
    assert "bad.png" in cap.err and "missing.png: no such file or folder" in cap.err
    code = main(["restore", str(tmp_path / "missing.png"), "-o", str(tmp_path / "out2"), "--task", "dehaze"])
    cap = capsys.readouterr()
    assert code == 2 and "nothing to restore: " in cap.err and "missing.png" in cap.err
    assert "model:" not in cap.out and "wrote" not in cap.out  # no model loaded, no "wrote 0 image(s)"
    assert main(["restore", str(tmp_path / "in" / "bad.png"), "-o", str(tmp_path / "out3"), "--task", "dehaze",
                 "--quiet"]) == 1  # nothing could be done


def test_a_memory_budget_too_small_is_a_clear_error_and_tiles_otherwise(tmp_path):
    r = Restorer(nn.Conv2d(3, 3, 3, padding=1), channels=3, max_memory_mb=1)
    with pytest.raises(KdrestoreError, match="memory budget of 1 MB is too small for a 600x400 image"):
        r.restore_float(np.zeros((400, 600, 3), np.float32))
    r.max_memory_mb = 30
    r.restore_float(np.zeros((400, 600, 3), np.float32))
    assert r.last_plan.tiles > 1 and "memory budget 30 MB" in r.last_plan.describe()
    with pytest.raises(KdrestoreError, match="positive"):
        Restorer(identity(), channels=3, max_memory_mb=-5)
