"""``kdrestore report``: one self-contained HTML page about trained students.

For each run directory (or shipped student name): the student (best, else latest checkpoint, EMA
weights when saved), the teacher of its recipe's ``distill`` section, a grid of crops input /
teacher / student / ground truth on a few test images with per-crop PSNR, its final metrics, CPU
latency and loss curves; then PSNR-vs-latency and PSNR-vs-parameters plots of the students against
the peers of an optional bench JSON (``benchmarks/ship.py`` or ``benchmarks/peers.py`` output).
Images are inlined as base64 PNG and charts as SVG: no external file, script or library.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, distill_section
from ..errors import KdrestoreError
from ..evaluate.metrics import TASK_CONVENTIONS, psnr
from ..evaluate.profile import count_params, measure_latencies
from ..evaluate.runner import restore_tensor
from ..rundir import CONFIG_FILE, LOG_FILE, RunDir
from .report_parts import Crop, PlotEntry, Section, png_base64
from .ship import DEFAULT_TEST_SETS, bench_shape

NOT_LOSSES = {"step", "lr", "samples_per_s", "val_psnr", "val_ssim", "val_images", "diverged"}


def center_box(h: int, w: int, size: int) -> tuple[slice, slice]:
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return slice(y, y + ch), slice(x, x + cw)


def read_curves(run: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Loss terms and validation PSNR against the step, from ``log.csv`` (empty when missing)."""
    path = run / LOG_FILE
    if not path.is_file():
        return {}
    losses: dict[str, list[tuple[float, float]]] = {}
    val: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                step = float(row["step"])
            except (KeyError, TypeError, ValueError):
                continue
            for key, text in row.items():
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if key == "val_psnr":
                    val.setdefault("val PSNR", []).append((step, value))
                elif key not in NOT_LOSSES:
                    losses.setdefault(str(key), []).append((step, value))
    return {k: v for k, v in (("loss", losses), ("val", val)) if v}


def _teacher(cfg: RunConfig, peers: str | None) -> tuple[nn.Module | None, str | None, str]:
    """The first teacher of the recipe's distill section: ``(module, name, note)``; module None when absent."""
    from ..distill.teacher import load_teacher

    distill = distill_section(cfg)
    if not cfg.distill or not distill.teachers:
        return None, None, ""
    try:
        teacher = load_teacher(distill.teachers[0], peers or distill.peers)
    except (KdrestoreError, OSError, ValueError) as exc:
        return None, None, f"teacher not shown: {exc}"
    return teacher, teacher.name, ""


def _samples(task: str, channels: int, data: str | None, cfg: RunConfig | None, sigma: float,
             images: int) -> tuple[list[dict[str, Any]], str]:
    """A few test samples: the ``data`` folder if given, else the run's validation set."""
    from ..data.tasks import eval_dataset

    if data:
        ds, desc = eval_dataset(task, data, sigma=sigma, mode="gray" if channels == 1 else "rgb", limit=images)
    else:
        from ..engine.datasets import build_dataset

        dcfg = cfg.data.val if cfg is not None else None
        if dcfg is None or cfg is None:
            raise KdrestoreError("no validation set (data.val) to take images from: pass --data DIR "
                                 f"(a {task} test folder)")
        ds = build_dataset(dcfg, task, train=False, seed=cfg.train.seed)
        desc = f"validation set {dcfg.kind} {dcfg.path or ''}"
    n = min(images, len(ds))  # type: ignore[arg-type]
    return [ds[i] for i in range(n)], desc


def _sigma(cfg: RunConfig | None, given: float | None) -> float:
    if given is not None:
        return given
    value = cfg.data.train.params.get("sigma") if cfg is not None else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 25.0


def _data_for(task: str, data: dict[str, str]) -> str | None:
    return data.get(task) or data.get("")


