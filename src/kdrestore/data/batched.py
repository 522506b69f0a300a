"""The batched, device-resident pipeline: training images held once as uint8 on the training device;
random crops, the 8 flips/rotations (and the degradation) made for a whole batch in torch.

This is the fast path for training data (``pipeline: batched`` in a recipe), in three forms:

* :class:`BatchedSynth` (``kind: synth``): clean images degraded on the fly. It draws from the same
  distributions as :class:`~.synth.SynthDataset` (crop windows uniform over each image, reflect-padded
  when an image is smaller than the crop; one of 8 dihedral transforms; the degradation's parameters as
  :mod:`kdrestore.degrade.batched` documents);
* the same with the bank's depth maps (``kind: nyu-haze``): RESIDE-ITS haze from measured depth, as
  :class:`~.nyu.NYUHazeDataset` (depth rounded to 8 bits in file units, then scaled per image);
* :class:`BatchedPairs` (``kind: paired``): degraded/clean pairs held side by side in one bank, the same
  window and transform on both, as :class:`~.paired.PairedDataset`.

Two differences a user may notice: images are drawn uniformly with replacement instead of in epoch
permutations, and every batch is a function of ``(seed, step, micro-batch, process)`` only, so a resumed
run continues with exactly the batches it would have seen. The same code runs on CPU and CUDA.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..degrade.batched import degrade_batch


@dataclass
class ImageBank:
    """Clean images (and optional depth maps) packed as one padded uint8 tensor on a device.

    ``images``: ``N x C x Hmax x Wmax`` uint8; ``sizes``: ``N x 2`` (h, w) of each image's valid
    region (top-left aligned); ``depth``: ``N x 1 x Hmax x Wmax`` float16 or None; ``names`` the stems;
    ``depth_scale``: ``N`` factors a crop's depth is multiplied by (NYU: depth kept in its 8-bit file units,
    scaled to metres or to the scene's maximum per image), or None.
    """

    images: Tensor
    sizes: Tensor
    names: list[str]
    depth: Tensor | None = None
    depth_scale: Tensor | None = None

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], names: Sequence[str], *, min_size: int = 1,
                    depths: Sequence[np.ndarray] | None = None, depth_scales: Sequence[float] | None = None,
                    device: torch.device | str = "cpu") -> ImageBank:
        """``arrays``: H x W x C images, uint8 or float in [0, 1]; images smaller than ``min_size`` are
        reflect-padded up to it (as the per-sample crop does)."""
        if not arrays:
            raise ValueError("an image bank needs at least one image")
        imgs = [_pad_min(_as_uint8(a), min_size) for a in arrays]
        c = imgs[0].shape[2]
        if any(i.shape[2] != c for i in imgs):
            raise ValueError("all images of a bank need the same number of channels")
        hmax, wmax = max(i.shape[0] for i in imgs), max(i.shape[1] for i in imgs)
        packed = torch.zeros(len(imgs), c, hmax, wmax, dtype=torch.uint8)
        for k, im in enumerate(imgs):
            packed[k, :, :im.shape[0], :im.shape[1]] = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
        sizes = torch.tensor([i.shape[:2] for i in imgs], dtype=torch.long)
        dpacked = None
        if depths is not None:
            dpacked = torch.zeros(len(imgs), 1, hmax, wmax, dtype=torch.float16)
            for k, (d, im) in enumerate(zip(depths, imgs)):
                d = _pad_min(np.asarray(d, np.float32)[:, :, None] if np.ndim(d) == 2 else np.asarray(d, np.float32),
                             min_size)
                if d.shape[:2] != im.shape[:2]:
                    raise ValueError(f"depth of {names[k]} is {d.shape[:2]}, its image {im.shape[:2]}")
                dpacked[k, 0, :d.shape[0], :d.shape[1]] = torch.from_numpy(d[:, :, 0])
        dev = torch.device(device)
        scales = None if depth_scales is None else torch.tensor(list(depth_scales), dtype=torch.float32, device=dev)
        return cls(packed.to(dev), sizes.to(dev), list(names), None if dpacked is None else dpacked.to(dev), scales)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def nbytes(self) -> int:
        return self.images.numel() + (self.depth.numel() * 2 if self.depth is not None else 0)


def _as_uint8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a = a[:, :, None] if a.ndim == 2 else a
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _pad_min(a: np.ndarray, size: int) -> np.ndarray:
    ph, pw = max(0, size - a.shape[0]), max(0, size - a.shape[1])
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(a.shape[:2]) > 1 else "edge")
    return a


def step_generator(device: torch.device, seed: int, step: int, micro: int = 0, rank: int = 0) -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, step, micro, rank)`` (no host synchronisation)."""
    g = torch.Generator(device=device)
    g.manual_seed(zlib.crc32(f"{seed}/{step}/{micro}/{rank}".encode()))
    return g


def dihedral_batch(x: Tensor, k: Tensor) -> Tensor:
    """Apply transform ``k[i]`` (0..7: rot90 ``k % 4`` times, then a left-right flip when ``k >= 4``,
    as :func:`~.paired.dihedral`) to square sample ``x[i]``; one pass per transform present."""
    out = torch.empty_like(x)
    for t in range(8):
        sel = k == t
        y = torch.rot90(x, t % 4, dims=(2, 3))
        y = y.flip(3) if t >= 4 else y
        out = torch.where(sel.view(-1, 1, 1, 1), y, out)
    return out.contiguous()  # torch.where keeps rot90's transposed strides, which slow convolutions down


