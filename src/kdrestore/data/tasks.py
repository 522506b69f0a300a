"""The evaluation data of each task: synthetic noise on clean images, or paired folders."""
from __future__ import annotations

import os
from typing import Any, Iterator

from torch.utils.data import Dataset

from ..errors import KdrestoreError
from .imageio import ImageReadError, Mode, list_images
from .paired import PairedDataset
from .synth import SynthDataset


def eval_dataset(task: str, data: str | os.PathLike[str], *, sigma: float = 25.0, mode: Mode = "rgb",
                 seed: int = 0, rule: str = "auto", limit: int | None = None,
                 holdout: int | None = None) -> tuple[Dataset, str]:
    """The test set of ``task`` in ``data`` and a description of it.

    denoise: AWGN of ``sigma`` (0-255) added in float to each clean image, not clipped, image ``i``
    seeded with ``(seed, i)``; derain/dehaze: degraded/clean pairs found by ``rule``. ``holdout``: only
    the last ``holdout`` images (pairs) of the folder, the held-out validation part of a training set.
    """
    from .holdout import holdout_split

    if not os.path.isdir(data):
        raise KdrestoreError(f"data folder not found: {os.fspath(data)}")
    held = f", last {holdout} (held out)" if holdout else ""
    if task == "denoise":
        paths = list_images(data)
        if not paths:
            raise KdrestoreError(f"no images found in {os.fspath(data)}")
        ds: Dataset = SynthDataset(holdout_split(paths, holdout, "val", "holdout") if holdout else data, "awgn",
                                   {"sigma": float(sigma)}, mode=mode, limit=limit, seed=seed, fixed=True)
        return ds, f"{os.fspath(data)}{held} + AWGN sigma={sigma:g} (seed {seed})"
    if task in ("derain", "dehaze"):
        if holdout:
            from .pairing import find_pairs

            pairs = holdout_split(find_pairs(data, rule=rule), holdout, "val", "holdout")
            return PairedDataset(pairs, mode=mode, limit=limit), f"{os.fspath(data)} (pairs: {rule}{held})"
        return PairedDataset(data, rule=rule, mode=mode, limit=limit), f"{os.fspath(data)} (pairs: {rule})"
    raise ValueError(f"unknown task {task!r}; expected denoise, derain or dehaze")


def iter_samples(dataset: Dataset) -> Iterator[dict[str, Any] | ImageReadError]:
    """Every sample in order; an unreadable file is yielded as its error so a run can go on."""
    for i in range(len(dataset)):  # type: ignore[arg-type]
        try:
            yield dataset[i]
        except ImageReadError as exc:
            yield exc


def eval_samples(task: str, data: str | os.PathLike[str], *, sigma: float = 25.0, mode: Mode = "rgb",
                 seed: int = 0, rule: str = "auto", limit: int | None = None, holdout: int | None = None
                 ) -> tuple[Iterator[dict[str, Any] | ImageReadError], int, str]:
    """``(samples, count, description)`` for :func:`kdrestore.evaluate.runner.evaluate`."""
    ds, description = eval_dataset(task, data, sigma=sigma, mode=mode, seed=seed, rule=rule, limit=limit,
                                   holdout=holdout)
    return iter_samples(ds), len(ds), description  # type: ignore[arg-type]
