"""Who reads what: the split of a corpus between ranks, dataloader workers and their streams.

Clips are cut into *windows* of consecutive frames (:func:`clip_windows`). At each round of an
epoch the clips are permuted with ``(seed, epoch, round)`` (identical on every rank), their
windows laid end to end in that order, and the sequence cut into ``S`` contiguous *streams* of
(nearly) equal length, ``S = world_size * num_workers * open_clips``
(:class:`WindowStreams`). Worker ``w`` of rank ``r`` owns streams
``(r * num_workers + w) * open_clips + k``; its visit ``v`` decodes window ``v`` of each
of them. A stream therefore runs through its clips forward, window after window (the decoder
continues where it stopped), and every window is visited once per round: across ranks and
workers no frame is sampled twice in a round. One long video is cut among all streams.

:class:`Shard` names a worker's place in that split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Shard", "Window", "WindowStreams", "clip_windows", "sampling_seed"]


def sampling_seed(seed: int | None) -> int:
    """A data module's sampling seed: ``seed`` when given, else ``seed_everything``'s, else 0.

    ``seed_everything`` (LightningCLI's ``--seed_everything``) records its seed in
    ``PL_GLOBAL_SEED``; following it makes a run's second seed a second draw of the data too.
    """
    if seed is not None:
        return int(seed)
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


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

    def stream(self, slot: int, slots: int) -> int:
        """The global index of this worker's stream ``slot`` (of ``slots`` per worker)."""
        return self.index * slots + slot


@dataclass(frozen=True)
class Window:
    """Frames ``start <= f < stop`` (MOT numbers, 1-based) of clip ``clip``."""

    clip: int
    start: int
    stop: int


def clip_windows(num_frames: Sequence[int], size: int) -> list[list[Window]]:
    """Cut every clip into windows of ``size`` consecutive frames (the last one may be shorter).

    Args:
        num_frames: frames of each clip (0 for a clip that cannot be read: no window).
        size: frames per window.

    Returns:
        Per clip, its windows in time order.
    """
    return [
        [Window(c, start, min(start + size, n + 1)) for start in range(1, n + 1, size)]
        for c, n in enumerate(num_frames)
    ]


class WindowStreams:
    """The window each stream decodes at each visit (see the module docstring).

    Args:
        windows: per clip, its windows (:func:`clip_windows`).
        num_streams: streams in all (ranks x workers x streams per worker).
        seed: base seed of the clip order.
    """

    def __init__(self, windows: Sequence[Sequence[Window]], num_streams: int, seed: int) -> None:
        self.windows = [list(w) for w in windows]
        self.num_streams = num_streams
        self.seed = seed
        self.total = sum(len(w) for w in self.windows)
        self._order: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    @property
    def visits_per_round(self) -> int:
        """Visits of the longest stream: a round ends when every window was visited once."""
        return max(1, -(-self.total // self.num_streams))

    def _round_order(self, epoch: int, round_: int) -> tuple[np.ndarray, np.ndarray]:
        if self._order is None or self._order[0] != (epoch, round_):
            perm = np.random.default_rng([self.seed, epoch, round_, 0x5EED]).permutation(len(self.windows))
            counts = np.array([len(self.windows[c]) for c in perm], dtype=np.int64)
            self._order = ((epoch, round_), perm, np.cumsum(counts))
        return self._order[1], self._order[2]

    def window(self, epoch: int, stream: int, visit: int) -> Window | None:
        """Window of ``stream`` at ``visit`` (``None`` when the corpus has no window)."""
        if self.total == 0:
            return None
        round_, i = divmod(visit, self.visits_per_round)
        lo = stream * self.total // self.num_streams
        hi = (stream + 1) * self.total // self.num_streams
        position = lo + i % (hi - lo) if hi > lo else stream % self.total  # fewer windows than streams: share
        perm, ends = self._round_order(epoch, round_)
        k = int(np.searchsorted(ends, position, side="right"))
        before = int(ends[k - 1]) if k else 0
        return self.windows[int(perm[k])][position - before]
