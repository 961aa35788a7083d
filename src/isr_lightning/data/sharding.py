"""Who reads what: the split of a clip list between ranks and dataloader workers.

At each epoch the clip list is permuted with ``(seed, epoch)`` (identical on every rank) and
split into ``world_size * num_workers`` shards, ``shard = perm[s::S]`` with
``s = rank * num_workers + worker``. When there are fewer clips than shards, shard ``s`` gets
clip ``perm[s % num_clips]`` (clips are then shared between shards; their pairs still differ
because every batch has its own random draw).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Shard", "distributed_position"]


def distributed_position() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from ``torch.distributed`` when initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class Shard:
    """One reader's part of the corpus: ``worker`` of ``num_workers`` on ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def index(self) -> int:
        """Global shard number ``rank * num_workers + worker``."""
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        """Number of shards ``world_size * num_workers``."""
        return self.world_size * self.num_workers

    def items(self, num_items: int, seed: int, epoch: int) -> list[int]:
        """Indices (of ``num_items``) this shard reads at ``epoch``, in their epoch order."""
        perm = np.random.default_rng([seed, epoch, 0x5EED]).permutation(num_items)
        if num_items >= self.count:
            return perm[self.index :: self.count].tolist()
        return [int(perm[self.index % num_items])]
