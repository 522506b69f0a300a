"""Restoring many files: inputs (files, folders, globs) -> ``<stem>.png`` in an output folder.

The batch goes on past a bad file: unreadable or failed images are recorded with their reason, and
the summary says what was written, skipped and failed, and how long it took.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from ..data.imageio import IMAGE_EXTENSIONS, list_images, natural_key, read_image_full, write_image
from ..errors import KdrestoreError



class FloatRestorer(Protocol):
    """What a batch needs of a model (a :class:`~kdrestore.deploy.restore.Restorer`): float image in, out."""

    def restore_float(self, img: np.ndarray) -> np.ndarray: ...


@dataclass
class RestoreSummary:
    """What a batch did: written outputs, inputs skipped before reading, files that failed, notes."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason): unreadable or failed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason): not found, no image
    notes: list[str] = field(default_factory=list)  # format changes, tiling
    seconds: float = 0.0

    def line(self, outdir: str | os.PathLike[str]) -> str:
        """The one-line summary: written, skipped, failed, time."""
        rate = ""
        if self.seconds > 0 and self.written:
            per_s = len(self.written) / self.seconds
            rate = f", {per_s:.2f} img/s" if per_s >= 0.1 else f", {self.seconds / len(self.written):.1f} s/img"
        parts = [f"wrote {len(self.written)} image(s) to {outdir} in {self.seconds:.1f} s{rate}"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} input(s)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return "; ".join(parts)


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their images, natural order) and globs -> image files, plus unmatched inputs."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for item in inputs:
        text, path = os.fspath(item), Path(item)
        if path.is_dir():
            found = list_images(path)
            why = "a folder with no images (png jpg jpeg bmp tif tiff webp)"
        elif path.is_file():
            found = [path] if path.suffix.lower() in IMAGE_EXTENSIONS else []
            why = f"not an image file name (expected {' '.join(sorted(IMAGE_EXTENSIONS))})"
        elif glob.has_magic(text):
            found = sorted((Path(m) for m in glob.glob(text) if Path(m).is_file()
                            and Path(m).suffix.lower() in IMAGE_EXTENSIONS), key=lambda p: natural_key(str(p)))
            why = "no image matches"
        else:
            found, why = [], "no such file or folder"
        if not found:
            missing.append((text, why))
        files += found
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values()), missing


def output_names(files: list[Path]) -> list[str]:
    """``<stem>.png`` per input; stems shared by several inputs get ``_<ext>`` then ``_<n>`` added."""
    names = [f.stem + ".png" for f in files]
    stems = [n.lower() for n in names]
    names = [f"{f.stem}_{f.suffix.lstrip('.')}.png" if stems.count(n.lower()) > 1 else n for f, n in zip(files, names)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen[n.lower()] = seen.get(n.lower(), 0) + 1
        out.append(n if k == 1 else f"{n[:-4]}_{k}.png")
    return out


def read_source(path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """An image for restoration: float colour ``H x W x C`` (display orientation), alpha or None, bit depth."""
    decoded = read_image_full(path)
    return decoded.image, decoded.alpha, decoded.bits


def check_outdir(files: list[Path], outdir: str | os.PathLike[str]) -> None:
    """Refuse an output folder that holds an input (inputs are never overwritten) or is a file."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise KdrestoreError(f"output {out} is a file, not a folder")
    clash = next((f for f in files if f.parent.resolve() == out.resolve()), None)
    if clash is not None:
        raise KdrestoreError(f"output folder {out} holds the input {clash.name}; choose another output "
                             "folder (inputs are never overwritten)")


def format_note(files: list[Path]) -> str | None:
    """Say that non-PNG inputs are written as PNG (lossless, keeps 16 bit and alpha)."""
    others = sorted({f.suffix.lower() for f in files if f.suffix.lower() != ".png"})
    if not others:
        return None
    n = sum(f.suffix.lower() != ".png" for f in files)
    return (f"{n} {'/'.join(e.lstrip('.').upper() for e in others)} input(s) are written as PNG "
            "(lossless: no second round of compression, 16 bit and alpha kept)")


def restore_files(restorer: FloatRestorer, inputs: Iterable[str | os.PathLike[str]], outdir: str | os.PathLike[str],
                  progress: bool = True, files: list[Path] | None = None) -> RestoreSummary:
    """Restore every image of ``inputs`` (files, folders, globs) into ``outdir`` as ``<stem>.png``.

    16-bit inputs give 16-bit PNGs; alpha is kept (gray + alpha is written as RGBA). Writes are
    atomic. An ``outdir`` that is the folder of an input is refused, so inputs are never
    overwritten. Unreadable images and failed restorations are reported and the batch goes on.
    ``files``: the already expanded inputs (then ``inputs`` are only reported as skipped).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    if files is None:
        files, skipped = expand_inputs(inputs)
    else:
        skipped = list(inputs)  # type: ignore[arg-type]
    check_outdir(files, outdir)
    out = Path(outdir)
    summary = RestoreSummary(skipped=skipped)
    note = format_note(files)
    if note:
        summary.notes.append(note)
    plans: dict[str, list[str]] = {}
    bar = tqdm(list(zip(files, output_names(files))), disable=not progress, unit="img", desc="restore",
               dynamic_ncols=True)
    for src, name in bar:
        bar.set_postfix_str(src.name[-30:], refresh=False)
        try:
            img, alpha, bits = read_source(src)
            result = restorer.restore_float(img)
            if alpha is not None:
                rgb = np.repeat(result, 3, axis=2) if result.shape[2] == 1 else result
                result = np.concatenate([rgb, alpha[:, :, None]], axis=2)
            summary.written.append(write_image(out / name, result, bits=bits))
            plan = getattr(restorer, "last_plan", None)
            if plan is not None and plan.tile is not None:
                plans.setdefault(plan.describe(), []).append(src.name)
        except (KdrestoreError, OSError, ValueError, RuntimeError, MemoryError) as exc:
            summary.failed.append((str(src), str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    bar.close()
    for text, names in plans.items():
        summary.notes.append(f"tiled {len(names)} image(s) ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): "
                             + text)
    summary.seconds = time.perf_counter() - start
    return summary
