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
                 seed: int = 0, rule: str = "auto", limit: int | None = None) -> tuple[Dataset, str]:
    """The test set of ``task`` in ``data`` and a description of it.

    denoise: AWGN of ``sigma`` (0-255) added in float to each clean image, not clipped, image ``i``
    seeded with ``(seed, i)``; derain/dehaze: degraded/clean pairs found by ``rule``.
    """
    if not os.path.isdir(data):
        raise KdrestoreError(f"data folder not found: {os.fspath(data)}")
    if task == "denoise":
        if not list_images(data):
            raise KdrestoreError(f"no images found in {os.fspath(data)}")
        ds: Dataset = SynthDataset(data, "awgn", {"sigma": float(sigma)}, mode=mode, limit=limit, seed=seed, fixed=True)
        return ds, f"{os.fspath(data)} + AWGN sigma={sigma:g} (seed {seed})"
    if task in ("derain", "dehaze"):
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
                 seed: int = 0, rule: str = "auto", limit: int | None = None
                 ) -> tuple[Iterator[dict[str, Any] | ImageReadError], int, str]:
    """``(samples, count, description)`` for :func:`kdrestore.evaluate.runner.evaluate`."""
    ds, description = eval_dataset(task, data, sigma=sigma, mode=mode, seed=seed, rule=rule, limit=limit)
    return iter_samples(ds), len(ds), description  # type: ignore[arg-type]
