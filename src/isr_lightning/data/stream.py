"""The streaming frame-pair dataset: sharded, reseeded per epoch, resumable, one decode per visit.

Every batch is a pure function of ``(seed, epoch, rank, batch number)`` and of the files, so

* each rank yields exactly ``batches_per_epoch`` batches (DDP never waits on a rank that ran
  out of data);
* resuming after ``k`` consumed batches just starts at batch ``k``: nothing before it is
  decoded again, nothing after it changes.

Batch ``b`` of a rank belongs to dataloader worker ``b % num_workers``, which reads its shard of
the clips (:class:`~isr_lightning.data.sharding.Shard`). A worker's batches come in *visits*:
``pairs_per_visit`` consecutive batches of the worker share ``clips_per_batch`` clips from a
window of the shard's permuted order (cyclically). A visit opens each of its clips once, draws
``pairs_per_visit`` frame pairs from it, decodes all their frames in one sorted pass (decoding
forward, not seeking for each frame) and keeps only the resized uint8 crops; batch ``j`` of the
visit takes pair ``j`` of every clip and augments it. Each batch therefore holds at most one
pair per clip (when the shard has at least ``clips_per_batch`` clips; a smaller one repeats
them): two pairs of one clip in a batch would share people, who would then be each other's
negatives. A bad clip is replaced by the next one of the shard.

Where a clip's crops come from is the stream's :class:`~isr_lightning.data.crop_source.CropSource`:
decoded from the videos (:class:`~isr_lightning.data.crop_source.VideoCrops`, the default) or
read from crop shards written by ``isr-lightning extract``
(:class:`~isr_lightning.data.shards.ShardCrops`, ``shards=`` or :meth:`VideoPairStream.from_shards`);
everything above is the same for both.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from isr_lightning.batch import FramePairBatch
from isr_lightning.data.clip_index import BoxSelection, PairSampling, SkipItem
from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.crop_source import CropRequest, CropSource, VideoCrops
from isr_lightning.data.mot import FrameBoxes
from isr_lightning.data.sharding import Shard, distributed_position
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import CropTransform

__all__ = ["VideoPairStream"]

log = logging.getLogger(__name__)

_INHERITED_READERS: list[object] = []


@dataclass
class _ResizedPair:
    """One frame pair of a visit, cut and resized, not yet augmented."""

    crops: tuple[Tensor, Tensor]  # ((Ka, 3, H, W), (Kb, 3, H, W)) uint8
    boxes: tuple[FrameBoxes, FrameBoxes]
    frame_ids: tuple[int, int]


@dataclass
class _Visit:
    """The clips of ``pairs_per_visit`` consecutive batches of a worker, with their pairs."""

    clips: list[tuple[int, list[_ResizedPair]]]  # (clip index, pairs) in batch order
    skipped: Counter[str]


class _WarnOnce:
    """Logs a skip once per key (a clip is reported once per process, not at every visit)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self, key: str, message: str) -> None:
        if key not in self.keys:
            self.keys.add(key)
            log.warning("skipping: %s", message)

    def __getstate__(self) -> dict:
        return {"keys": set()}


