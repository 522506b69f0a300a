"""Image reading and writing: every image becomes a float32 ``H x W x C`` array in [0, 1].

Pillow cannot hold 16-bit colour, so 16-bit RGB(A) PNGs are decoded and encoded by a small
numpy/zlib codec here, and 16-bit TIFFs go through ``tifffile`` (a scikit-image dependency).
Writes are atomic (temporary file in the destination folder, then ``os.replace``).
"""
from __future__ import annotations

from dataclasses import dataclass

import io
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..errors import KdrestoreError
from ..fsutil import atomic_path

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
Mode = Literal["rgb", "gray"]
PathLike = str | os.PathLike
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's "L" conversion
# EXIF orientation -> numpy equivalent of PIL.ImageOps.exif_transpose
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


class ImageReadError(KdrestoreError, OSError, ValueError):
    """A file that is missing, corrupt or not a decodable image; ``path`` names it."""

    def __init__(self, path: PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image '{self.path}': {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason))


def read_image(path: PathLike, mode: Mode | None = None) -> np.ndarray:
    """Read an image as a float32 ``H x W x C`` array in [0, 1] (C = 1 or 3).

    ``mode``: ``None`` keeps the file's own channels (gray -> C=1, colour -> C=3), ``"rgb"``
    repeats a gray channel three times, ``"gray"`` converts colour with BT.601 luma weights.
    An alpha channel is dropped (not composited over a background); palette images are
    expanded to RGB; 16-bit data keeps its precision (divided by 65535); float TIFFs are
    clipped to [0, 1]; multi-frame files give their first frame. The EXIF orientation tag is
    applied, as ``PIL.ImageOps.exif_transpose`` does. Raises :class:`ImageReadError`.
    """
    if mode not in (None, "rgb", "gray"):
        raise ValueError(f"mode must be 'rgb', 'gray' or None, got {mode!r}")
    arr = read_image_full(path).image
    if arr.shape[2] == 3 and mode == "gray":
        arr = (arr @ _LUMA)[:, :, None]
    elif arr.shape[2] == 1 and mode == "rgb":
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr, dtype=np.float32)


@dataclass(frozen=True)
class DecodedImage:
    """All a file holds: ``image`` H x W x C (C = 1 or 3) and ``alpha`` H x W (or None), both float32 in
    [0, 1] and in display orientation, and ``bits`` (8, or 16 for deeper integer or float data)."""

    image: np.ndarray
    alpha: np.ndarray | None
    bits: int


def read_image_full(path: PathLike) -> DecodedImage:
    """Decode a file once, keeping its alpha channel and bit depth (``read_image`` drops both)."""
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(p, "no such file" if not p.exists() else "not a file")
    try:
        arr, bits = _decode(p)
    except MemoryError:
        raise
    except Exception as exc:  # decoders of damaged files raise all kinds of errors
        raise ImageReadError(p, f"{type(exc).__name__}: {exc}") from exc
    c = arr.shape[2]
    alpha = np.ascontiguousarray(arr[:, :, c - 1]) if c in (2, 4) else None
    image = arr[:, :, :1] if c <= 2 else arr[:, :, :3]  # extra TIFF samples beyond 4 are dropped
    return DecodedImage(np.ascontiguousarray(image, dtype=np.float32), alpha, bits)


def _decode(p: Path) -> tuple[np.ndarray, int]:
    """Float H x W x C (alpha kept as the last channel) in display orientation, and the bit depth."""
    if p.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            return _to_float(tifffile.imread(p, key=0), planar_ok=True)
        except Exception:
            pass  # let Pillow try (and produce the error message)
    with Image.open(p) as im:
        rawmode = str(im.tile[0][3]) if im.tile else ""  # before getexif(), which may load
        orientation = int(im.getexif().get(0x0112, 1) or 1)
        if im.format == "PNG" and im.mode in ("RGB", "RGBA", "LA") and rawmode.endswith(";16B") \
                and not im.info.get("interlace"):  # 16-bit colour: Pillow would keep 8 bits
            arr, bits = _to_float(_png16_decode(p.read_bytes()))
        else:
            im.load()
            arr, bits = _to_float(np.asarray(_pil_plain(im)), pil_int=im.mode == "I")
    return _ORIENT.get(orientation, lambda a: a)(arr), bits


def _pil_plain(im: Image.Image) -> Image.Image:
    """Bring exotic Pillow modes to L / RGB / RGBA / I;16 / I / F."""
    if im.mode in ("P", "PA"):
        return im.convert("RGBA")
    if im.mode == "La":
        return im.convert("LA")
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    return im


def _to_float(a: np.ndarray, *, pil_int: bool = False, planar_ok: bool = False) -> tuple[np.ndarray, int]:
    """Scale by the integer type (Pillow's 32-bit "I" mode holds 16-bit data), make H x W x C (alpha
    and extra samples kept), and tell the bit depth (8, or 16 for deeper data)."""
    a = np.asarray(a)
    if a.ndim == 3 and planar_ok and a.shape[0] in (3, 4) and a.shape[2] > 4:
        a = a.transpose(1, 2, 0)  # planar TIFF
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"unsupported image array shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.float32), 8
    if a.dtype.kind in "ui":
        scale = 65535.0 if pil_int else float(np.iinfo(a.dtype).max)
        bits = 16 if pil_int or a.dtype.itemsize >= 2 else 8
        return np.clip(a.astype(np.float32) / scale, 0.0, 1.0), bits
    if a.dtype.kind == "f":
        return np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0), 16
    raise ValueError(f"unsupported pixel type {a.dtype}")