class _BankCrops:
    """Random crop windows of an :class:`ImageBank`, gathered and transformed for a whole batch."""

    def __init__(self, bank: ImageBank, *, crop: int = 64, augment: bool = True) -> None:
        if crop < 1:
            raise ValueError(f"crop must be >= 1, got {crop}")
        if int(bank.sizes.min()) < crop:
            raise ValueError(f"an image of the bank is smaller than the crop {crop}: build it with min_size=crop")
        self.bank, self.crop, self.augment = bank, crop, augment
        self._r = torch.arange(crop, device=bank.images.device)

    @property
    def device(self) -> torch.device:
        return self.bank.images.device

    def windows(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(image index, top, left)`` of ``n`` crop windows drawn uniformly."""
        idx = torch.randint(0, len(self.bank), (n,), generator=g, device=self.device)
        hw = self.bank.sizes[idx]
        u = torch.rand(n, 2, generator=g, device=self.device)
        corner = (u * (hw - self.crop + 1).float()).long().clamp_min(0)
        corner = torch.minimum(corner, hw - self.crop)
        return idx, corner[:, 0], corner[:, 1]

    def _gather(self, stack: Tensor, idx: Tensor, top: Tensor, left: Tensor) -> Tensor:
        rows = (top[:, None] + self._r[None])[:, None, :, None]
        cols = (left[:, None] + self._r[None])[:, None, None, :]
        ch = torch.arange(stack.shape[1], device=self.device)[None, :, None, None]
        return stack[idx[:, None, None, None], ch, rows, cols]

    def crops(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``n`` crops of the bank's images in [0, 1] (and of its depth, when it has one), each under one
        of the 8 flips/rotations when augmenting."""
        idx, top, left = self.windows(n, g)
        images = self._gather(self.bank.images, idx, top, left).float() / 255.0
        depth = self._gather(self.bank.depth, idx, top, left).float() if self.bank.depth is not None else None
        if depth is not None and self.bank.depth_scale is not None:
            depth = depth * self.bank.depth_scale[idx].view(-1, 1, 1, 1)
        if self.augment:
            k = torch.randint(0, 8, (n,), generator=g, device=self.device)
            images = dihedral_batch(images, k)
            depth = dihedral_batch(depth, k) if depth is not None else None
        return images, depth

    def example(self) -> dict[str, Any]:
        """One sample (``C x H x W``), as a data set's ``[0]``, for a method's set-up."""
        b = self.batch(1, step_generator(self.device, 0, -1))
        return {"input": b["input"][0], "target": b["target"][0], "sigma": b["sigma"][0]}

    def batch(self, n: int, g: torch.Generator) -> dict[str, Any]:
        raise NotImplementedError


class BatchedSynth(_BankCrops):
    """Whole synthetic training batches from an :class:`ImageBank` (module doc); the bank's depth maps,
    when it has them, replace the synthetic depth prior of haze."""

    def __init__(self, bank: ImageBank, degradation: str, params: Mapping[str, Any] | None = None, *,
                 crop: int = 64, augment: bool = True) -> None:
        super().__init__(bank, crop=crop, augment=augment)
        self.degradation, self.params = degradation, dict(params or {})

    def batch(self, n: int, g: torch.Generator) -> dict[str, Any]:
        """``{'input', 'target', 'sigma', 'degradation', 'params'}`` for ``n`` fresh samples."""
        clean, depth = self.crops(n, g)
        degraded, params = degrade_batch(self.degradation, clean, g, self.params, depth)
        sigma = params.get("sigma", torch.full((n,), float("nan"), device=self.device))
        return {"input": degraded.contiguous(), "target": clean, "sigma": sigma,
                "degradation": [self.degradation] * n, "params": params}


class BatchedPairs(_BankCrops):
    """Whole batches of degraded/clean pairs: the bank holds each pair as one image of ``2 C`` channels
    (degraded first), so one window and one transform serve both (:func:`pair_bank`)."""

    def batch(self, n: int, g: torch.Generator) -> dict[str, Any]:
        """``{'input', 'target', 'sigma' (NaN: unknown), 'degradation' (''), 'params'}`` for ``n`` samples."""
        both, _ = self.crops(n, g)
        c = both.shape[1] // 2
        return {"input": both[:, :c].contiguous(), "target": both[:, c:].contiguous(),
                "sigma": torch.full((n,), float("nan"), device=self.device), "degradation": [""] * n, "params": {}}


def pair_bank(pairs: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str], *, min_size: int = 1,
              device: torch.device | str = "cpu") -> ImageBank:
    """An :class:`ImageBank` of ``(degraded, clean)`` pairs of equal size, each stacked on channels."""
    for (x, y), name in zip(pairs, names):
        if np.shape(x) != np.shape(y):
            raise ValueError(f"pair {name}: degraded {np.shape(x)} and clean {np.shape(y)} differ in size")
    return ImageBank.from_arrays([np.concatenate([_as_uint8(x), _as_uint8(y)], axis=2) for x, y in pairs], names,
                                 min_size=min_size, device=device)

