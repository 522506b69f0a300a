"""Image reading/writing: bit depths, channel layouts, orientation, errors, atomic writes."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from kdrestore.data import ImageReadError, list_images, read_image, to_uint8, write_image
from kdrestore.errors import KdrestoreError


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).random((23, 31, 3)).astype(np.float32)


def test_8bit_rgb_roundtrip(tmp_path: Path, rgb: np.ndarray) -> None:
    write_image(tmp_path / "a.png", rgb)
    back = read_image(tmp_path / "a.png")
    assert back.dtype == np.float32 and back.shape == rgb.shape
    assert np.abs(back - rgb).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), to_uint8(rgb))


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_roundtrip(tmp_path: Path, rgb: np.ndarray, ext: str, channels: int) -> None:
    img = rgb[:, :, :channels]
    path = write_image(tmp_path / f"a.{ext}", img, bits=16)
    back = read_image(path)
    assert back.shape == img.shape
    assert np.abs(back - img).max() <= 0.5 / 65535 + 1e-6  # far finer than 8 bits


def _png16_with_filters(a: np.ndarray) -> bytes:
    """A 16-bit RGB PNG whose rows cycle through all five filter types (reference encoder)."""
    h, w, c = a.shape
    bpp = 2 * c
    raw = a.astype(">u2").view(np.uint8).reshape(h, w * bpp).astype(np.int32)
    rows = []
    for y in range(h):
        x, up = raw[y], raw[y - 1] if y else np.zeros_like(raw[0])
        left = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
        ul = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        kind = y % 5
        if kind == 4:
            p = left + up - ul
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
        else:
            pred = [np.zeros_like(x), left, up, (left + up) // 2][kind]
        rows.append(bytes([kind]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def test_16bit_png_all_filter_types(tmp_path: Path) -> None:
    a = np.random.default_rng(1).integers(0, 65536, (11, 9, 3), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(_png16_with_filters(a))
    assert np.array_equal(np.round(read_image(tmp_path / "f.png") * 65535).astype(np.uint16), a)


def test_gray_and_mode_conversion(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(to_uint8(rgb[:, :, 0])).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (23, 31, 1)
    as_rgb = read_image(tmp_path / "g.png", mode="rgb")
    assert as_rgb.shape == (23, 31, 3) and np.array_equal(as_rgb[..., 0], as_rgb[..., 2])
    write_image(tmp_path / "c.png", rgb)
    gray = read_image(tmp_path / "c.png", mode="gray")
    ref = np.asarray(Image.open(tmp_path / "c.png").convert("L"), np.float32) / 255
    assert gray.shape == (23, 31, 1) and np.abs(gray[..., 0] - ref).max() <= 1 / 255 + 1e-6


def test_rgba_drops_alpha_and_palette_expands(tmp_path: Path, rgb: np.ndarray) -> None:
    rgba = np.dstack([to_uint8(rgb), np.full((23, 31), 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (23, 31, 3) and np.array_equal(to_uint8(out), rgba[..., :3])
    pal = Image.fromarray(to_uint8(rgb)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.save(tmp_path / "p.png")
    expected = np.asarray(pal.convert("RGB"))
    assert np.array_equal(to_uint8(read_image(tmp_path / "p.png")), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path: Path, orientation: int) -> None:
    img = Image.fromarray((np.random.default_rng(2).random((12, 20, 3)) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg")), np.float32) / 255
    out = read_image(tmp_path / "o.jpg")
    assert out.shape == expected.shape
    assert out.shape[:2] == ((20, 12) if orientation >= 5 else (12, 20))
    assert np.abs(out - expected).max() < 1e-6


def test_corrupt_and_missing_files_raise_image_read_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match="broken.png") as info:
        read_image(bad)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, KdrestoreError) and info.value.path == bad
    good = tmp_path / "trunc.png"
    write_image(good, np.zeros((40, 40, 3)))
    good.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="trunc.png"):
        read_image(good)
    with pytest.raises(ImageReadError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_write_is_atomic(tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "x.png"
    write_image(target, rgb)  # creates the folder
    before = target.read_bytes()
    assert sorted(os.listdir(target.parent)) == ["x.png"]

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, 1 - rgb)
    with pytest.raises(OSError):
        write_image(tmp_path / "out" / "new.png", rgb)
    monkeypatch.undo()
    assert sorted(os.listdir(target.parent)) == ["x.png"]  # no temp file, no partial new file
    assert target.read_bytes() == before
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "out" / "nan.png", np.full((4, 4), np.nan))
    with pytest.raises(FileExistsError):
        write_image(target, rgb, overwrite=False)
    assert sorted(os.listdir(target.parent)) == ["x.png"]


def test_write_clips_rounds_and_accepts_tensors(tmp_path: Path) -> None:
    a = np.array([[-0.5, 0.0, 0.5 / 255 + 1e-4, 1.0, 2.0]], np.float32)
    write_image(tmp_path / "c.png", a)
    assert np.asarray(Image.open(tmp_path / "c.png")).tolist() == [[0, 0, 1, 255, 255]]
    t = torch.rand(3, 5, 7)
    write_image(tmp_path / "t.png", t)
    assert read_image(tmp_path / "t.png").shape == (5, 7, 3)
    with pytest.raises(ValueError, match="16-bit"):
        write_image(tmp_path / "x.jpg", a, bits=16)


def test_list_images(tmp_path: Path) -> None:
    for n in ["10.png", "2.PNG", "b.JPEG", "c.tif", "d.webp", "e.bmp", "notes.txt", ".hidden.png"]:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == \
        ["2.PNG", "10.png", "b.JPEG", "c.tif", "d.webp", "e.bmp"]
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")
