"""Deterministic, resumable batches that are identical whatever the number of processes.

Epoch ``e`` visits a permutation of the data set drawn from ``seed + e``; global batch ``b`` of the
run is the slice ``[b*B, (b+1)*B)`` of the concatenated epochs, and process ``r`` of ``W`` takes the
``r``-th of its ``W`` equal parts. One process with batch B and W processes with B/W each therefore
see the same samples at every step, which is what makes DDP results match a single process, and a
run resumed at step ``s`` continues with exactly the batches it would have seen.
"""
from __future__ import annotations

from typing import Iterator

import torch


class GlobalBatchSampler:
    """Yields this process's list of indices for global batches ``start_batch, start_batch+1, ...``."""

    def __init__(self, length: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0) -> None:
        if length <= 0:
            raise ValueError("the training set is empty")
        if global_batch % world_size:
            raise ValueError(f"batch_size {global_batch} is not divisible by {world_size} processes")
        self.length, self.batch, self.seed = length, global_batch, seed
        self.rank, self.world = rank, world_size
        self.start_batch = start_batch

    def _epoch_order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.length, generator=g).tolist()

    def epoch_of(self, batch_index: int) -> int:
        return batch_index * self.batch // self.length

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        """Each item is a list of ``(epoch, dataset index)`` pairs for this process."""
        b = self.start_batch
        cache: dict[int, list[int]] = {}
        per_rank = self.batch // self.world
        while True:
            start = b * self.batch + self.rank * per_rank
            items = []
            for pos in range(start, start + per_rank):
                epoch, offset = divmod(pos, self.length)
                if epoch not in cache:
                    cache = {epoch: self._epoch_order(epoch), **{k: v for k, v in cache.items() if k >= epoch - 1}}
                items.append((epoch, cache[epoch][offset]))
            yield items
            b += 1