def _png16_decode(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG to a uint16 ``H x W x C`` array."""
    pos, idat, hdr = 8, [], None
    while pos + 12 <= len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + n], data[pos + 8 + n:pos + 12 + n]
        if len(crc) < 4 or zlib.crc32(tag + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"PNG chunk {tag!r} is truncated or fails its CRC")
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + n
    if hdr is None or not idat:
        raise ValueError("PNG without IHDR or IDAT")
    w, h, c = hdr[0], hdr[1], _PNG_CHANNELS[hdr[3]]
    bpp, stride = 2 * c, 2 * c * hdr[0]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    if raw.size != h * (stride + 1):
        raise ValueError(f"PNG data holds {raw.size} bytes, expected {h * (stride + 1)}")
    raw = raw.reshape(h, stride + 1)
    out = np.empty((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(h):
        kind, line = int(raw[y, 0]), raw[y, 1:]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum along the row, per byte position (uint8 wraps)
            cur = np.cumsum(line.reshape(w, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind in (3, 4):
            cur = _unfilter_slow(kind, line, prev, bpp)
        else:
            raise ValueError(f"bad PNG filter type {kind} in row {y}")
        out[y] = cur
        prev = out[y]
    return out.view(">u2").reshape(h, w, c).astype(np.uint16)


def _unfilter_slow(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters: sequential along the row."""
    cur, up = bytearray(line.tobytes()), prev.tobytes()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        if kind == 3:
            pred = (a + up[i]) >> 1
        else:
            b, c = up[i], (up[i - bpp] if i >= bpp else 0)
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (cur[i] + pred) & 255
    return np.frombuffer(bytes(cur), np.uint8)


def _png16_encode(a: np.ndarray) -> bytes:
    """Encode a uint16 ``H x W x C`` array (C = 1..4) as a 16-bit PNG (Sub filter on every row)."""
    h, w, c = a.shape
    bpp = 2 * c
    raw = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(h, w * bpp)
    filt = np.empty((h, w * bpp + 1), np.uint8)
    filt[:, 0] = 1
    filt[:, 1:bpp + 1] = raw[:, :bpp]
    filt[:, bpp + 1:] = raw[:, bpp:] - raw[:, :-bpp]

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    return (_PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(filt.tobytes(), 6))
            + chunk(b"IEND", b""))


def _as_hwc(array: Any) -> np.ndarray:
    """numpy H x W / H x W x C, or a torch tensor C x H x W / 1 x C x H x W, as H x W x C."""
    if hasattr(array, "detach"):  # torch.Tensor
        t = array.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        a = t.float().numpy()
        a = a.transpose(1, 2, 0) if a.ndim == 3 else a
    else:
        a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W x C image with C = 1, 3 or 4, got shape {a.shape}")
    return a


def to_uint8(array: Any) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (clipped, rounded to nearest); uint8 input passes through."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    return np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(array: Any) -> np.ndarray:
    """Float image in [0, 1] -> uint16 (clipped, rounded to nearest)."""
    return np.round(np.clip(np.asarray(array, np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)


def _encode(a: np.ndarray, ext: str, fmt: str, bits: int, quality: int) -> bytes:
    """The encoded file contents (built in memory so the file write itself is one step)."""
    if bits == 16 and ext == ".png":
        return _png16_encode(to_uint16(a))
    buf = io.BytesIO()
    if bits == 16:
        import tifffile

        tifffile.imwrite(buf, to_uint16(a)[:, :, 0] if a.shape[2] == 1 else to_uint16(a))
        return buf.getvalue()
    b = to_uint8(a)
    if fmt in ("JPEG", "BMP") and b.shape[2] == 4:
        b = b[:, :, :3]  # these formats have no alpha: drop it
    im = Image.fromarray(b[:, :, 0] if b.shape[2] == 1 else b)
    im.save(buf, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def write_image(path: PathLike, array: Any, bits: int = 8, *, overwrite: bool = True,
                quality: int = 95) -> Path:
    """Write a float image in [0, 1] (clipped, rounded) atomically; returns the path.

    ``array``: numpy ``H x W`` / ``H x W x C`` or a torch ``C x H x W`` tensor. ``bits=16`` is
    for PNG and TIFF only. The format follows the extension; ``quality`` is for JPEG/WebP.
    With ``overwrite=False`` an existing file raises FileExistsError. Missing parent folders
    are created. Non-finite values raise ValueError (nothing is written).
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ValueError(f"unknown image extension '{p.suffix}' for {p}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    if bits == 16 and ext not in (".png", ".tif", ".tiff"):
        raise ValueError(f"16-bit output needs .png or .tif, got {p.name}")
    a = _as_hwc(array)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"image for {p} contains NaN or infinite values")
    if not overwrite and p.exists():
        raise FileExistsError(f"refusing to overwrite {p}")
    data = _encode(a, ext, fmt, bits, quality)
    with atomic_path(p) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
    return p


def natural_key(name: str) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name)]


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly in ``folder`` (png jpg jpeg bmp tif tiff webp, any case).

    Sorted in natural order (``2.png`` before ``10.png``); hidden files (``.name``) are skipped.
    Raises FileNotFoundError / NotADirectoryError for a missing folder.
    """
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"image folder not found: {d}")
    if not d.is_dir():
        raise NotADirectoryError(f"not a folder: {d}")
    files = [p for p in d.iterdir()
             if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))
