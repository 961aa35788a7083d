"""The streaming frame-pair dataset: sharded, reseeded per epoch, resumable.

Every batch is a pure function of ``(seed, epoch, rank, batch number)`` and of the files, so

* each rank yields exactly ``batches_per_epoch`` batches (DDP never waits on a rank that ran
  out of data);
* resuming after ``k`` consumed batches just starts at batch ``k``: nothing before it is
  decoded again, nothing after it changes.

Sharding: at each epoch the clip list is permuted with ``(seed, epoch)`` (identical on every
rank) and split into ``world_size * num_workers`` shards, ``shard = perm[s::S]`` with
``s = rank * num_workers + worker``. Batch ``b`` of a rank belongs to shard
``worker = b % num_workers`` and draws its clips from a window of that shard's permuted
order (``clips_per_batch`` clips, cyclically), so batches mix clips and a bad clip is
replaced by the next one of the shard. When there are fewer clips than shards, shard ``s``
gets clip ``perm[s % num_clips]`` (clips are then shared between shards; the pairs still
differ because every batch has its own random draw).
"""

from __future__ import annotations

import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from isr_lightning.batch import FramePairBatch
from isr_lightning.data.boxes import box_iou
from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.entry_point import check_entry_point_guard
from isr_lightning.data.mot import FrameBoxes, MalformedDetectionsError, filter_boxes, read_mot_file
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import CropTransform, crop_boxes
from isr_lightning.data.video import FrameReader, UnreadableVideoError, open_reader

__all__ = ["SKIP_REASONS", "SkipItem", "VideoPairLoader", "VideoPairStream"]

log = logging.getLogger(__name__)

SKIP_REASONS = (
    "unreadable_video",
    "missing_detections",
    "malformed_detections",
    "clip_too_short",
    "too_few_people",
)


_INHERITED_READERS: list[object] = []


