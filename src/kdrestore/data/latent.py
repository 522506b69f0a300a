"""The data source of data-free distillation: no images, only a degradation label and a seed per sample.

A ``latent`` data set (``data.train.kind: latent``) yields ``{'seed': int, 'params': {'degradation': label}}``;
the method's generator turns the seed into a latent code and degradation draws, and the label into the
degradation it synthesises (:mod:`kdrestore.distill.generator`). Labels cycle through the recipe's
``params.degradations`` (default: the task's own), so every epoch is balanced across them; the seed comes
from torch's generator, which :class:`~kdrestore.engine.datasets.KeyedDataset` seeds from
``(train.seed, epoch, index)``: every sample is a function of its key, with any worker count and after a resume.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import KdrestoreError

LABELS = ("haze", "rain", "noise")  # the degradations a generator can synthesise (kdrestore.distill.generator)
TASK_LABELS = {"dehaze": "haze", "derain": "rain", "denoise": "noise"}
DEFAULT_LENGTH = 1024  # samples per epoch when ``limit`` is not given (only the shuffling period)


def latent_labels(params: dict[str, Any], task: str, where: str = "data.train") -> list[str]:
    """The labels of a latent data set: ``params.degradations`` (a name or a list), else the task's."""
    value = params.get("degradations", TASK_LABELS.get(task))
    labels = [value] if isinstance(value, str) else list(value or [])
    unknown = [v for v in labels if v not in LABELS]
    if not labels or unknown:
        raise KdrestoreError(f"{where}.params.degradations: expected names from {list(LABELS)}, got {value!r}")
    return labels


class LatentDataset(Dataset):
    """``length`` samples, each a degradation label (cycling through ``labels``) and a random 62-bit seed."""

    def __init__(self, labels: list[str], length: int | None = None) -> None:
        if length is not None and length < 1:
            raise KdrestoreError(f"a latent data set needs limit >= 1, got {length}")
        self.labels, self.length = list(labels), length or DEFAULT_LENGTH

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed = int(torch.randint(0, 2 ** 62, ()))
        return {"seed": seed, "params": {"degradation": self.labels[index % len(self.labels)]}}