def load_section(item: str, *, data: dict[str, str] | None = None, peers: str | None = None,
                 sigma: float | None = None, images: int = 3, crop: int = 128, latency: bool = True,
                 repeats: int = 7) -> Section:
    """Load the student (and teacher) of a run directory or shipped name and render its grid."""
    from ..deploy.loader import resolve, shipped_names

    data = data or {}
    run = Path(item)
    try:
        shipped = item in shipped_names()
        if not shipped and not run.is_dir():
            raise KdrestoreError("not a run directory (no such folder) nor a shipped model name "
                                 f"({', '.join(shipped_names()) or 'none shipped yet'})")
        rundir = None if shipped else RunDir(run)
        if rundir is not None and not rundir.is_run():
            raise KdrestoreError(f"a folder but not a run directory: no {CONFIG_FILE}")
        cfg = rundir.config() if rundir is not None else None
        spec = resolve(item)
        task = str(spec.task or (cfg.task if cfg is not None else "") or "")
        if task not in TASK_CONVENTIONS:
            raise KdrestoreError(f"unknown task {task!r} (expected {', '.join(TASK_CONVENTIONS)})")
        folder = _data_for(task, data)
        if folder is None and cfg is None:
            rel = (spec.card.get("bench") or {}).get("data") or DEFAULT_TEST_SETS.get((task, spec.channels))
            root = os.environ.get("KDRESTORE_DATA")
            folder = str(Path(root) / rel) if root and rel else None
            if folder is None:
                raise KdrestoreError("a shipped model needs --data DIR (or $KDRESTORE_DATA) for its test images")
        samples, desc = _samples(task, spec.channels, folder, cfg, _sigma(cfg, sigma), images)
        teacher, t_name, note = _teacher(cfg, peers) if cfg is not None else (None, None, "")
        final = (rundir.final_metrics() if rundir is not None else None) or {}
    except (KdrestoreError, OSError, ValueError) as exc:
        raise KdrestoreError(f"report: cannot use {item}: {exc}") from exc
    method = distill_section(cfg).method if cfg is not None and cfg.distill else "kd"
    name = str((cfg.name if cfg is not None else None) or spec.card.get("name") or Path(item).name)
    sec = Section(item, name, task, spec.name, spec.source, count_params(spec.model), desc, t_name,
                  [note] if note else [], final=final, curves=read_curves(run) if cfg is not None else {})
    if teacher is not None and method == "kddn":
        sec.notes.append("the KDDN teacher reconstructs the clean image: its column shows teacher(ground truth)")
    _render_grid(sec, spec.model, teacher, samples, crop, method == "kddn")
    if latency:
        fns = {"student": spec.model, **({"teacher": teacher} if teacher is not None and "teacher" in sec.image_psnr else {})}
        lat = measure_latencies(fns, bench_shape(spec.channels), repeats=repeats)
        sec.latency = {k: {"ms": v.median_ms, "mp_s": v.megapixels_per_s, "shape": list(v.shape)} for k, v in lat.items()}
    return sec


@torch.no_grad()
def _render_grid(sec: Section, model: nn.Module, teacher: nn.Module | None, samples: list[dict[str, Any]],
                 crop: int, teacher_on_target: bool) -> None:
    conv = TASK_CONVENTIONS[sec.task]
    sums: dict[str, list[float]] = {}
    for i, s in enumerate(samples):
        x, y = s["input"], s["target"]
        outs = {"input": x, "student": restore_tensor(model, x)}
        if teacher is not None:
            try:
                t = restore_tensor(teacher, y if teacher_on_target else x)
                why = "" if t.shape == y.shape else f"its output {tuple(t.shape)} does not fit the image {tuple(y.shape)}"
            except RuntimeError as exc:  # e.g. a gray teacher of a colour student
                why = str(exc).splitlines()[0][:200]
            if not why:
                outs["teacher"] = t
            elif not any(n.startswith("teacher not shown") for n in sec.notes):
                sec.notes.append(f"teacher not shown: {why}")
        box = center_box(y.shape[-2], y.shape[-1], crop)
        cells = []
        for label in ("input", "teacher", "student"):
            if label in outs:
                sums.setdefault(label, []).append(psnr(outs[label], y, conv))
                cells.append(Crop(label, png_base64(outs[label][:, box[0], box[1]]),
                                  psnr(outs[label][:, box[0], box[1]], y[:, box[0], box[1]], conv)))
        cells.append(Crop("ground truth", png_base64(y[:, box[0], box[1]])))
        sec.grid.append((str(s.get("name", i)), cells))
    sec.image_psnr = {k: float(np.mean(v)) for k, v in sums.items()}


