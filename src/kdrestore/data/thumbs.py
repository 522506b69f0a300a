"""Small grey thumbnails of image files, for finding the same scene in two sets (:mod:`.leaks`).

Each file gives ``len(SCALES)`` grey thumbnails: the whole image and its central crops keeping
``SCALES[1:]`` of each side, every one squashed to a ``SIDE x SIDE`` square, band-passed and averaged
over ``POOL x POOL`` blocks to ``FEATURE x FEATURE`` values. A square squash commutes with
flips and 90-degree rotations, so the rotated and mirrored variants are array operations, not new decodes.
Each thumbnail is band-passed (Gaussian blur of ``BAND[0]`` pixels less one of ``BAND[1]``): the blur
forgives a pixel of misalignment (a crop between two scales), and removing the coarse shading keeps
smooth photos (skies, walls) from resembling each other. Thumbnails are stored zero-mean and unit-norm:
the dot product of two is their normalised correlation.

Thumbnails are cached per folder under :func:`cache_dir` (``$KDRESTORE_CACHE``, else
``~/.cache/kdrestore``) in one ``.npz`` file, each row keyed by file name, size and mtime (a changed
file is thumbnailed again), written atomically. A file that cannot be decoded is reported, never cached.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..fsutil import atomic_path
from .imageio import ImageReadError, read_image

SIDE = 32  # thumbnail side (pixels) the band-pass works on
POOL = 2  # then averaged over POOL x POOL blocks: the band-passed thumbnail holds little finer detail
FEATURE = SIDE // POOL  # the compared thumbnail is FEATURE x FEATURE (256 values): 4x cheaper to match
SCALES = (1.0, 0.97, 0.93, 0.87, 0.8)  # the share of each side kept: the whole image, then central crops
BAND = (1.0, 4.0)  # Gaussian sigmas (thumbnail pixels) of the band-pass
VERSION = 3  # bump when the thumbnail recipe changes: old cache files are then ignored


def cache_dir() -> Path:
    """``$KDRESTORE_CACHE/thumbs``, else ``~/.cache/kdrestore/thumbs``."""
    root = os.environ.get("KDRESTORE_CACHE") or Path.home() / ".cache" / "kdrestore"
    return Path(root) / "thumbs"


def _blur_matrix(sigma: float, n: int = SIDE) -> np.ndarray:
    """``n x n`` matrix of a 1-D Gaussian blur with edge replication (``B @ a @ B.T`` blurs an image)."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    m = np.zeros((n, n), np.float64)
    for i in range(n):
        for t, w in zip(range(-radius, radius + 1), taps):
            m[i, min(max(i + t, 0), n - 1)] += w
    return m


_BAND_PASS = (_blur_matrix(BAND[0]), _blur_matrix(BAND[1]))


def _feature(grey: np.ndarray) -> np.ndarray:
    """Band-passed, pooled, zero-mean, unit-norm flat ``FEATURE x FEATURE`` copy of a ``SIDE x SIDE`` grey
    thumbnail (a flat image gives all zeros: it correlates with nothing). Blur, band-pass and pooling
    commute with flips and 90-degree rotations, so the variants can be made from the result."""
    a = grey.astype(np.float64)
    fine, coarse = _BAND_PASS
    a = fine @ a @ fine.T - coarse @ a @ coarse.T
    a = a.reshape(FEATURE, POOL, FEATURE, POOL).mean(axis=(1, 3)).reshape(-1)
    a = a - a.mean()
    norm = float(np.sqrt((a * a).sum()))
    return (a / norm if norm > 1e-6 else np.zeros_like(a)).astype(np.float32)


def _grey(path: Path) -> Image.Image:
    """The file as an 8-bit grey Pillow image (JPEGs decoded at a reduced scale: far faster)."""
    with Image.open(path) as im:
        im.draft("L", (4 * SIDE, 4 * SIDE))  # JPEG only; a no-op for other formats
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # deep grey: scale to 8 bits ourselves
            a = np.asarray(im, dtype=np.float32)
            scale = 255.0 / 65535.0 if im.mode != "F" else 255.0
            return Image.fromarray(np.clip(a * scale, 0, 255).astype(np.uint8))
        return im.convert("L")


def thumbnail_set(path: str | os.PathLike[str]) -> np.ndarray:
    """``len(SCALES) x FEATURE*FEATURE`` float32: the whole image and its central crops (see :data:`SCALES`).

    Raises :class:`~kdrestore.data.imageio.ImageReadError` for a file that cannot be decoded.
    """
    p = Path(path)
    try:
        im = _grey(p)
    except Exception:  # Pillow cannot: try the project's reader (16-bit colour PNG, float TIFF), which names the error
        a = read_image(p, "gray")[:, :, 0]
        im = Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))
    w, h = im.size
    if w < 2 or h < 2:
        raise ImageReadError(p, f"image of {w}x{h} pixels is too small to compare")
    rows = []
    for scale in SCALES:
        cw, ch = w * scale, h * scale
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        rows.append(_feature(np.asarray(im.resize((SIDE, SIDE), Image.BILINEAR, box=box))))
    return np.stack(rows)


