"""The streaming frame-pair dataset: sharded, reseeded per epoch, resumable, each clip decoded forward.

Every batch is a pure function of ``(seed, epoch, rank, batch number)`` and of the files, so

* each rank yields exactly ``batches_per_epoch`` batches (DDP never waits on a rank that ran
  out of data);
* resuming after ``k`` consumed batches just starts at batch ``k``: nothing before it is
  decoded again, nothing after it changes.

Batch ``b`` of a rank belongs to dataloader worker ``b % num_workers``. A worker owns
``open_clips`` *streams* (:class:`~isr_lightning.data.clip_index.PairSampling`; a multiple of
``clips_per_batch``): contiguous runs of the corpus's windows of ``pairs_per_visit`` frames
(:class:`~isr_lightning.data.sharding.WindowStreams`), so each stream goes through its clips
forward, window after window, and no window is given to two workers in a round. A *visit*
decodes the next window of each of the worker's streams in one forward pass (the decoder
continues where the previous visit stopped), cuts and resizes the boxes of every frame on
uint8, and makes every frame of the window that has people the later frame of one pair, its
partner drawn from the frames ``delta`` before it (whose crops the stream kept from earlier
visits: :class:`~isr_lightning.data.clip_index.ClipIndex` puts them on a grid of about
``partner_candidates`` frames). The visit's pairs are shuffled over its
``pairs_per_visit * open_clips / clips_per_batch`` batches: each batch takes one pair from each
of ``clips_per_batch`` streams drawn at random, so pairs of one clip stay out of each other's
batches (where their people would be each other's negatives) and the people of consecutive
batches come from all the open clips, not from the same few for as long as a clip lasts (on
the demo's corpus, 8 open clips per worker instead of 16 cost a third of mall rank-1 after 300
steps: docs/benchmarks.md). A window whose clip cannot be read or gives no pair is counted and
the stream moves on to its next window; a stream that runs dry lends its place in the batches
to the others.

Where a clip's crops come from is the stream's :class:`~isr_lightning.data.crop_source.CropSource`,
handed to it: decoded from the videos (:class:`~isr_lightning.data.crop_source.VideoCrops`, the
default) or read from crop shards written by ``isr-lightning extract``
(:class:`~isr_lightning.data.shards.ShardCrops`, :meth:`VideoPairStream.from_shards`); everything
above is the same for both.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from isr_lightning.batch import FramePairBatch
from isr_lightning.data.clip_index import BoxSelection, PairSampling, SkipItem
from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.crop_source import CropSource, VideoCrops, WarnOnce
from isr_lightning.data.mot import FrameBoxes
from isr_lightning.data.sharding import Shard, Window, WindowStreams, clip_windows
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import CropTransform
from isr_lightning.data.video import DEFAULT_VIDEO_BACKEND, check_backend
from isr_lightning.distributed import rank_and_world_size
from isr_lightning.storage import DEFAULT_CACHE_GB

__all__ = ["VideoPairStream"]

log = logging.getLogger(__name__)

_INHERITED_READERS: list[object] = []


@dataclass
class _ResizedPair:
    """One frame pair of a visit, cut and resized, not yet augmented."""

    clip: int
    crops: tuple[Tensor, Tensor]  # ((Ka, 3, H, W), (Kb, 3, H, W)) uint8
    boxes: tuple[FrameBoxes, FrameBoxes]
    frame_ids: tuple[int, int]


@dataclass
class _Visit:
    """The pairs of a worker's consecutive batches that one visit of its streams gives."""

    batches: list[list[_ResizedPair]]  # batch of the visit -> its pairs, one per lane
    skipped: Counter[str]