def read_bench(path: str | os.PathLike[str]) -> list[PlotEntry]:
    """Plot entries from a ``benchmarks/ship.py`` JSON (students and peers, one run) or a
    ``benchmarks/peers.py`` JSON (peers; latency per image at the test images' size)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KdrestoreError(f"cannot read bench JSON {p}: {exc}") from exc
    out: dict[tuple[str, str], PlotEntry] = {}
    try:
        if isinstance(doc, dict) and doc.get("kind") == "kdrestore-ship-bench":
            for res in doc["results"]:
                for r in res["rows"]:
                    kind = "student" if r["role"] == "student" else "peer"
                    out.setdefault((r["name"], res["task"]), PlotEntry(
                        r["name"], kind, res["task"], float(r["psnr"]), int(r["params"]),
                        1e3 / r["mp_s"] if r["mp_s"] > 0 else None, str(r.get("data", res["test_set"])), p.name))
        elif isinstance(doc, list):
            for r in doc:
                h, w = r["macs_input_shape"][-2:] if r.get("macs_input_shape") else (0, 0)
                ms = r.get("ms_per_image_median")
                per_mp = ms / (h * w / 1e6) if ms and h and w else None
                out.setdefault((r["model"], r["task"]), PlotEntry(
                    r["model"], "peer", r["task"], float(r["psnr"]), int(r["params"]), per_mp, str(r["data"]), p.name))
        else:
            raise KeyError("kind")
    except (KeyError, TypeError, ValueError) as exc:
        raise KdrestoreError(f"{p} is neither a benchmarks/ship.py nor a benchmarks/peers.py JSON "
                             f"(missing or bad field {exc})") from exc
    return list(out.values())


def section_entry(sec: Section) -> PlotEntry | None:
    """The student of a section on the plots: validation PSNR of its final metrics, else the report images'."""
    value, data = sec.final.get("val_psnr"), "validation set (final_metrics.json)"
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        value, data = sec.image_psnr.get("student"), f"{len(sec.grid)} report image(s): {sec.data}"
    if value is None:
        return None
    lat = sec.latency.get("student")
    return PlotEntry(sec.name, "student", sec.task, float(value), sec.params,
                     1e3 / lat["mp_s"] if lat else None, data, sec.item)


def build_report(items: Sequence[str], output: str | os.PathLike[str], *, data: dict[str, str] | None = None,
                 bench: Sequence[str] = (), peers: str | None = None, sigma: float | None = None, images: int = 3,
                 crop: int = 128, latency: bool = True, repeats: int = 7, title: str = "kdrestore report",
                 photos: dict[str, str] | None = None, photo_limit: int = 6) -> Path:
    """Build the whole page in memory, then write it atomically (a failure leaves ``output`` untouched).

    ``photos``: task -> folder of real degraded photographs (no ground truth) for the gallery.
    """
    from ..fsutil import atomic_path
    from .report_gallery import build_gallery
    from .report_html import render_html

    if not items and not photos:
        raise KdrestoreError("report: give at least one run directory or shipped model name, or --photos TASK=DIR")
    entries = list({(e.name, e.task): e for b in reversed(bench) for e in read_bench(b)}.values())  # first file wins
    sections = [load_section(i, data=data, peers=peers, sigma=sigma, images=images, crop=crop,
                             latency=latency, repeats=repeats) for i in items]
    entries += [e for e in map(section_entry, sections) if e is not None]
    galleries = [build_gallery(task, folder, peers, photo_limit) for task, folder in (photos or {}).items()]
    html = render_html(title, sections, entries, list(bench), galleries)
    with atomic_path(output) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(output)
