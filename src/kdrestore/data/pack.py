"""Data packs: the clean training images of a few folders as uint8 arrays in one ``.npz`` file.

A pack lets a training job travel to a machine without the data folders (a lent GPU): it holds, for
each source folder (named as under the data root, e.g. ``train/BSD400-gray``), the decoded images in
the recipe's mode (gray or RGB), optionally scaled down or limited in count, with a JSON manifest
saying exactly that. Recipes read it with ``data.train.pack: FILE`` (and ``data.val.pack``); a
recipe whose ``path`` names a folder the pack was not built from is refused. Packs are read with
``allow_pickle=False``: only arrays and the manifest's bytes are ever loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import KdrestoreError
from ..fsutil import atomic_path
from .imageio import list_images, read_image

PACK_FORMAT = "kdrestore-pack/1"


@dataclass
class PackSource:
    """One folder to pack: ``folder`` relative to the data root; ``scale`` < 1 shrinks every image
    (area averaging), ``limit`` keeps the first images in sorted order."""

    folder: str
    mode: Literal["rgb", "gray"] = "rgb"
    scale: float = 1.0
    limit: int | None = None


def _names_digest(names: list[str]) -> str:
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


def _shrink(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img
    from PIL import Image

    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    chans = [np.asarray(Image.fromarray(img[:, :, c]).resize(size, Image.Resampling.BOX)) for c in range(img.shape[2])]
    return np.stack(chans, axis=2)


def build_pack(root: str | os.PathLike[str], sources: list[PackSource], out: str | os.PathLike[str]) -> dict:
    """Write the pack ``out`` (atomically) from ``sources`` under ``root``; returns its manifest."""
    arrays: dict[str, np.ndarray] = {}
    manifest: dict = {"format": PACK_FORMAT, "sources": {}}
    for j, src in enumerate(sources):
        paths = list_images(Path(root) / src.folder)
        paths = paths[:src.limit] if src.limit is not None else paths
        if not paths:
            raise KdrestoreError(f"pack: no images in {Path(root) / src.folder}")
        names = [p.stem for p in paths]
        for k, p in enumerate(paths):
            img = np.clip(np.rint(read_image(p, src.mode) * 255), 0, 255).astype(np.uint8)
            arrays[f"s{j}_{k}"] = _shrink(img, src.scale)
        manifest["sources"][src.folder.strip("/")] = {
            "index": j, "mode": src.mode, "scale": src.scale, "limit": src.limit, "count": len(names),
            "names": names, "names_sha1": _names_digest(names)}
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return manifest


def source_key(path: str | os.PathLike[str]) -> str:
    """The pack key of a recipe path: its last two components (``.../train/BSD400-gray`` -> ``train/BSD400-gray``)."""
    parts = Path(path).parts
    return "/".join(parts[-2:])


def read_pack_source(pack: str | os.PathLike[str], path: str | os.PathLike[str], mode: str,
                     where: str = "data.train") -> tuple[list[str], list[np.ndarray]]:
    """``(names, uint8 H x W x C arrays)`` of the folder ``path`` names, from the pack file ``pack``.

    Refuses (naming ``where``) a pack without that folder, or built in another mode.
    """
    p = Path(pack)
    if not p.is_file():
        raise KdrestoreError(f"{where}.pack: file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            manifest = json.loads(bytes(z["manifest"]).decode())
            if manifest.get("format") != PACK_FORMAT:
                raise KdrestoreError(f"{where}.pack: {p} is not a {PACK_FORMAT} file")
            key = source_key(path)
            entry = manifest["sources"].get(key)
            if entry is None:
                raise KdrestoreError(f"{where}.pack: {p} was built from {sorted(manifest['sources'])}, not from "
                                     f"'{key}' that {where}.path names")
            if entry["mode"] != mode:
                raise KdrestoreError(f"{where}.pack: '{key}' is packed as {entry['mode']}, the recipe reads {mode}")
            if _names_digest(entry["names"]) != entry["names_sha1"]:
                raise KdrestoreError(f"{where}.pack: {p}: the manifest of '{key}' is inconsistent")
            arrays = [z[f"s{entry['index']}_{k}"] for k in range(entry["count"])]
    except (OSError, ValueError, KeyError) as exc:
        raise KdrestoreError(f"{where}.pack: cannot read {p}: {exc}") from exc
    return list(entry["names"]), arrays
