"""The real-photo gallery of ``kdrestore report --photos TASK=DIR``: real degraded photographs with no
ground truth, each restored by every shipped student of the task and by its teacher (the peer named
``competes_with`` in its card, when the peer weights are available).

There is no ground truth, so there is no PSNR. No-reference quality scores (BRISQUE, NIQE) would need
a package that kdrestore does not depend on; the gallery shows the pictures alone and says so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import KdrestoreError
from .report_parts import png_base64

DISPLAY = 320  # longest side of a gallery picture in the page (the image is restored at full size)


@dataclass
class GalleryRow:
    image: str
    cells: list[tuple[str, str]] = field(default_factory=list)  # (label, base64 PNG)


@dataclass
class Gallery:
    task: str
    folder: str
    columns: list[str] = field(default_factory=list)  # "input", then the models
    rows: list[GalleryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _thumbnail(img: np.ndarray) -> str:
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()
    h, w = t.shape[-2:]
    scale = DISPLAY / max(h, w)
    if scale < 1:
        t = torch.nn.functional.interpolate(t[None], size=(max(1, round(h * scale)), max(1, round(w * scale))),
                                            mode="area")[0]
    return png_base64(t)


def gallery_models(task: str, peers: str | None) -> tuple[list[tuple[str, Callable[[np.ndarray], np.ndarray]]], list[str]]:
    """``(label, restore_float)`` of every shipped student of ``task`` and of each one's teacher."""
    from ..models.shipped import PRETRAINED_DIR, read_card, shipped_names
    from ..deploy.restore import load
    from ..models.registry import default_weights

    models: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = []
    notes: list[str] = []
    teachers: list[str] = []
    for name in shipped_names():
        card = read_card(PRETRAINED_DIR / name)
        if card["task"] != task:
            continue
        r = load(name, allow_color_conversion=True)
        models.append((name, r.restore_float))
        peer = card.get("competes_with")
        peer = peer[0] if isinstance(peer, list) else peer
        if isinstance(peer, str) and peer not in teachers:
            teachers.append(peer)
    for peer in teachers:
        path = default_weights(peer, peers)
        if path is None or not path.is_file():
            notes.append(f"teacher {peer} not shown: its published weights are not under --peers / $KDRESTORE_PEERS")
            continue
        r = load(peer, peers=peers, allow_color_conversion=True)
        models.append((f"{peer} (teacher)", r.restore_float))
    return models, notes


def build_gallery(task: str, folder: str | os.PathLike[str], peers: str | None = None, limit: int = 6) -> Gallery:
    """Restore the first ``limit`` images of ``folder`` with the task's students and teachers."""
    from ..deploy.batch import expand_inputs, read_source

    if task not in ("denoise", "derain", "dehaze"):
        raise KdrestoreError(f"--photos: unknown task {task!r} (give denoise=DIR, derain=DIR or dehaze=DIR)")
    files, missing = expand_inputs([folder])
    if not files:
        raise KdrestoreError(f"--photos {task}={folder}: {missing[0][1] if missing else 'no images'}")
    models, notes = gallery_models(task, peers)
    if not models:
        raise KdrestoreError(f"--photos: no shipped student for task {task}")
    gallery = Gallery(task, str(folder), ["input", *(label for label, _ in models)], notes=notes)
    gallery.notes.append("real photographs without ground truth: no PSNR; no no-reference score either "
                         "(no maintained no-reference metric package is a kdrestore dependency), so judge by eye")
    for path in files[:limit]:
        try:
            img, _alpha, _bits = read_source(path)
        except (KdrestoreError, OSError, ValueError) as exc:
            gallery.notes.append(f"{path.name} skipped: {exc}")
            continue
        row = GalleryRow(path.name, [("input", _thumbnail(img))])
        for label, restore in models:
            try:
                out: Any = restore(img)
                row.cells.append((label, _thumbnail(np.asarray(out))))
            except (KdrestoreError, RuntimeError, ValueError) as exc:
                gallery.notes.append(f"{label} on {path.name}: {str(exc).splitlines()[0][:200]}")
        gallery.rows.append(row)
    if not gallery.rows:
        raise KdrestoreError(f"--photos {task}={folder}: no image could be read")
    return gallery


def gallery_html(gallery: Gallery) -> str:
    from html import escape

    head = "".join(f"<th>{escape(c)}</th>" for c in ["", *gallery.columns])
    rows = []
    for row in gallery.rows:
        cells = "".join(f"<td><img class='photo' alt='{escape(label)}' src='data:image/png;base64,{png}'></td>"
                        for label, png in row.cells)
        rows.append(f"<tr><td class='cap'>{escape(row.image)}</td>{cells}</tr>")
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in gallery.notes)
    return (f"<section class='gallery' data-task='{escape(gallery.task)}'><h3>{escape(gallery.task)}: "
            f"{escape(Path(gallery.folder).name)} ({len(gallery.rows)} photo(s), restored at full size, shown at "
            f"most {DISPLAY} px)</h3>{notes}<table class='grid'><tr>{head}</tr>{''.join(rows)}</table></section>")
