"""Write a synthetically degraded copy of a folder of clean images (``kdrestore degrade``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import KdrestoreError
from ..fsutil import atomic_write_json


def degrade_folder(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    degradation: str,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    mode: str = "rgb",
    progress: bool = True,
) -> dict[str, Any]:
    """Degrade every image of ``input_dir`` into ``output_dir`` (never the same folder).

    Image ``i`` (sorted by name) uses the seed ``(seed, i)``, so a rerun writes identical files.
    The parameters drawn for each image go to ``output_dir/params.json``. Unreadable images are
    reported in the returned ``failed`` list and the batch goes on.
    """
    from ..degrade import degrade
    from .imageio import list_images, read_image, write_image
    from .streaks import resolve_streaks

    src, dst = Path(input_dir), Path(output_dir)
    if not src.is_dir():
        raise KdrestoreError(f"input folder not found: {src}")
    if dst.resolve() == src.resolve():
        raise KdrestoreError(f"output folder {dst} is the input folder: inputs are never overwritten")
    files = list_images(src)
    if not files:
        raise KdrestoreError(f"no images found in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"degradation": degradation, "seed": seed, "params": params or {}, "images": {}}
    params = resolve_streaks(degradation, params or {}, "train", "--param")  # rain-streaks: its layer bank
    failed: list[tuple[str, str]] = []
    for i, path in enumerate(tqdm(files, desc=f"degrade {degradation}", disable=not progress, leave=False)):
        try:
            clean = read_image(path, mode=mode)
        except OSError as exc:
            failed.append((path.name, str(exc)))
            continue
        result = degrade(degradation, clean, seed=np.random.default_rng([seed, i]), **params)
        out = dst / (path.stem + ".png")
        write_image(out, result.degraded, bits=16 if path.suffix.lower() in (".tif", ".tiff") else 8)
        record["images"][out.name] = result.params
    atomic_write_json(dst / "params.json", record)
    return {"written": len(record["images"]), "failed": failed}

