"""Clean images + on-the-fly synthetic degradation (:func:`kdrestore.degrade.degrade`) as a Dataset."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .imageio import ImageReadError, Mode, PathLike, list_images, read_image
from .paired import CropSize, _crop_hw, context_views, dihedral, random_window, to_tensor

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
Source = PathLike | np.ndarray | tuple[str, np.ndarray]


def as_mode(arr: np.ndarray, mode: Mode | None) -> np.ndarray:
    """A float32 H x W x C copy of an in-memory image with 3 (``rgb``) or 1 (``gray``) channels."""
    a = np.asarray(arr, np.float32)
    a = a[:, :, None] if a.ndim == 2 else a[:, :, :3]
    if mode == "gray" and a.shape[2] == 3:
        a = (a @ _LUMA)[:, :, None]
    elif mode == "rgb" and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def _scalars(params: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar parameters (numbers, bools, strings; None -> nan), so batches collate."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None and k == "seed":
            continue  # a Generator was passed: the key is (seed, index[, epoch])
        if v is None:
            out[k] = math.nan
        elif isinstance(v, (bool, int, float, str, np.number, np.bool_)):
            out[k] = v.item() if isinstance(v, (np.number, np.bool_)) else v
    return out


class SynthDataset(Dataset):
    """Clean images degraded on the fly; items are ``{'input', 'target', 'name', 'params'}``.

    ``clean``: a folder, or a sequence of paths, arrays (H x W [x C] in [0, 1]) or
    ``(name, array)`` pairs. ``degradation``/``params``: passed to
    ``kdrestore.degrade.degrade(degradation, clean, seed=rng, **params)``; a ``(lo, hi)`` value
    is drawn per sample by the degradation. ``per_image``: extra params by image name (e.g.
    ``{'motorcycle_left': {'depth': d}}``); H x W arrays among them follow the crop and augment.
    ``params`` in an item holds the scalar values actually used (arrays and lists left out).

    Order per item: load the clean image, crop (random window, reflect-padded when the image is
    smaller), augment (one of 8 flips/rot90), then degrade, so rain keeps its fall direction
    and depth maps stay aligned. With ``context`` (CoIC's whole-image embedding) the WHOLE image is
    degraded first, then cropped and augmented; items also hold ``context`` / ``context_target``,
    the whole degraded and clean images resized to ``context x context``
    (:func:`~.paired.context_views`) under the crop's flip/rotation. The degraded input is not
    clipped (noise is added in float, the denoising test protocol); the target is the clean crop.

    Seeding (all randomness of item ``i`` comes from one numpy Generator):

    * ``fixed=True`` (evaluation): key ``(seed, i)``: every epoch and every run sees the same
      image; with no crop/augment it draws as ``kdrestore degrade`` of the folder with that seed;
    * ``fixed=False`` after ``set_epoch(e)`` (training): key ``(seed, e, i)``: new draws each
      epoch, reproducible from ``seed`` whatever the worker count or the sampling order (call
      ``set_epoch`` before each epoch's DataLoader iteration, without persistent workers);
    * ``fixed=False`` without ``set_epoch``: key ``(seed, i, r)`` with ``r`` drawn from torch's
      global generator: fresh on every access, reproducible under ``torch.manual_seed``.
    """

    def __init__(self, clean: PathLike | Sequence[Source], degradation: str,
                 params: Mapping[str, Any] | None = None, mode: Mode = "rgb",
                 crop: CropSize = None, augment: bool = False, limit: int | None = None,
                 seed: int = 0, fixed: bool = True, *,
                 per_image: Mapping[str, Mapping[str, Any]] | None = None,
                 cache: bool = False, skip_errors: bool = False, context: int | None = None) -> None:
        if isinstance(clean, (str, Path)):
            sources: list[Any] = list(list_images(clean))
            if not sources:
                raise FileNotFoundError(f"no images found in {clean}")
        else:
            sources = list(clean)
        self.items: list[tuple[str, Any]] = [self._named(i, s) for i, s in enumerate(sources)]
        if limit is not None:
            self.items = self.items[:limit]
        self.degradation, self.params = degradation, dict(params or {})
        self.mode, self.crop, self.augment = mode, _crop_hw(crop), augment
        self.seed, self.fixed, self.epoch = int(seed), fixed, None
        self.per_image = {k: dict(v) for k, v in (per_image or {}).items()}
        self.cache, self.skip_errors, self.context = cache, skip_errors, context
        self.errors: dict[str, str] = {}
        self._cache: dict[int, np.ndarray] = {}

    @staticmethod
    def _named(i: int, s: Any) -> tuple[str, Any]:
        if isinstance(s, (str, Path)):
            return Path(s).stem, Path(s)
        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str):
            return s[0], s[1]
        return f"{i:04d}", s

    def __len__(self) -> int:
        return len(self.items)

    def name(self, index: int) -> str:
        return self.items[index][0]

    def set_epoch(self, epoch: int) -> None:
        """Select the training epoch (``fixed=False``): item ``i`` then uses key ``(seed, epoch, i)``."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The Generator that drives crop, augment and degradation of item ``index``."""
        if self.fixed:
            key = [self.seed, index]
        elif self.epoch is not None:
            key = [self.seed, self.epoch, index]
        else:
            key = [self.seed, index, int(torch.randint(0, 2**62, ()).item())]
        return np.random.default_rng(key)

    def clean_image(self, index: int) -> np.ndarray:
        """The full clean image of item ``index`` (H x W x C float32)."""
        if index in self._cache:
            return self._cache[index]
        src = self.items[index][1]
        img = read_image(src, self.mode) if isinstance(src, Path) else as_mode(src, self.mode)
        if self.cache:
            self._cache[index] = img
        return img

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        from ..degrade import degrade

        name = self.name(index)
        try:
            clean = self.clean_image(index)
        except ImageReadError as exc:
            if not self.skip_errors:
                raise
            self.errors[name] = str(exc)
            return None
        rng = self.rng(index)
        extra = dict(self.per_image.get(name, {}))
        spatial = [k for k, v in extra.items()
                   if isinstance(v, np.ndarray) and v.shape[:2] == clean.shape[:2]]
        arrays = [clean] + [np.asarray(extra[k], np.float32).reshape(clean.shape[:2] + (-1,))
                            for k in spatial]
        if self.context:
            return self._with_context(name, clean, arrays, spatial, extra, rng)
        if self.crop is not None:
            arrays = random_window(arrays, self.crop, rng)
        if self.augment:
            arrays = dihedral(arrays, int(rng.integers(0, 8)))
        clean = np.ascontiguousarray(arrays[0])
        for k, a in zip(spatial, arrays[1:]):
            extra[k] = np.ascontiguousarray(a[:, :, 0] if a.shape[2] == 1 else a)
        out = degrade(self.degradation, clean, seed=rng, **{**self.params, **extra})
        return {"input": to_tensor(out.degraded.reshape(clean.shape)), "target": to_tensor(clean),
                "name": name, "params": _scalars(out.params)}

    def _with_context(self, name: str, clean: np.ndarray, arrays: list[np.ndarray], spatial: list[str],
                      extra: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Degrade the whole image, then crop and augment it with its ``context`` views."""
        from ..degrade import degrade

        for k, a in zip(spatial, arrays[1:]):
            extra[k] = a[:, :, 0] if a.shape[2] == 1 else a
        out = degrade(self.degradation, clean, seed=rng, **{**self.params, **extra})
        pair = [np.asarray(out.degraded, np.float32).reshape(clean.shape), clean]
        views = context_views(pair, int(self.context or 0))
        if self.crop is not None:
            pair = random_window(pair, self.crop, rng)
        if self.augment:
            *pair, view_in, view_clean = dihedral([*pair, *views], int(rng.integers(0, 8)))
            views = [view_in, view_clean]
        return {"input": to_tensor(pair[0]), "target": to_tensor(pair[1]), "name": name,
                "params": _scalars(out.params),
                "context": to_tensor(views[0]), "context_target": to_tensor(views[1])}
