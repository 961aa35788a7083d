"""``VideoPairLoader``: the resumable DataLoader of a :class:`~isr_lightning.data.stream.VideoPairStream`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from isr_lightning.batch import FramePairBatch
from isr_lightning.data.entry_point import check_entry_point_guard
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.distributed import rank_and_world_size

__all__ = ["VideoPairLoader"]


def _start_method(context: Any) -> str | None:
    """The start method of a DataLoader's ``multiprocessing_context`` (a name or a context)."""
    if context is None or isinstance(context, str):
        return context
    return context.get_start_method()


def _identity(x: FramePairBatch) -> FramePairBatch:
    return x


class VideoPairLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` over a :class:`VideoPairStream`, resumable.

    It counts the batches handed to the consumer, so the position in the epoch can be saved
    (``state_dict``) and restored (``load_state_dict``); Lightning does both for a stateful
    loader, and :class:`VideoPairDataModule` does it too.

    Workers are not persistent: the epoch, rank and start batch are sent to fresh workers
    at each ``iter()``. They start from a ``forkserver`` by default, not by ``fork``: a
    forked child inherits the parent's video decoders (of any stream the process used
    before), and destroying one whose decoding threads live in the parent deadlocks. As with
    any spawned worker, a script must guard its entry point with ``if __name__ ==
    "__main__":`` (workers import the main script again); iterating the loader from an
    unguarded script's top level raises
    :class:`~isr_lightning.data.entry_point.UnguardedEntryPointError` before any worker
    starts. ``epoch_fn`` (e.g. ``lambda: trainer.current_epoch``) gives the epoch;
    without it the loader counts its own ``iter()`` calls.

    Args:
        stream: the dataset.
        num_workers: worker processes (the sharding unit with the rank).
        epoch_fn: returns the epoch to iterate.
        **kwargs: other :class:`~torch.utils.data.DataLoader` options (``pin_memory``,
            ``prefetch_factor``, ``multiprocessing_context``...).
    """

    def __init__(self, stream: VideoPairStream, num_workers: int = 0, epoch_fn=None, **kwargs) -> None:
        kwargs.pop("persistent_workers", None)
        if num_workers > 0:
            kwargs.setdefault("multiprocessing_context", "forkserver")
        super().__init__(stream, batch_size=None, num_workers=num_workers, collate_fn=_identity, **kwargs)
        self.stream = stream
        self.epoch_fn = epoch_fn
        self.epoch = -1
        self.batches_consumed = 0
        self._resume: tuple[int, int] | None = None
        self._next_epoch = 0
        # returns the batches really consumed (Lightning fetches one ahead); None: count here
        self.consumed_fn: Callable[[int], int] | None = None

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "batches_consumed"}``: where the next iteration continues."""
        if self.epoch < 0:
            if self._resume is not None:
                return {"epoch": self._resume[0], "batches_consumed": self._resume[1]}
            return {"epoch": 0, "batches_consumed": 0}
        consumed = self.batches_consumed
        if self.consumed_fn is not None:
            consumed = self.consumed_fn(consumed)
        return {"epoch": self.epoch, "batches_consumed": consumed}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Continue at a saved position (see :meth:`resume`)."""
        self.resume(int(state_dict["epoch"]), int(state_dict["batches_consumed"]))

    def resume(self, epoch: int, batches_consumed: int) -> None:
        """Make the next ``iter()`` of ``epoch`` start after ``batches_consumed`` batches."""
        if batches_consumed >= self.stream.batches_per_epoch:
            epoch, batches_consumed = epoch + 1, 0
        self._resume = (int(epoch), int(batches_consumed))
        self._next_epoch = int(epoch)

    def __iter__(self):
        epoch = int(self.epoch_fn()) if self.epoch_fn is not None else self._next_epoch
        start = 0
        if self._resume is not None and self._resume[0] == epoch:
            start = self._resume[1]
        self._resume = None
        self.epoch, self._next_epoch = epoch, epoch + 1
        self.stream.set_epoch(epoch)
        self.stream.start_batch = start
        rank, world_size = rank_and_world_size()
        if world_size > 1:  # under DDP; otherwise keep what the caller set
            self.stream.rank, self.stream.world_size = rank, world_size
        self.batches_consumed = start
        if self.num_workers > 0:
            check_entry_point_guard(_start_method(self.multiprocessing_context))
        for batch in super().__iter__():
            self.batches_consumed += 1
            yield batch
