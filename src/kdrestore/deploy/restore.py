"""Restoring images with a trained model: the library behind ``kdrestore restore`` and ``kdrestore.load``.

>>> import kdrestore
>>> r = kdrestore.load("runs/dehaze-small")          # doctest: +SKIP
>>> clean = r.restore(hazy_uint8)                    # doctest: +SKIP  (uint8 in -> uint8 out)
>>> r.restore_files(["photos/"], "restored/")        # doctest: +SKIP

``__all__`` re-exports the batch helpers of :mod:`.batch` (``restore_files``, ``expand_inputs``, ...).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import KdrestoreError
from .batch import RestoreSummary, expand_inputs, output_names, read_source, restore_files
from .context import ModelContext, image_bytes_per_pixel, probe_context
from .loader import resolve
from .tiling import plan_tiles, restore_tiled, tile_for_budget

DEFAULT_MAX_PIXELS = None  # no pixel cap per model call by default: the memory budget decides
__all__ = ["Restorer", "TilePlan", "RestoreSummary", "default_memory_mb", "expand_inputs", "load", "load_default",
           "output_names", "read_source", "restore_files"]
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class Restorer:
    """A model ready to restore images: weights, task, device, tiling and backend (torch or onnx).

    Every image is mirrored at its borders by the model's receptive-field radius before the model sees
    it (:mod:`.context`), and cut into overlapping tiles only when ``max_memory_mb`` (default:
    :func:`default_memory_mb`), ``max_pixels`` (pixels per model call) or ``tile`` demand it; the
    plan of the last image is in ``last_plan``.

    Gray (1-channel) models refuse RGB images unless ``allow_color_conversion``, which restores the
    BT.601 luminance and keeps the chroma (``rgb + (Y_restored - Y)``), or hand them to ``color``, a
    colour restorer, when one is set. Colour models take gray images as three equal channels and
    return the luminance. Alpha passes through untouched.
    """

    def __init__(self, model: nn.Module | None, *, channels: int | None = None, task: str | None = None,
                 device: str = "cpu", tile: int | None = None, overlap: int = 32,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, backend: str = "torch",
                 onnx_path: str | os.PathLike[str] | None = None, allow_color_conversion: bool = False,
                 name: str = "", source: str = "", max_memory_mb: float | None = None) -> None:
        if backend not in ("torch", "onnx"):
            raise KdrestoreError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.model, self.task, self.backend, self.name, self.source = model, task, backend, name, source
        self.device = torch.device(device if backend == "torch" else "cpu")
        self.tile, self.overlap, self.max_pixels = tile, overlap, max_pixels
        if max_memory_mb is not None and max_memory_mb <= 0:
            raise KdrestoreError(f"the memory budget must be positive, got {max_memory_mb} MB")
        self.max_memory_mb = float(max_memory_mb) if max_memory_mb else default_memory_mb()
        self._context: ModelContext | None = None
        self.card_name = ""  # the shipped name (e.g. "denoise-gray-blind") when loaded by it
        self.card: dict[str, Any] = {}  # and its model card
        self.last_plan: TilePlan | None = None
        self.allow_color_conversion = allow_color_conversion
        self.color: Restorer | None = None  # restores the RGB images of a gray model, if set
        if backend == "torch":
            if model is None:
                raise KdrestoreError("the torch backend needs a model")
            from .export import model_multiple

            self.model = model.to(self.device).eval()
            self.channels, self.multiple, self._fn = int(channels or 3), model_multiple(model), self.model
            return
        from .export import OnnxModel, export_onnx

        if onnx_path is None:  # export the torch model into a folder removed with this object
            if model is None or channels is None:
                raise KdrestoreError("the onnx backend needs an ONNX file, or a model and its channels")
            tmp = tempfile.mkdtemp(prefix="kdrestore-onnx-")
            weakref.finalize(self, shutil.rmtree, tmp, True)
            onnx_path = export_onnx(model.eval(), Path(tmp) / "model.onnx", channels)
        runner = OnnxModel(onnx_path)
        if channels is not None and runner.channels != channels:
            raise KdrestoreError(f"{onnx_path} takes {runner.channels} channel(s), the model {channels}")
        self.channels, self.multiple, self._fn = runner.channels, runner.multiple, runner

    def __repr__(self) -> str:
        colour = f", colour images: {self.color!r}" if self.color is not None else ""
        label = self.name or "model"
        if self.card_name and self.card_name != self.name:
            label = f"{self.card_name} ({label})"
        return (f"Restorer({label}, task={self.task}, channels={self.channels}, "
                f"backend={self.backend}, device={self.device}, max_memory_mb={self.max_memory_mb:.0f}, "
                f"tile={self.tile}, overlap={self.overlap}{colour})")

    @property
    def context(self) -> ModelContext:
        """Receptive field, global context and memory per pixel of the model (measured once)."""
        if self._context is None:
            self._context = probe_context(self._fn, self.channels, self.multiple, device=self.device)
        return self._context

    def plan(self, h: int, w: int) -> TilePlan:
        """How an ``h x w`` image is restored: border margin, tiles and why."""
        ctx, m = self.context, self.multiple
        margin = ctx.margin(m)
        budget = self.max_memory_mb * 2**20 - image_bytes_per_pixel(self.channels, self.channels) * h * w
        pixels = int(budget / ctx.bytes_per_pixel) if budget > 0 else 0
        if self.max_pixels is not None:
            pixels = min(pixels, int(self.max_pixels))
        need = (h + 2 * margin) * (w + 2 * margin)
        if self.tile is None and pixels >= need:
            return TilePlan(None, self.overlap, margin, 1, need, "")
        if self.tile is not None:
            tile, reason = int(self.tile), f"--tile {self.tile}"
        else:
            floor = max(2 * margin, 64)
            if pixels < (floor + 2 * margin) ** 2:
                least = (image_bytes_per_pixel(self.channels, self.channels) * h * w
                         + (floor + 2 * margin) ** 2 * ctx.bytes_per_pixel) / 2**20
                raise KdrestoreError(
                    f"a memory budget of {self.max_memory_mb:.0f} MB is too small for a {w}x{h} image with "
                    f"{self.name or 'this model'}: it needs at least {least:.0f} MB (--max-memory-mb)")
            tile = tile_for_budget(pixels, 0, m, margin)
            reason = (f"memory budget {self.max_memory_mb:.0f} MB" if self.max_pixels is None or pixels < self.max_pixels
                      else f"at most {self.max_pixels:,} pixels per call")
        overlap = min(ctx.overlap(self.overlap, tile), max(0, tile - m))
        n = len(plan_tiles(h, w, tile, overlap, None, m))
        if n == 1:
            return TilePlan(None, self.overlap, margin, 1, need, "")
        return TilePlan(tile, overlap, margin, n, max(pixels, 1), reason, ctx.wide)

    @torch.no_grad()
    def restore_tensor(self, x: Tensor) -> Tensor:
        """``B x C x H x W`` [0, 1] batch (C = the model's channels) -> restored batch, unclipped."""
        plan = self.last_plan = self.plan(*x.shape[-2:])
        x = x.to(self.device, torch.float32)
        pinned = getattr(self._fn, "pinned", None)  # CoIC: one embedding of the whole image (a no-op otherwise)
        if pinned is None:
            return restore_tiled(self._fn, x, plan.tile, plan.overlap, plan.pixels, multiple=self.multiple,
                                 margin=plan.margin, wide=plan.wide)
        out = []
        for i in range(x.shape[0]):  # every tile (and the mirrored border) sees the whole image's embedding
            with pinned(x[i:i + 1]):
                out.append(restore_tiled(self._fn, x[i:i + 1], plan.tile, plan.overlap, plan.pixels,
                                         multiple=self.multiple, margin=plan.margin, wide=plan.wide))
        return torch.cat(out)

    def restore_float(self, img: np.ndarray) -> np.ndarray:
        """``H x W x C`` float image (C = 1 or 3, no alpha) -> restored float32, clipped to [0, 1]."""
        img = np.asarray(img, np.float32)
        if not np.isfinite(img).all():
            raise KdrestoreError("the image contains NaN or infinite values")
        c = img.shape[2]
        if c == 3 and self.channels == 1:
            if self.color is not None:
                return self.color.restore_float(img)
            if not self.allow_color_conversion:
                raise KdrestoreError(f"{self.name or 'the model'} restores gray images and this image is RGB; "
                                     "allow color conversion (--allow-color-conversion) to restore its luminance")
            y = img @ _LUMA
            return np.clip(img + (self._run(y[:, :, None])[:, :, 0] - y)[:, :, None], 0.0, 1.0)
        if c == 1 and self.channels == 3:
            return np.clip(self._run(np.repeat(img, 3, axis=2)) @ _LUMA, 0.0, 1.0)[:, :, None]
        if c != self.channels:
            raise KdrestoreError(f"cannot restore a {c}-channel image with a {self.channels}-channel model")
        return np.clip(self._run(img), 0.0, 1.0)

    def _run(self, img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        return self.restore_tensor(x)[0].float().cpu().numpy().transpose(1, 2, 0)

    def restore(self, array: Any) -> np.ndarray:
        """Restore an ``H x W`` or ``H x W x C`` image (C = 1, 2, 3 or 4; the last of 2/4 is alpha).

        uint8 in -> uint8 out, uint16 -> uint16, float ([0, 1]) -> float32 (clipped); the layout is kept.
        """
        a = np.asarray(array)
        if a.dtype.kind == "f":
            scale = 1.0
        elif a.dtype in _SCALE:
            scale = _SCALE[a.dtype]
        else:
            raise KdrestoreError(f"unsupported pixel type {a.dtype}: use uint8, uint16 or float in [0, 1]")
        hwc = a[:, :, None] if a.ndim == 2 else a
        if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4):
            raise KdrestoreError(f"expected an H x W or H x W x C image (C = 1..4), got shape {a.shape}")
        n = 3 if hwc.shape[2] >= 3 else 1
        out = self.restore_float(hwc[:, :, :n].astype(np.float32) / np.float32(scale))
        if scale != 1.0:
            out = np.round(out.astype(np.float64) * scale).astype(a.dtype)
        else:
            out = out.astype(np.float32)
        if hwc.shape[2] > n:
            out = np.concatenate([out, hwc[:, :, n:].astype(out.dtype)], axis=2)
        return out[:, :, 0] if a.ndim == 2 else out

    def restore_files(self, inputs: Iterable[str | os.PathLike[str]], outdir: str | os.PathLike[str],
                      progress: bool = True) -> RestoreSummary:
        return restore_files(self, inputs, outdir, progress=progress)



def default_memory_mb() -> float:
    """Half the memory available now (``/proc/meminfo``), between 1 and 16 GB; 4 GB where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(min(16384.0, max(1024.0, int(line.split()[1]) / 1024 / 2)))
    except (OSError, ValueError, IndexError):
        pass
    return 4096.0


@dataclass(frozen=True)
class TilePlan:
    """How one image is restored: ``tile`` None means whole (one model call)."""

    tile: int | None
    overlap: int
    margin: int  # reflect padding at the image borders
    tiles: int
    pixels: int  # pixels per model call the budget allows (batches tiles up to it)
    reason: str = ""  # what demanded tiles
    wide: bool = False  # the model has a wide receptive field or global context

    def describe(self) -> str:
        if self.tile is None:
            return "whole image"
        text = f"{self.tiles} tiles of {self.tile} px, overlap {self.overlap} px ({self.reason})"
        if self.wide:
            text += "; the model reads a wide context, so tiles may differ slightly in tone: raise --max-memory-mb to avoid tiling"
        return text


def load(name_or_path: str | os.PathLike[str], device: str = "cpu", *,
         weights: str | os.PathLike[str] | None = None, peers: str | os.PathLike[str] | None = None,
         task: str | None = None, tile: int | None = None, overlap: int = 32,
         max_pixels: int | None = DEFAULT_MAX_PIXELS, backend: str = "torch",
         onnx: str | os.PathLike[str] | None = None, allow_color_conversion: bool = False,
         random_init: bool = False, max_memory_mb: float | None = None) -> Restorer:
    """A :class:`Restorer` for a shipped pretrained name, a run directory, an ``.onnx`` file or a
    registry model name (with ``weights``, or its published file under ``peers``/``$KDRESTORE_PEERS``).

    ``max_memory_mb``: memory budget of one image's restoration (image buffers and model calls, not
    the Python/torch runtime itself); tiles are cut only when it demands them. Default:
    :func:`default_memory_mb`.

    ``kdrestore.load("dehaze-small").restore(img)``.
    """
    kw = dict(task=task, device=device, tile=tile, overlap=overlap, max_pixels=max_pixels,
              allow_color_conversion=allow_color_conversion, max_memory_mb=max_memory_mb)
    text = os.fspath(name_or_path)
    if text.lower().endswith(".onnx") and Path(text).is_file():
        return Restorer(None, backend="onnx", onnx_path=text, name=Path(text).stem, source=text, **kw)  # type: ignore[arg-type]
    spec = resolve(name_or_path, weights, peers, device if backend == "torch" else "cpu", random_init=random_init)
    kw["task"] = task or spec.task
    restorer = Restorer(spec.model, channels=spec.channels, backend=backend, onnx_path=onnx, name=spec.name,
                        source=spec.source, **kw)  # type: ignore[arg-type]
    restorer.card_name, restorer.card = (text if spec.card else ""), spec.card
    return restorer


def load_default(task: str, device: str = "cpu", *, rain: str | None = None, **kw: Any) -> Restorer:
    """The shipped student(s) of a task (``kdrestore restore --task T``): for denoising the gray student
    restores gray images and the colour student colour ones (the gray one restores their luminance
    if no colour student is shipped); for deraining ``rain`` picks the light- or heavy-rain student
    (default heavy: ``derain-small``). ``kw`` as for :func:`load`."""
    from .loader import DEFAULT_COLOR_MODELS, DEFAULT_MODELS, DEFAULT_RAIN, RAIN_MODELS, shipped_names

    if task not in DEFAULT_MODELS:
        raise KdrestoreError(f"no shipped student for task {task!r}; tasks: {', '.join(sorted(DEFAULT_MODELS))}")
    name = DEFAULT_MODELS[task]
    if rain is not None and task != "derain":
        raise KdrestoreError(f"--rain picks the deraining student; it means nothing for task {task!r}")
    if task == "derain":
        if (rain or DEFAULT_RAIN) not in RAIN_MODELS:
            raise KdrestoreError(f"rain must be one of {', '.join(RAIN_MODELS)}, got {rain!r}")
        name = RAIN_MODELS[rain or DEFAULT_RAIN]
        if name not in shipped_names():
            raise KdrestoreError(f"the {rain or DEFAULT_RAIN}-rain student '{name}' is not shipped in this version")
    restorer = load(name, device, task=task, allow_color_conversion=True, **kw)
    color = DEFAULT_COLOR_MODELS.get(task)
    if restorer.channels == 1 and color in shipped_names():
        restorer.color = load(color, device, task=task, **kw)
        restorer.source = f"{restorer.source}; colour images: {restorer.color.source}"
    return restorer