class SkipItem(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A clip cannot give a frame pair; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _ClipIndex:
    """What a clip's files say, parsed once per worker: boxes per frame and sampling bounds."""

    frames: dict[int, FrameBoxes]  # MOT frame number -> filtered boxes (ids = gt ids or -1)
    valid: np.ndarray  # sorted frame numbers with enough boxes
    delta: tuple[int, int]


@dataclass
class _OpenClip:
    reader: FrameReader
    index: _ClipIndex


class VideoPairStream(IterableDataset):
    """Frame pairs ``(t, t + delta)`` of a clip corpus, already collated into batches.

    Args:
        clips: the corpus (same list, same order on every rank).
        transform: crop transform (resize, augmentation, normalisation).
        batch_size: frame pairs per batch.
        batches_per_epoch: batches every rank yields per epoch.
        delta_frames: inclusive range of ``delta`` in frames.
        delta_seconds: inclusive range of ``delta`` in seconds (converted per clip with its
            frame rate, at least 1 frame); overrides ``delta_frames`` when given.
        pairing: ``"temporal"`` (frames ``t`` and ``t + delta``) or ``"instance"`` (one frame,
            two augmented views of each crop).
        clips_per_batch: distinct clips a batch draws its pairs from (default
            ``batch_size``).
        box_source: ``"detections"`` (the clip's MOT detection file) or ``"gt"`` (its
            ground-truth file, for diagnostics and ablations).
        score_threshold: minimum detection score.
        min_box_size: minimum box width and height in pixels after clipping.
        min_crops_per_frame: frames with fewer boxes are never sampled.
        max_crops_per_pair: cap on crops of one frame pair (each frame keeps at most half,
            a random subset).
        max_crops_per_batch: cap on crops of a batch (whole pairs dropped past it).
        gt_classes: classes kept from ground-truth files (``None``: all).
        min_visibility: minimum visibility kept from ground-truth files.
        gt_iou: minimum IoU for a detection to take a ground-truth id (one-to-one matching).
        seed: base seed.
        decode_threads: decoder threads per reader.
        reader_cache: open video readers kept per worker (a 640x360 decord reader holds
            about 50 MB).
        index_cache: clips whose parsed boxes are kept per worker. A reader is reopened
            whenever its clip comes round again (clips are visited cyclically), but the
            detection and ground-truth files are parsed only once.
        video_backend: ``"decord"`` (default) or ``"pyav"`` (seek + decode forward with PyAV).
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        transform: CropTransform,
        batch_size: int = 8,
        batches_per_epoch: int = 1000,
        delta_frames: tuple[int, int] = (1, 30),
        delta_seconds: tuple[float, float] | None = None,
        pairing: str = "temporal",
        clips_per_batch: int | None = None,
        box_source: str = "detections",
        score_threshold: float | None = None,
        min_box_size: float = 8.0,
        min_crops_per_frame: int = 2,
        max_crops_per_pair: int | None = 64,
        max_crops_per_batch: int | None = None,
        gt_classes: Sequence[int] | None = (1, 2, 7),
        min_visibility: float = 0.0,
        gt_iou: float = 0.5,
        seed: int = 0,
        decode_threads: int = 1,
        reader_cache: int = 16,
        index_cache: int = 256,
        video_backend: str = "decord",
    ) -> None:
        if not clips:
            raise ValueError("VideoPairStream needs at least one clip")
        if pairing not in ("temporal", "instance"):
            raise ValueError(f"pairing must be 'temporal' or 'instance', got {pairing!r}")
        if box_source not in ("detections", "gt"):
            raise ValueError(f"box_source must be 'detections' or 'gt', got {box_source!r}")
        if batch_size < 1 or batches_per_epoch < 1:
            raise ValueError("batch_size and batches_per_epoch must be >= 1")
        if not 0 <= delta_frames[0] <= delta_frames[1]:
            raise ValueError(f"delta_frames must be 0 <= min <= max, got {delta_frames}")
        if pairing == "temporal" and delta_seconds is None and delta_frames[1] < 1:
            raise ValueError("temporal pairing needs delta_frames max >= 1")
        if max_crops_per_pair is not None and max_crops_per_pair < 2:
            raise ValueError("max_crops_per_pair must be >= 2")
        self.clips = list(clips)
        self.transform = transform
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.delta_frames = (int(delta_frames[0]), int(delta_frames[1]))
        self.delta_seconds = delta_seconds
        self.pairing = pairing
        self.clips_per_batch = max(1, clips_per_batch or batch_size)
        self.box_source = box_source
        self.score_threshold = score_threshold
        self.min_box_size = min_box_size
        self.min_crops_per_frame = max(1, min_crops_per_frame)
        self.max_crops_per_pair = max_crops_per_pair
        self.max_crops_per_batch = max_crops_per_batch
        self.gt_classes = None if gt_classes is None else tuple(gt_classes)
        self.min_visibility = min_visibility
        self.gt_iou = gt_iou
        self.seed = seed
        self.decode_threads = decode_threads
        self.reader_cache = reader_cache
        self.index_cache = index_cache
        if video_backend not in ("decord", "pyav"):
            raise ValueError(f"video_backend must be 'decord' or 'pyav', got {video_backend!r}")
        self.video_backend = video_backend
        # set in the main process before workers start (see VideoPairLoader)
        self.rank = 0
        self.world_size = 1
        self.epoch = 0
        self.start_batch = 0
        # per-process caches (rebuilt in each worker)
        self._reset_caches()

    def _reset_caches(self) -> None:
        # open readers hold decoder handles and file offsets: never share them across processes
        self._pid: int | None = os.getpid()
        self._open: OrderedDict[int, _OpenClip] = OrderedDict()
        self._index: OrderedDict[int, _ClipIndex] = OrderedDict()
        self._bad: dict[int, str] = {}
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __getstate__(self) -> dict:
        # open readers hold decoder handles: workers (fork or spawn) reopen their own clips
        state = self.__dict__.copy()
        state["_open"], state["_index"] = OrderedDict(), OrderedDict()
        state["_bad"], state["_warned"], state["_pid"] = {}, set(), None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (reseeds clip order and draws)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ sharding
    def shard(self, epoch: int, rank: int, world_size: int, worker: int, num_workers: int) -> list[int]:
        """Clip indices of shard ``(rank, worker)`` at ``epoch``, in their epoch order."""
        n = len(self.clips)
        perm = np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(n)
        num_shards = world_size * num_workers
        s = rank * num_workers + worker
        if n >= num_shards:
            return perm[s::num_shards].tolist()
        return [int(perm[s % n])]

    # ------------------------------------------------------------------ clip loading
    def _boxes_of(self, clip: Clip, reader: FrameReader) -> dict[int, FrameBoxes]:
        path = clip.gt if self.box_source == "gt" else clip.detections
        if self.box_source == "gt" and path is None:
            raise SkipItem("missing_detections", f"{clip.clip_id}: no ground-truth file")
        if path is None:
            raise SkipItem("missing_detections", f"{clip.clip_id}: no detection file")
        try:
            raw = read_mot_file(
                path,
                is_gt=self.box_source == "gt",
                score_threshold=self.score_threshold,
                gt_classes=self.gt_classes,
                min_visibility=self.min_visibility,
            )
        except FileNotFoundError as err:
            raise SkipItem("missing_detections", f"detections not found: {path}") from err
        except (MalformedDetectionsError, ValueError, UnicodeError) as err:
            raise SkipItem("malformed_detections", f"malformed detections {path}: {err}") from err
        gt = None
        if self.box_source == "detections" and clip.gt is not None:
            try:
                gt = read_mot_file(clip.gt, is_gt=True, gt_classes=self.gt_classes, min_visibility=self.min_visibility)
            except (OSError, ValueError) as err:  # diagnostics only: warn, keep training
                self._warn(clip.gt, f"ignoring ground truth {clip.gt}: {err}")
        frames = {}
        for f, fb in raw.items():
            if not 1 <= f <= reader.num_frames:
                continue
            fb = filter_boxes(fb, reader.width, reader.height, self.min_box_size)
            if self.box_source == "detections":
                ids = np.full(len(fb), -1, dtype=np.int64)
                g = gt.get(f) if gt is not None else None
                if g is not None and len(g) and len(fb):
                    iou = box_iou(fb.boxes, g.boxes)
                    r, c = linear_sum_assignment(iou, maximize=True)
                    ok = iou[r, c] >= self.gt_iou
                    ids[r[ok]] = g.ids[c[ok]]
                fb = FrameBoxes(fb.boxes, ids, fb.scores)
            frames[f] = fb
        return frames

    def _delta(self, reader: FrameReader) -> tuple[int, int]:
        if self.pairing == "instance":
            return (0, 0)
        if self.delta_seconds is not None:
            lo = max(1, round(self.delta_seconds[0] * reader.fps))
            return lo, max(lo, round(self.delta_seconds[1] * reader.fps))
        return max(1, self.delta_frames[0]), self.delta_frames[1]

    def _open_clip(self, index: int) -> _OpenClip:
        if index in self._open:
            self._open.move_to_end(index)
            return self._open[index]
        clip = self.clips[index]
        try:
            reader = open_reader(clip, self.decode_threads, self.video_backend)
        except UnreadableVideoError as err:
            raise SkipItem("unreadable_video", str(err)) from err
        opened = _OpenClip(reader, self._clip_index(index, reader))
        self._open[index] = opened
        while len(self._open) > self.reader_cache:
            self._open.popitem(last=False)
        return opened

    def _clip_index(self, index: int, reader: FrameReader) -> _ClipIndex:
        if index in self._index:
            self._index.move_to_end(index)
            return self._index[index]
        clip = self.clips[index]
        frames = self._boxes_of(clip, reader)
        delta = self._delta(reader)
        valid = np.array(sorted(f for f, fb in frames.items() if len(fb) >= self.min_crops_per_frame), dtype=np.int64)
        if self.pairing == "temporal" and reader.num_frames - 1 < delta[0]:
            raise SkipItem(
                "clip_too_short",
                f"{clip.source}: {reader.num_frames} frames, shorter than delta {delta[0]}",
            )
        parsed = _ClipIndex(frames, valid, delta)
        if self.pairing == "temporal":
            lo, hi = self._pair_bounds(parsed)
            if int((hi - lo).sum()) == 0:
                raise SkipItem(
                    "too_few_people",
                    f"{clip.source}: no frames {delta[0]}-{delta[1]} apart both with "
                    f">= {self.min_crops_per_frame} boxes",
                )
        elif len(valid) == 0:
            raise SkipItem("too_few_people", f"{clip.source}: no frame with >= {self.min_crops_per_frame} boxes")
        self._index[index] = parsed
        while len(self._index) > self.index_cache:
            self._index.popitem(last=False)
        return parsed

    @staticmethod
    def _pair_bounds(c: _ClipIndex) -> tuple[np.ndarray, np.ndarray]:
        lo = np.searchsorted(c.valid, c.valid + c.delta[0], side="left")
        hi = np.searchsorted(c.valid, c.valid + c.delta[1], side="right")
        return lo, np.maximum(hi, lo)

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("skipping: %s", message)

    # ------------------------------------------------------------------ sampling
    def sample_frames(self, c: _ClipIndex, rng: np.random.Generator) -> tuple[int, int]:
        """Draw MOT frame numbers ``(t, t + delta)`` uniformly over the valid pairs of a clip."""
        if self.pairing == "instance":
            t = int(c.valid[rng.integers(len(c.valid))])
            return t, t
        lo, hi = self._pair_bounds(c)
        counts = hi - lo
        cum = np.cumsum(counts)
        r = int(rng.integers(cum[-1]))
        i = int(np.searchsorted(cum, r, side="right"))
        before = int(cum[i - 1]) if i else 0
        return int(c.valid[i]), int(c.valid[lo[i] + r - before])

    def _subset(self, fb: FrameBoxes, cap: int | None, rng: np.random.Generator) -> FrameBoxes:
        if cap is None or len(fb) <= cap:
            return fb
        return fb.select(np.sort(rng.choice(len(fb), size=cap, replace=False)))

    def _make_sample(self, index: int, rng: np.random.Generator) -> FramePairSample:
        c = self._open_clip(index)
        t, u = self.sample_frames(c.index, rng)
        cap = None if self.max_crops_per_pair is None else self.max_crops_per_pair // 2
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        try:
            frames = c.reader.get_frames([t - 1] if t == u else [t - 1, u - 1])
        except (UnreadableVideoError, IndexError) as err:
            self._open.pop(index, None)
            raise SkipItem("unreadable_video", str(err)) from err
        fa = self._subset(c.index.frames[t], cap, rng)
        raw_a = self.transform.resize(crop_boxes(frames[0], fa.boxes))
        if self.pairing == "instance":
            fb, crops_a = fa, self.transform.from_resized(raw_a, gen)
            crops_b = self.transform.from_resized(raw_a, gen)
        else:
            fb = self._subset(c.index.frames[u], cap, rng)
            crops_a = self.transform.from_resized(raw_a, gen)
            crops_b = self.transform(crop_boxes(frames[1], fb.boxes), gen)
        return FramePairSample(
            crops=(crops_a, crops_b),
            boxes=(torch.from_numpy(fa.boxes.copy()), torch.from_numpy(fb.boxes.copy())),
            track_ids=(torch.from_numpy(fa.ids.copy()), torch.from_numpy(fb.ids.copy())),
            clip_index=index,
            frame_ids=(t, u),
        )

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
            too few usable clips left or the crop cap drops pairs).

        Raises:
            RuntimeError: no clip of the shard can give a frame pair.
        """
        worker, local = b % num_workers, b // num_workers
        shard = self.shard(epoch, rank, world_size, worker, num_workers)
        rng = np.random.default_rng([self.seed, epoch, rank, b])
        cpb = self.clips_per_batch
        slots = [local * cpb + k for k in range(cpb)]
        reserve = (local + 1) * cpb
        limit = len(shard) + cpb
        skipped: Counter[str] = Counter()
        samples: list[FramePairSample] = []
        tries = 0
        i = 0
        while len(samples) < self.batch_size and slots:
            slot = i % len(slots)
            index = shard[slots[slot] % len(shard)]
            if index in self._bad:
                sample = None
            else:
                try:
                    sample = self._make_sample(index, rng)
                except SkipItem as err:
                    self._bad[index] = err.reason
                    skipped[err.reason] += 1
                    self._warn(self.clips[index].source, f"[{err.reason}] clip {self.clips[index].source}: {err}")
                    sample = None
            if sample is None:
                tries += 1
                if tries <= limit:
                    slots[slot] = reserve
                    reserve += 1
                else:
                    slots.pop(slot)
                continue
            samples.append(sample)
            i += 1
        if not samples:
            reasons = Counter(self._bad[i] for i in shard if i in self._bad)
            raise RuntimeError(
                f"no usable clip in shard (rank {rank}, worker {worker}) of {len(shard)} clips; "
                f"reasons: {dict(reasons)}; first: {self.clips[shard[0]].source}"
            )
        return collate_frame_pairs(samples, self.max_crops_per_batch, skipped)

    def __iter__(self):
        if self._pid != os.getpid():  # a forked worker: reopen its own clips
            # keep the parent's readers alive but unused: destroying a decoder whose threads
            # live in the parent deadlocks the child
            _INHERITED_READERS.append(self._open)
            self._reset_caches()
        info = get_worker_info()
        num_workers, worker = (info.num_workers, info.id) if info else (1, 0)
        rank, world_size = self.rank, self.world_size
        if info is None and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        for b in range(self.start_batch + worker, self.batches_per_epoch, num_workers):
            yield self.make_batch(self.epoch, rank, world_size, num_workers, b)


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
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self.stream.rank = torch.distributed.get_rank()
            self.stream.world_size = torch.distributed.get_world_size()
        self.batches_consumed = start
        if self.num_workers > 0:
            check_entry_point_guard(_start_method(self.multiprocessing_context))
        for batch in super().__iter__():
            self.batches_consumed += 1
            yield batch