@dataclass
class Thumbnails:
    """Thumbnails of a list of files: ``paths[i]`` has ``scales[i, k]`` (``k``: :data:`SCALES`);
    ``failed``: the unreadable files with the reason; ``computed``: files decoded in this call."""

    paths: list[Path]
    scales: np.ndarray  # N x len(SCALES) x FEATURE*FEATURE float32
    failed: list[tuple[Path, str]] = field(default_factory=list)
    computed: int = 0

    @property
    def full(self) -> np.ndarray:
        """N x FEATURE*FEATURE: the whole images."""
        return self.scales[:, 0]


def _cache_file(folder: Path) -> Path:
    key = hashlib.sha1(f"{VERSION}/{SIDE}/{POOL}/{SCALES}/{BAND}/{folder.resolve()}".encode()).hexdigest()[:16]
    return cache_dir() / f"{folder.name[:40]}-{key}.npz"


def _load_cache(file: Path) -> dict[tuple[str, int, int], np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as z:
            names, sizes, mtimes, thumbs = z["names"], z["sizes"], z["mtimes"], z["thumbs"]
    except Exception:  # missing, damaged or of another layout: start again
        return {}
    return {(str(n), int(s), int(m)): thumbs[i] for i, (n, s, m) in enumerate(zip(names, sizes, mtimes))}


def _save_cache(file: Path, rows: dict[tuple[str, int, int], np.ndarray]) -> None:
    keys = sorted(rows)
    if not keys:
        return
    try:
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, names=np.array([k[0] for k in keys], dtype=str),
                         sizes=np.array([k[1] for k in keys], np.int64),
                         mtimes=np.array([k[2] for k in keys], np.int64),
                         thumbs=np.stack([rows[k] for k in keys]).astype(np.float16))
    except OSError:
        pass  # a read-only home or a full disk costs speed, not correctness


def thumbnails(paths: Sequence[str | os.PathLike[str]], *, cache: bool = True, workers: int = 2) -> Thumbnails:
    """Thumbnails of ``paths`` (any order, any folders), from the cache where the file is unchanged.

    Unreadable files are listed in ``failed`` with the reason and left out of ``paths``.
    """
    files = [Path(p) for p in paths]
    by_folder: dict[Path, list[int]] = {}
    for i, p in enumerate(files):
        by_folder.setdefault(p.parent, []).append(i)
    rows: list[np.ndarray | None] = [None] * len(files)  # per file: len(SCALES) x FEATURE*FEATURE
    failed: dict[int, str] = {}
    computed = 0
    for folder, idx in by_folder.items():
        cfile = _cache_file(folder)
        cached = _load_cache(cfile) if cache else {}
        keys: dict[int, tuple[str, int, int]] = {}
        todo = []
        for i in idx:
            try:
                st = files[i].stat()
            except OSError as exc:
                failed[i] = f"cannot read: {exc.strerror or exc}"
                continue
            keys[i] = (files[i].name, int(st.st_size), int(st.st_mtime_ns))
            if keys[i] in cached:
                rows[i] = cached[keys[i]].astype(np.float32)
            else:
                todo.append(i)
        if not todo:
            continue
        with ThreadPoolExecutor(max(1, workers)) as pool:  # Pillow decodes without holding the GIL
            results = list(pool.map(_try_thumb, [files[i] for i in todo]))
        for i, (thumb, err) in zip(todo, results):
            if thumb is None:
                failed[i] = err
            else:
                rows[i] = thumb
                cached[keys[i]] = thumb
                computed += 1
        if cache:
            live = {k for i, k in keys.items() if i not in failed}
            live_names = {k[0] for k in live}  # an older version of a file seen now is dropped
            _save_cache(cfile, {k: v for k, v in cached.items() if k in live or k[0] not in live_names})
    ok = [i for i in range(len(files)) if rows[i] is not None]
    stack = np.stack([rows[i] for i in ok]) if ok else np.zeros((0, len(SCALES), FEATURE * FEATURE), np.float32)
    return Thumbnails([files[i] for i in ok], stack, [(files[i], failed[i]) for i in sorted(failed)], computed)


def _try_thumb(path: Path) -> tuple[np.ndarray | None, str]:
    try:
        return thumbnail_set(path), ""
    except MemoryError:
        raise
    except Exception as exc:  # a damaged file: named and skipped by the caller
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        return None, str(reason)
