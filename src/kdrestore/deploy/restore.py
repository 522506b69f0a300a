"""Restoring images with a trained model: the library behind ``kdrestore restore`` and ``kdrestore.load``.

>>> import kdrestore
>>> r = kdrestore.load("runs/dehaze-small")          # doctest: +SKIP
>>> clean = r.restore(hazy_uint8)                    # doctest: +SKIP  (uint8 in -> uint8 out)
>>> r.restore_files(["photos/"], "restored/")        # doctest: +SKIP
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..data.imageio import IMAGE_EXTENSIONS, list_images, natural_key, read_image_full, write_image
from ..errors import KdrestoreError
from .loader import resolve
from .tiling import restore_tiled

DEFAULT_MAX_PIXELS = 1 << 20  # pixels per model call before tiling (about 1 megapixel)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class Restorer:
    """A model ready to restore images: weights, task, device, tiling and backend (torch or onnx).

    Gray (1-channel) models refuse RGB images unless ``allow_color_conversion``, which restores the
    BT.601 luminance and keeps the chroma (``rgb + (Y_restored - Y)``), or hand them to ``color``, a
    colour restorer, when one is set. Colour models take gray images as three equal channels and
    return the luminance. Alpha passes through untouched.
    """

    def __init__(self, model: nn.Module | None, *, channels: int | None = None, task: str | None = None,
                 device: str = "cpu", tile: int | None = None, overlap: int = 32,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, backend: str = "torch",
                 onnx_path: str | os.PathLike[str] | None = None, allow_color_conversion: bool = False,
                 name: str = "", source: str = "") -> None:
        if backend not in ("torch", "onnx"):
            raise KdrestoreError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.model, self.task, self.backend, self.name, self.source = model, task, backend, name, source
        self.device = torch.device(device if backend == "torch" else "cpu")
        self.tile, self.overlap, self.max_pixels = tile, overlap, max_pixels
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
        return (f"Restorer({self.name or 'model'}, task={self.task}, channels={self.channels}, "
                f"backend={self.backend}, device={self.device}, tile={self.tile}, overlap={self.overlap})")

    @torch.no_grad()
    def restore_tensor(self, x: Tensor) -> Tensor:
        """``B x C x H x W`` [0, 1] batch (C = the model's channels) -> restored batch, unclipped."""
        return restore_tiled(self._fn, x.to(self.device, torch.float32), self.tile, self.overlap,
                             self.max_pixels, multiple=self.multiple)

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


@dataclass
class RestoreSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their images, natural order) and globs -> image files, plus unmatched inputs."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for item in inputs:
        text, path = os.fspath(item), Path(item)
        if path.is_dir():
            found = list_images(path)
        elif path.is_file():
            found = [path]
        elif glob.has_magic(text):
            found = sorted((Path(m) for m in glob.glob(text) if Path(m).is_file()
                            and Path(m).suffix.lower() in IMAGE_EXTENSIONS), key=lambda p: natural_key(str(p)))
        else:
            found = []
        if not found:
            missing.append((text, "no such file or folder" if not glob.has_magic(text) else "no image matches"))
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


def restore_files(restorer: Restorer, inputs: Iterable[str | os.PathLike[str]], outdir: str | os.PathLike[str],
                  progress: bool = True) -> RestoreSummary:
    """Restore every image of ``inputs`` (files, folders, globs) into ``outdir`` as ``<stem>.png``.

    16-bit inputs give 16-bit PNGs; alpha is kept (gray + alpha is written as RGBA). Writes are
    atomic. An ``outdir`` that is the folder of an input is refused, so inputs are never
    overwritten. Unreadable images and failed restorations are reported and the batch goes on.
    """
    from tqdm import tqdm

    files, failed = expand_inputs(inputs)
    out = Path(outdir)
    clash = next((f for f in files if f.parent.resolve() == out.resolve()), None)
    if clash is not None:
        raise KdrestoreError(f"output folder {out} holds the input {clash.name}; choose another output "
                             "folder (inputs are never overwritten)")
    summary = RestoreSummary(failed=failed)
    for src, name in tqdm(list(zip(files, output_names(files))), disable=not progress, unit="img",
                          desc="restore"):
        try:
            img, alpha, bits = read_source(src)
            result = restorer.restore_float(img)
            if alpha is not None:
                rgb = np.repeat(result, 3, axis=2) if result.shape[2] == 1 else result
                result = np.concatenate([rgb, alpha[:, :, None]], axis=2)
            summary.written.append(write_image(out / name, result, bits=bits))
        except (KdrestoreError, OSError, ValueError, RuntimeError) as exc:
            summary.failed.append((str(src), str(exc)))
    return summary


def load(name_or_path: str | os.PathLike[str], device: str = "cpu", *,
         weights: str | os.PathLike[str] | None = None, peers: str | os.PathLike[str] | None = None,
         task: str | None = None, tile: int | None = None, overlap: int = 32,
         max_pixels: int | None = DEFAULT_MAX_PIXELS, backend: str = "torch",
         onnx: str | os.PathLike[str] | None = None, allow_color_conversion: bool = False,
         random_init: bool = False) -> Restorer:
    """A :class:`Restorer` for a shipped pretrained name, a run directory, an ``.onnx`` file or a
    registry model name (with ``weights``, or its published file under ``peers``/``$KDRESTORE_PEERS``).

    ``kdrestore.load("dehaze-small").restore(img)``.
    """
    kw = dict(task=task, device=device, tile=tile, overlap=overlap, max_pixels=max_pixels,
              allow_color_conversion=allow_color_conversion)
    text = os.fspath(name_or_path)
    if text.lower().endswith(".onnx") and Path(text).is_file():
        return Restorer(None, backend="onnx", onnx_path=text, name=Path(text).stem, source=text, **kw)  # type: ignore[arg-type]
    spec = resolve(name_or_path, weights, peers, device if backend == "torch" else "cpu", random_init=random_init)
    kw["task"] = task or spec.task
    return Restorer(spec.model, channels=spec.channels, backend=backend, onnx_path=onnx, name=spec.name,
                    source=spec.source, **kw)  # type: ignore[arg-type]


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
