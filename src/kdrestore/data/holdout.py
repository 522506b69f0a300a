"""A fixed held-out part of a training folder: the last ``n`` items in sorted order validate, the rest train."""
from __future__ import annotations

from typing import Literal, Sequence, TypeVar

from ..errors import KdrestoreError

T = TypeVar("T")
Part = Literal["train", "val"]


def holdout_split(items: Sequence[T], holdout: int | None, part: Part, where: str = "data") -> list[T]:
    """``items`` less their last ``holdout`` (``part='train'``) or only those (``part='val'``).

    ``holdout=None`` keeps everything. The held-out part must leave at least one training item;
    the error names ``where`` (the recipe field) and the counts.
    """
    items = list(items)
    if holdout is None:
        return items
    if holdout < 1 or holdout >= len(items):
        raise KdrestoreError(f"{where}.holdout: cannot hold out {holdout} of {len(items)} items "
                             f"(needs 1 <= holdout < {len(items)})")
    return items[:-holdout] if part == "train" else items[-holdout:]
