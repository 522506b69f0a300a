"""Paired (degraded, clean) image folders as a torch Dataset, and a loader that skips bad files."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .imageio import ImageReadError, Mode, PathLike, read_image
from .pairing import PairingRule, find_pairs

CropSize = int | tuple[int, int] | None


def _crop_hw(crop: CropSize) -> tuple[int, int] | None:
    if crop is None:
        return None
    h, w = (crop, crop) if isinstance(crop, int) else crop
    if h < 1 or w < 1:
        raise ValueError(f"crop must be positive, got {crop!r}")
    return int(h), int(w)


def pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pad ``a`` (H x W x C) at the bottom/right to at least ``h x w``."""
    while a.shape[0] < h or a.shape[1] < w:  # one reflection adds at most size - 1
        ph = min(max(h - a.shape[0], 0), a.shape[0] - 1)
        pw = min(max(w - a.shape[1], 0), a.shape[1] - 1)
        if ph == 0 and pw == 0:  # a 1-pixel side cannot be reflected: repeat it
            pads = ((0, max(h - a.shape[0], 0)), (0, max(w - a.shape[1], 0)), (0, 0))
            return np.pad(a, pads, mode="edge")
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    return a


def center_crop(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """The central ``h x w`` window of ``a`` (offsets rounded down)."""
    top, left = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[top:top + h, left:left + w]


def random_window(arrays: Sequence[np.ndarray], crop: tuple[int, int], rng: Any = None
                  ) -> list[np.ndarray]:
    """The same random ``crop`` window of every array (reflect-padded first when too small).

    ``rng``: a numpy Generator, or None for torch's global generator (seeded per DataLoader
    worker, so ``torch.manual_seed`` makes training runs reproducible).
    """
    h, w = crop
    arrays = [pad_to(a, h, w) for a in arrays]
    H, W = arrays[0].shape[:2]
    if rng is None:
        top = int(torch.randint(0, H - h + 1, ()).item())
        left = int(torch.randint(0, W - w + 1, ()).item())
    else:
        top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    return [a[top:top + h, left:left + w] for a in arrays]


def dihedral(arrays: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """One of the 8 flip/rot90 transforms (``k`` in 0..7), applied to every array."""
    out = []
    for a in arrays:
        a = np.rot90(a, k % 4, axes=(0, 1))
        out.append(a[:, ::-1] if k >= 4 else a)
    return out


def context_views(arrays: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    """Whole ``H x W x C`` images as CoIC's encoder sees them: ``size x size`` (bilinear, antialiased),
    by the function the model itself uses (:func:`kdrestore.models.coic.context_view`)."""
    from ..models.coic import context_view

    return [context_view(to_tensor(a)[None], size)[0].numpy().transpose(1, 2, 0) for a in arrays]


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """H x W x C float array -> contiguous C x H x W float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))


class PairedDataset(Dataset):
    """Paired degraded/clean images: items are ``{'input', 'target'}`` C x H x W tensors + ``'name'``.

    ``root``: a folder with a known layout (see :func:`find_pairs`) or a
    ``(degraded_dir, clean_dir)`` pair. ``crop``: a random window (int or (h, w)), the same on
    both images, reflect-padded when the image is smaller. ``augment``: a random flip/rot90
    (same on both). ``limit``: keep the first ``limit`` pairs. Randomness uses torch's global
    generator. ``name`` is the degraded file's stem. ``context``: items also hold ``context`` and
    ``context_target``, the WHOLE pair resized to ``context x context`` (:func:`context_views`), under
    the crop's flip/rotation (CoIC's whole-image embedding, ``data.train.context``).

    Size mismatch: when input and target differ by a border (some SOTS releases pair a 620x460
    hazy image with a 640x480 GT that has a 10-px frame) the larger is center-cropped to the
    smaller; a difference above ``max_border`` pixels per side raises ValueError.

    Unreadable files raise :class:`ImageReadError`, or with ``skip_errors=True`` the item is
    ``None``, the error is kept in ``self.errors`` (name -> message; this process only) and
    :func:`collate_skip` drops it. :class:`SafeLoader` does the same across worker processes.
    """

    def __init__(self, root: PathLike | tuple[PathLike, PathLike] | list[tuple[PathLike, PathLike]],
                 rule: str | PairingRule = "auto",
                 mode: Mode = "rgb", crop: CropSize = None, augment: bool = False,
                 limit: int | None = None, *, skip_errors: bool = False, max_border: int = 32,
                 context: int | None = None) -> None:
        if isinstance(root, list):  # pairs already found: [(degraded, clean), ...]
            self.pairs = [(Path(d), Path(c)) for d, c in root]
        elif isinstance(root, tuple):
            self.pairs = find_pairs(root[0], root[1], rule=rule)
        else:
            self.pairs = find_pairs(root, rule=rule)
        if limit is not None:
            self.pairs = self.pairs[:limit]
        self.mode, self.crop, self.augment = mode, _crop_hw(crop), augment
        self.skip_errors, self.max_border, self.context = skip_errors, max_border, context
        self.errors: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, index: int) -> str:
        return self.pairs[index][0].stem

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The full (input, target) arrays of pair ``index``, border mismatch removed."""
        dpath, cpath = self.pairs[index]
        x, y = read_image(dpath, self.mode), read_image(cpath, self.mode)
        if x.shape[:2] != y.shape[:2]:
            h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
            border = max(abs(x.shape[0] - y.shape[0]), abs(x.shape[1] - y.shape[1])) / 2
            if border > self.max_border:
                raise ValueError(f"size mismatch beyond a border: {dpath.name} is "
                                 f"{x.shape[1]}x{x.shape[0]}, {cpath.name} is {y.shape[1]}x{y.shape[0]}")
            x, y = center_crop(x, h, w), center_crop(y, h, w)
        return x, y

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        try:
            x, y = self.load(index)
        except ImageReadError as exc:
            if not self.skip_errors:
                raise
            self.errors[self.name(index)] = str(exc)
            return None
        views = context_views([x, y], self.context) if self.context else []
        if self.crop is not None:
            x, y = random_window([x, y], self.crop)
        if self.augment:
            x, y, *views = dihedral([x, y, *views], int(torch.randint(0, 8, ()).item()))
        item = {"input": to_tensor(x), "target": to_tensor(y), "name": self.name(index)}
        if views:
            item["context"], item["context_target"] = to_tensor(views[0]), to_tensor(views[1])
        return item


@dataclass(frozen=True)
class Failed:
    """A sample that could not be loaded (what :class:`SafeLoader` yields in place of it)."""

    index: int
    path: str
    error: str


class _Guarded(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            item = self.dataset[index]
        except ImageReadError as exc:
            return Failed(index, str(exc.path), exc.reason)
        if item is None:  # a dataset with skip_errors=True
            name = self.dataset.name(index) if hasattr(self.dataset, "name") else str(index)
            return Failed(index, name, "unreadable (skipped by the dataset)")
        return item


def collate_skip(batch: list[Any]) -> dict[str, Any]:
    """``default_collate`` without the ``None`` / :class:`Failed` items; they go to ``'failed'``.

    A batch in which every item failed is ``{'failed': [...]}`` only.
    """
    failed = [b for b in batch if b is None or isinstance(b, Failed)]
    good = [b for b in batch if not (b is None or isinstance(b, Failed))]
    out: dict[str, Any] = default_collate(good) if good else {}
    out["failed"] = [f for f in failed if f is not None]
    return out


class SafeLoader:
    """Iterate a dataset in batches, skipping unreadable files and reporting them at the end.

    Works with any dataset whose items are dicts and whose reader raises ImageReadError (also
    in worker processes). After (or during) iteration ``failed`` lists :class:`Failed` records;
    ``summary()`` is a one-paragraph report, also issued as a warning at the end when
    ``warn=True``. Batches whose items all failed are not yielded.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, num_workers: int = 0,
                 shuffle: bool = False, warn: bool = True, **loader_kwargs: Any) -> None:
        self.dataset, self.warn = dataset, warn
        self.loader = DataLoader(_Guarded(dataset), batch_size=batch_size, shuffle=shuffle,
                                 num_workers=num_workers, collate_fn=collate_skip, **loader_kwargs)
        self.failed: list[Failed] = []
        self.seen = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.failed, self.seen = [], 0
        for batch in self.loader:
            self.failed.extend(batch.pop("failed"))
            if "input" in batch:
                self.seen += len(batch["input"])
                yield batch
        if self.failed and self.warn:
            warnings.warn(self.summary(), RuntimeWarning, stacklevel=2)

    def summary(self) -> str:
        if not self.failed:
            return f"all {self.seen} samples loaded"
        lines = [f"{len(self.failed)} of {self.seen + len(self.failed)} samples failed to load "
                 "and were skipped:"]
        lines += [f"  {f.path}: {f.error}" for f in self.failed]
        return "\n".join(lines)


def iter_pairs_safe(dataset: Dataset, batch_size: int = 1, num_workers: int = 0,
                    failed: list[Failed] | None = None) -> Iterable[dict[str, Any]]:
    """Generator over the good batches of ``dataset``; failures are appended to ``failed``."""
    loader = SafeLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    yield from loader
    if failed is not None:
        failed.extend(loader.failed)