class VideoPairStream(IterableDataset):
    """Frame pairs ``(t, t + delta)`` of a clip corpus, already collated into batches.

    Args:
        clips: the corpus (same list, same order on every rank).
        transform: crop transform (resize, augmentation, normalisation).
        batch_size: frame pairs per batch.
        batches_per_epoch: batches every rank yields per epoch.
        sampling: how pairs are drawn and grouped (``None``: :class:`PairSampling` defaults).
        boxes: which boxes become crops (``None``: :class:`BoxSelection` defaults).
        seed: base seed.
        decode_threads: decoder threads per reader.
        reader_cache: open video readers kept per worker (a 640x360 decord reader holds
            about 50 MB).
        index_cache: clips whose parsed boxes are kept per worker. A reader is reopened
            whenever its clip comes round again (clips are visited cyclically), but the
            detection and ground-truth files are parsed only once.
        video_backend: ``"decord"`` (default) or ``"pyav"`` (seek + decode forward with PyAV).
        shards: a crop-shard folder written by ``isr-lightning extract``: crops are read from
            it instead of decoded (``clips`` must then be its clips; see :meth:`from_shards`).
            Boxes are filtered with ``score_threshold`` and ``min_box_size`` here; the other
            box options were fixed at extraction.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        transform: CropTransform,
        batch_size: int = 8,
        batches_per_epoch: int = 1000,
        sampling: PairSampling | None = None,
        boxes: BoxSelection | None = None,
        seed: int = 0,
        decode_threads: int = 1,
        reader_cache: int = 16,
        index_cache: int = 256,
        video_backend: str = "decord",
        shards: str | None = None,
    ) -> None:
        if not clips:
            raise ValueError("VideoPairStream needs at least one clip")
        if batch_size < 1 or batches_per_epoch < 1:
            raise ValueError("batch_size and batches_per_epoch must be >= 1")
        if video_backend not in ("decord", "pyav"):
            raise ValueError(f"video_backend must be 'decord' or 'pyav', got {video_backend!r}")
        self.clips = list(clips)
        self.transform = transform
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.sampling = sampling or PairSampling()
        self.boxes = boxes or BoxSelection()
        self.clips_per_batch = self.sampling.clips_per_batch or batch_size
        self.seed = seed
        self.shards = None if shards is None else str(shards)
        # not a bound method: the crop source must not refer back to the stream (a cycle would
        # leave open decoders to the garbage collector, which may run in a forked child)
        self._warn = _WarnOnce()
        self.crops: CropSource
        if self.shards is None:
            self.crops = VideoCrops(
                self.clips,
                transform.image_size,
                self.boxes,
                self.sampling,
                self._warn,
                decode_threads,
                reader_cache,
                index_cache,
                video_backend,
            )
        else:
            from isr_lightning.data.shards import ShardCrops

            self.crops = ShardCrops(self.shards, transform.image_size, self.boxes, self.sampling)
        # where the next iteration starts; the loader sets them before workers start
        self.rank, self.world_size = 0, 1
        self.epoch = 0
        self.start_batch = 0
        self._reset_caches()

    @classmethod
    def from_shards(cls, root: str, transform: CropTransform, **kwargs) -> VideoPairStream:
        """The stream of a crop-shard folder written by ``isr-lightning extract``.

        Args:
            root: the shard folder.
            transform: crop transform (stored crops are resized to its ``image_size`` only
                when the sizes differ).
            **kwargs: the other :class:`VideoPairStream` options.
        """
        from isr_lightning.data.shards import ShardIndex

        return cls(ShardIndex.read(root).clip_list(), transform, shards=str(root), **kwargs)

    def _reset_caches(self) -> None:
        # open readers hold decoder handles and file offsets: never share them across processes
        self._pid: int | None = os.getpid()
        self._visit: tuple[tuple, _Visit] | None = None
        self._bad: dict[int, str] = {}
        self._warn.keys.clear()

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __getstate__(self) -> dict:
        # the crop source drops its open files itself: workers (fork or spawn) reopen their own
        state = self.__dict__.copy()
        state["_visit"] = None
        state["_bad"], state["_pid"] = {}, None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (reseeds clip order and draws)."""
        self.epoch = int(epoch)

    def shard(self, epoch: int, rank: int, world_size: int, worker: int, num_workers: int) -> list[int]:
        """Clip indices of shard ``(rank, worker)`` at ``epoch``, in their epoch order."""
        return Shard(rank, world_size, worker, num_workers).items(len(self.clips), self.seed, epoch)

    # ------------------------------------------------------------------ sampling
    def _subset(self, fb: FrameBoxes, rng: np.random.Generator) -> np.ndarray:
        """Rows of ``fb`` a pair keeps: all, or a random sorted subset of ``max_crops_per_pair // 2``."""
        cap = None if self.sampling.max_crops_per_pair is None else self.sampling.max_crops_per_pair // 2
        if cap is None or len(fb) <= cap:
            return np.arange(len(fb))
        return np.sort(rng.choice(len(fb), size=cap, replace=False))

    def _visit_clip(self, index: int, rng: np.random.Generator) -> list[_ResizedPair]:
        """Draw ``pairs_per_visit`` pairs of clip ``index``, read their crops in one call."""
        clip = self.crops.clip_index(index)
        pairs = clip.sample_visit(rng, self.sampling.pairs_per_visit)
        rows = []
        for t, u in pairs:
            ra = self._subset(clip.frames[t], rng)
            rows.append((ra, ra if t == u else self._subset(clip.frames[u], rng)))  # instance: one crop set
        requests: list[CropRequest] = []
        for (t, u), (ra, rb) in zip(pairs, rows, strict=True):
            requests.append((t, ra))
            if t != u:
                requests.append((u, rb))
        crops = iter(self.crops.read(index, requests))
        out = []
        for (t, u), (ra, rb) in zip(pairs, rows, strict=True):
            crops_a = next(crops)
            crops_b = crops_a if t == u else next(crops)
            boxes = (clip.frames[t].select(ra), clip.frames[u].select(rb))
            out.append(_ResizedPair((crops_a, crops_b), boxes, (t, u)))
        return out

    def _plan_visit(self, epoch: int, shard: Shard, visit: int) -> _Visit:
        """The clips of visit ``visit`` of ``shard`` and their pairs (bad clips replaced)."""
        clips = self.shard(epoch, shard.rank, shard.world_size, shard.worker, shard.num_workers)
        rng = np.random.default_rng([self.seed, epoch, shard.rank, shard.worker, visit, 0x715])
        cpb = self.clips_per_batch
        slots = [visit * cpb + k for k in range(cpb)]
        reserve = (visit + 1) * cpb
        limit = len(clips) + cpb
        skipped: Counter[str] = Counter()
        planned: list[tuple[int, list[_ResizedPair]]] = []
        tries = 0
        i = 0
        while len(planned) < self.batch_size and slots:
            slot = i % len(slots)
            index = clips[slots[slot] % len(clips)]
            pairs = None
            if index not in self._bad:
                try:
                    pairs = self._visit_clip(index, rng)
                except SkipItem as err:
                    self._bad[index] = err.reason
                    skipped[err.reason] += 1
                    self._warn(self.clips[index].source, f"[{err.reason}] clip {self.clips[index].source}: {err}")
            if pairs is None:
                tries += 1
                if tries <= limit:
                    slots[slot] = reserve
                    reserve += 1
                else:
                    slots.pop(slot)
                continue
            planned.append((index, pairs))
            i += 1
        if not planned:
            reasons = Counter(self._bad[i] for i in clips if i in self._bad)
            raise RuntimeError(
                f"no usable clip in shard (rank {shard.rank}, worker {shard.worker}) of {len(clips)} clips; "
                f"reasons: {dict(reasons)}; first: {self.clips[clips[0]].source}"
            )
        return _Visit(planned, skipped)

    def _sample(self, index: int, pair: _ResizedPair, crops: tuple[Tensor, Tensor]) -> FramePairSample:
        fa, fb = pair.boxes
        return FramePairSample(
            crops=crops,
            boxes=(torch.from_numpy(fa.boxes.copy()), torch.from_numpy(fb.boxes.copy())),
            track_ids=(torch.from_numpy(fa.ids.copy()), torch.from_numpy(fb.ids.copy())),
            clip_index=index,
            frame_ids=pair.frame_ids,
        )

    def _augment(self, pairs: list[_ResizedPair], gen: torch.Generator) -> list[tuple[Tensor, Tensor]]:
        """Augment every crop of a batch in one call (each crop draws its own augmentation)."""
        sides = [crops for pair in pairs for crops in pair.crops]
        out = self.transform.from_resized(torch.cat(sides), gen).split([len(c) for c in sides])
        return list(zip(out[0::2], out[1::2], strict=True))

    def make_batch(self, epoch: int, rank: int, world_size: int, num_workers: int, b: int) -> FramePairBatch:
        """Build batch ``b`` (0-based, per rank) of ``epoch``; deterministic given the files.

        Args:
            epoch: epoch number.
            rank: global rank.
            world_size: number of ranks.
            num_workers: dataloader workers per rank (``1`` without workers).
            b: batch number within the rank's epoch.

        Returns:
            The collated batch with ``batch_size`` frame pairs (fewer only when the shard has
            too few usable clips left or the crop cap drops pairs). The first batch of a visit
            reports the clips the visit skipped.

        Raises:
            RuntimeError: no clip of the shard can give a frame pair.
        """
        shard = Shard(rank, world_size, b % num_workers, num_workers)
        visit, turn = divmod(b // num_workers, self.sampling.pairs_per_visit)
        key = (epoch, shard, visit)
        if self._visit is None or self._visit[0] != key:
            self._visit = (key, self._plan_visit(epoch, shard, visit))
        planned = self._visit[1]
        gen = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, epoch, rank, b]).integers(2**62)))
        pairs = [pairs[turn] for _, pairs in planned.clips]
        crops = self._augment(pairs, gen)
        samples = [
            self._sample(index, pair, views)
            for (index, _), pair, views in zip(planned.clips, pairs, crops, strict=True)
        ]
        skipped = planned.skipped if turn == 0 else None
        return collate_frame_pairs(samples, self.sampling.max_crops_per_batch, skipped)

    def __iter__(self):
        if self._pid != os.getpid():  # a forked worker: reopen its own clips
            # keep the parent's readers alive but unused: destroying a decoder whose threads
            # live in the parent deadlocks the child
            _INHERITED_READERS.append(dict(vars(self.crops)))
            self.crops.reset()
            self._reset_caches()
        info = get_worker_info()
        num_workers, worker = (info.num_workers, info.id) if info else (1, 0)
        rank, world_size = self.rank, self.world_size
        if info is None and distributed_position()[1] > 1:  # iterated in the main process under DDP
            rank, world_size = distributed_position()
        for b in range(self.start_batch + worker, self.batches_per_epoch, num_workers):
            yield self.make_batch(self.epoch, rank, world_size, num_workers, b)