@dataclass
class _StreamVisit:
    """One stream's part of a visit: its window, the pairs it gives and their frames' crops."""

    stream: int
    clip: int
    window: Window
    pairs: list[tuple[int, int]]
    crops: dict[int, Tensor] = field(default_factory=dict)  # frame -> (K, 3, H, W) uint8


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
        reader_cache: open video readers kept per worker (``None``: one per open clip; a
            PyAV reader holds a few MB; decord's grow with what they decode).
        index_cache: clips whose parsed boxes are kept per worker. A reader is reopened
            whenever its clip comes round again (clips are visited cyclically), but the
            detection and ground-truth files are parsed only once.
        video_backend: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"`` (optional; see
            :class:`~isr_lightning.data.video.TorchCodecVideoReader`).
        crops: where the crops come from, chosen by the caller (the data module): ``None``
            decodes the clips' videos (:class:`~isr_lightning.data.crop_source.VideoCrops`, with
            the four options above); :meth:`from_shards` hands over the crops stored by
            ``isr-lightning extract``.
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
        reader_cache: int | None = None,
        index_cache: int = 256,
        video_backend: str = DEFAULT_VIDEO_BACKEND,
        crops: CropSource | None = None,
    ) -> None:
        if not clips:
            raise ValueError("VideoPairStream needs at least one clip")
        if batch_size < 1 or batches_per_epoch < 1:
            raise ValueError("batch_size and batches_per_epoch must be >= 1")
        check_backend(video_backend)
        self.clips = list(clips)
        videos: dict[str, int] = {}
        # clips cut from one video (time windows) share its index: their people may be the same
        self.video_index = [videos.setdefault(clip.source, len(videos)) for clip in self.clips]
        self.transform = transform.for_model(None)  # a size, or the default one (data modules set the model's)
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.sampling = sampling or PairSampling()
        self.boxes = boxes or BoxSelection()
        self.clips_per_batch = cpb = self.sampling.clips_per_batch or batch_size
        self.open_clips = -(-max(self.sampling.open_clips or cpb, cpb) // cpb) * cpb  # a multiple of cpb
        self.seed = seed
        # not a bound method: the crop source must not refer back to the stream (a cycle would
        # leave open decoders to the garbage collector, which may run in a forked child)
        self._warn = WarnOnce()
        self.crops = crops or VideoCrops(
            self.clips,
            self.transform.image_size,
            self.boxes,
            self.sampling,
            self._warn,
            decode_threads,
            reader_cache or self.open_clips,
            index_cache,
            video_backend,
        )
        # where the next iteration starts; the loader sets them before workers start
        self.rank, self.world_size = 0, 1
        self.epoch = 0
        self.start_batch = 0
        # every clip's frame count, read once here (in the main process, before workers start)
        counts, self.setup_skips = self.crops.frame_counts()
        self.windows: list[list[Window]] = clip_windows(counts, self.sampling.pairs_per_visit)
        self._streams: WindowStreams | None = None
        self._reset_caches()

    @classmethod
    def from_shards(
        cls,
        root: str,
        transform: CropTransform,
        cache_dir: str | None = None,
        cache_gb: float = DEFAULT_CACHE_GB,
        **kwargs,
    ) -> VideoPairStream:
        """The stream of a crop-shard folder (local or a URL) written by ``isr-lightning extract``.

        Args:
            root: the shard folder.
            transform: crop transform (stored crops are resized to its ``image_size`` only
                when the sizes differ).
            cache_dir: where the chunks of a folder on object storage are copied
                (:class:`~isr_lightning.data.shards.ShardCrops`).
            cache_gb: the size that copy is kept under.
            **kwargs: the other :class:`VideoPairStream` options.
        """
        from isr_lightning.data.shards import ShardCrops

        sampling, boxes = kwargs.get("sampling") or PairSampling(), kwargs.get("boxes") or BoxSelection()
        image_size = transform.for_model(None).image_size
        crops = ShardCrops(str(root), image_size, boxes, sampling, cache_dir=cache_dir, cache_gb=cache_gb)
        return cls(crops.shard_index.clip_list(), transform, crops=crops, **kwargs)

    def _reset_caches(self) -> None:
        # open readers hold decoder handles and file offsets: never share them across processes
        self._pid: int | None = os.getpid()
        self._visit: tuple[tuple, _Visit] | None = None
        self._bad: dict[int, str] = {}  # clip -> why it gives no pair
        self._bad_windows: set[tuple[int, int]] = set()  # (clip, start) of windows that do not decode
        self._counted: set[int] = set()  # clips whose skip was counted and logged
        self._kept: dict[int, tuple[tuple[int, int], dict[int, Tensor]]] = {}  # stream -> ((epoch, clip), crops)
        self._warn.keys.clear()

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __getstate__(self) -> dict:
        # the crop source drops its open files itself: workers (fork or spawn) reopen their own
        state = self.__dict__.copy()
        state["_visit"], state["_kept"] = None, {}
        state["_bad"], state["_bad_windows"], state["_counted"], state["_pid"] = {}, set(), set(), None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (reseeds clip order and draws)."""
        self.epoch = int(epoch)

    def streams_per_worker(self, workers: int) -> int:
        """Streams each of ``workers`` readers (ranks x loader workers) owns.

        ``open_clips``, or fewer (a multiple of ``clips_per_batch``, at least one multiple)
        when the corpus has fewer windows.
        """
        cpb = self.clips_per_batch
        windows = sum(len(w) for w in self.windows)
        return max(cpb, min(self.open_clips, windows // max(1, workers) // cpb * cpb))

    def batches_per_visit(self, workers: int) -> int:
        """Batches one visit of a worker's streams fills."""
        return self.sampling.pairs_per_visit * self.streams_per_worker(workers) // self.clips_per_batch

    def streams(self, num_streams: int) -> WindowStreams:
        """The corpus's windows cut into ``num_streams`` streams."""
        if self._streams is None or self._streams.num_streams != num_streams:
            self._streams = WindowStreams(self.windows, num_streams, self.seed)
        return self._streams

    def worker_windows(self, epoch: int, shard: Shard, visit: int) -> list[Window | None]:
        """The window each stream of ``shard`` decodes at ``visit`` (before bad windows are passed over)."""
        spw = self.streams_per_worker(shard.count)
        streams = self.streams(shard.count * spw)
        return [streams.window(epoch, shard.stream(k, spw), visit) for k in range(spw)]

    # ------------------------------------------------------------------ sampling
    def _rows(self, epoch: int, clip: int, frame: int, fb: FrameBoxes) -> np.ndarray:
        """Rows of a frame's boxes that become crops: all, or ``max_crops_per_pair // 2`` drawn once per frame."""
        cap = None if self.sampling.max_crops_per_pair is None else self.sampling.max_crops_per_pair // 2
        if cap is None or len(fb) <= cap:
            return np.arange(len(fb))
        rng = np.random.default_rng([self.seed, epoch, clip, frame, 0xC20])
        return np.sort(rng.choice(len(fb), size=cap, replace=False))

    def _stream_part(
        self, epoch: int, stream: int, visit: int, rng: np.random.Generator, skipped: Counter[str]
    ) -> _StreamVisit | None:
        """The pairs and crops of ``stream`` at ``visit``: its window's, or the next window's that gives any.

        A clip whose files cannot be indexed is passed over from then on; a window that cannot
        be decoded (a truncated file) only itself. Each is counted and logged once per clip.
        """
        streams = self._streams
        assert streams is not None
        for step in range(streams.visits_per_round):
            window = streams.window(epoch, stream, visit + step)
            if window is None:
                return None
            if window.clip in self._bad or (window.clip, window.start) in self._bad_windows:
                continue
            try:
                pairs = self.crops.clip_index(window.clip).window_pairs(window.start, window.stop, rng)
                if not pairs:
                    continue
                part = _StreamVisit(stream, window.clip, window, pairs)
                part.crops = self._read_crops(epoch, part)
                return part
            except SkipItem as err:
                if err.reason == "unreadable_video" and window.clip not in self._bad:
                    self._bad_windows.add((window.clip, window.start))  # the rest of the clip may decode
                else:
                    self._bad[window.clip] = err.reason
                if window.clip not in self._counted:
                    self._counted.add(window.clip)
                    skipped[err.reason] += 1
                    source = self.clips[window.clip].source
                    self._warn(source, f"[{err.reason}] clip {source}: {err}")
        return None

    def _read_crops(self, epoch: int, part: _StreamVisit) -> dict[int, Tensor]:
        """Crops of every frame of the part's pairs: kept from the stream's last visits, or decoded now."""
        key = (epoch, part.clip)
        kept = self._kept.get(part.stream)
        have = kept[1] if kept is not None and kept[0] == key else {}
        index = self.crops.clip_index(part.clip)
        wanted = {f for pair in part.pairs for f in pair}
        if any(f < part.window.start and f not in have for f in wanted):
            # a stream that starts inside a clip: decode the partners' whole reach once (the decoder
            # passes through it anyway), so its next windows find their partners kept, not behind it
            back = index.valid[(index.valid >= part.window.start - index.reach) & (index.valid < part.window.start)]
            wanted.update(int(f) for f in back if f % index.grid == 0)
        missing = sorted(f for f in wanted if f not in have)
        requests = [(f, self._rows(epoch, part.clip, f, index.frames[f])) for f in missing]
        crops = dict(have)
        if requests:
            crops.update(zip(missing, self.crops.read(part.clip, requests, cursor=part.stream), strict=True))
        # keep what the next window's frames may pair with: the grid frames within reach of its start
        recent = {f: c for f, c in crops.items() if f >= part.window.stop - index.reach and f % index.grid == 0}
        self._kept[part.stream] = (key, recent)
        return crops

    def _plan_visit(self, epoch: int, shard: Shard, visit: int) -> _Visit:
        """The pairs of visit ``visit`` of ``shard``'s streams, shuffled over the visit's batches."""
        cpb, spw = self.clips_per_batch, self.streams_per_worker(shard.count)
        self.streams(shard.count * spw)
        rng = np.random.default_rng([self.seed, epoch, shard.rank, shard.worker, visit, 0x715])
        skipped: Counter[str] = Counter()
        if shard.index == 0 and visit == 0:  # clips that cannot be opened at all: counted once per epoch
            skipped.update(err.reason for err in self.setup_skips.values())
            for index, err in self.setup_skips.items():
                source = self.clips[index].source
                self._warn(source, f"[{err.reason}] clip {source}: {err}")
        parts = [self._stream_part(epoch, shard.stream(k, spw), visit, rng, skipped) for k in range(spw)]
        live = [part for part in parts if part is not None]
        if not live:
            reasons = Counter([*self._bad.values(), *(err.reason for err in self.setup_skips.values())])
            raise RuntimeError(
                f"no usable clip in shard (rank {shard.rank}, worker {shard.worker}) of {len(self.clips)} clips; "
                f"reasons: {dict(reasons)}; first: {self.clips[0].source}"
            )
        slots = [part or live[k % len(live)] for k, part in enumerate(parts)]  # a dry stream's slot: a live one
        # at each turn every stream gives one pair, to one of the turn's batches (cpb streams each);
        # lane l of a batch takes its pair from the batch's stream l % cpb
        layout: list[list[_StreamVisit]] = []
        for _ in range(self.sampling.pairs_per_visit):
            order = rng.permutation(spw)
            for first in range(0, spw, cpb):
                chosen = [slots[k] for k in order[first : first + cpb]]
                layout.append([chosen[lane % cpb] for lane in range(self.batch_size)])
        need = Counter(part.stream for lanes in layout for part in lanes)
        queues: dict[int, list[tuple[int, int]]] = {}
        for part in live:
            order = rng.permutation(len(part.pairs)).tolist()
            order += rng.integers(len(part.pairs), size=max(0, need[part.stream] - len(order))).tolist()
            queues[part.stream] = [part.pairs[i] for i in order[: need[part.stream]]]  # a short window repeats
        batches = [[self._resized_pair(epoch, part, *queues[part.stream].pop()) for part in lanes] for lanes in layout]
        return _Visit(batches, skipped)

    def _resized_pair(self, epoch: int, part: _StreamVisit, t: int, u: int) -> _ResizedPair:
        index = self.crops.clip_index(part.clip)
        rows = [self._rows(epoch, part.clip, f, index.frames[f]) for f in (t, u)]
        boxes = (index.frames[t].select(rows[0]), index.frames[u].select(rows[1]))
        return _ResizedPair(part.clip, (part.crops[t], part.crops[u]), boxes, (t, u))

    def _sample(self, pair: _ResizedPair, crops: tuple[Tensor, Tensor]) -> FramePairSample:
        fa, fb = pair.boxes
        return FramePairSample(
            crops=crops,
            boxes=(torch.from_numpy(fa.boxes.copy()), torch.from_numpy(fb.boxes.copy())),
            track_ids=(torch.from_numpy(fa.ids.copy()), torch.from_numpy(fb.ids.copy())),
            clip_index=pair.clip,
            frame_ids=pair.frame_ids,
            video_index=self.video_index[pair.clip],
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
        visit, turn = divmod(b // num_workers, self.batches_per_visit(shard.count))
        key = (epoch, shard, visit)
        if self._visit is None or self._visit[0] != key:
            self._visit = (key, self._plan_visit(epoch, shard, visit))
        planned = self._visit[1]
        gen = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, epoch, rank, b]).integers(2**62)))
        pairs = planned.batches[turn]
        crops = self._augment(pairs, gen)
        samples = [self._sample(pair, views) for pair, views in zip(pairs, crops, strict=True)]
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
        if info is None and rank_and_world_size()[1] > 1:  # iterated in the main process under DDP
            rank, world_size = rank_and_world_size()
        for b in range(self.start_batch + worker, self.batches_per_epoch, num_workers):
            yield self.make_batch(self.epoch, rank, world_size, num_workers, b)
