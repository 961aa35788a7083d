"""Where a clip's crops come from: the one interface between the frame-pair stream and its data.

:class:`~isr_lightning.data.stream.VideoPairStream` samples frame pairs the same way whatever
the data is; a :class:`CropSource` gives it, for clip ``i``, the frames it can sample
(:meth:`CropSource.clip_index`) and the resized uint8 crops of chosen boxes of chosen frames
(:meth:`CropSource.read`). Two implementations:

* :class:`VideoCrops` decodes the video (all frames of a visit in one sorted call) and cuts
  and resizes the boxes;
* :class:`~isr_lightning.data.shards.ShardCrops` reads crops stored by ``isr-lightning
  extract`` from LitData chunks.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from torch import Tensor

from isr_lightning.data.clip_index import BoxSelection, ClipIndex, PairSampling, SkipItem, read_clip_boxes
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import crop_boxes, resize_crops
from isr_lightning.data.video import DEFAULT_VIDEO_BACKEND, FrameReader, UnreadableVideoError, open_reader

__all__ = ["LRU", "CropRequest", "CropSource", "VideoCrops", "WarnOnce"]

log = logging.getLogger(__name__)

CropRequest = tuple[int, np.ndarray]
"""``(MOT frame number, (K,) int64 rows of that frame's boxes in the clip's ClipIndex)``."""


class LRU(OrderedDict):
    """A mapping that keeps its ``maxsize`` most recently used entries (open readers, parsed clips)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        """The entry of ``key`` (now the most recent), made by ``make()`` when absent."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        while len(self) > self.maxsize:
            self.popitem(last=False)
        return value

    def __reduce__(self) -> tuple:
        return (type(self), (self.maxsize,))  # a copy for another process starts empty


class WarnOnce:
    """Logs a skip once per key (a clip is reported once per process, not at every visit)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self, key: str, message: str) -> None:
        """Log ``message`` as a warning unless ``key`` was logged before."""
        if key not in self.keys:
            self.keys.add(key)
            log.warning("skipping: %s", message)

    def __getstate__(self) -> dict:
        return {"keys": set()}


class CropSource(Protocol):
    """Where the crops of a corpus's clips come from."""

    def frame_counts(self) -> tuple[list[int], dict[int, SkipItem]]:
        """Frames of every clip (0 for one that cannot be opened), and why those cannot."""
        ...

    def clip_index(self, index: int) -> ClipIndex:
        """The sampleable frames of clip ``index``.

        Raises:
            SkipItem: the clip gives no frame pair.
        """
        ...

    def read(self, index: int, requests: Sequence[CropRequest], cursor: int = 0) -> list[Tensor]:
        """Crops of clip ``index``: one ``(K, 3, H, W)`` uint8 tensor per request, in order.

        ``cursor`` names who reads (a stream): a source that decodes keeps one position per cursor.

        Raises:
            SkipItem: the clip's frames cannot be read.
        """
        ...

    def reset(self) -> None:
        """Forget open files and caches (a new process reopens its own)."""
        ...


class VideoCrops:
    """Crops decoded from the videos: one sorted, forward decode call per read, one reader per stream and clip.

    Args:
        clips: the corpus.
        image_size: crop size ``(H, W)``.
        boxes: which boxes of a clip's files become crops.
        sampling: which frames can be sampled (and how far apart a pair's are).
        warn: ``warn(key, message)`` logs a message once per key (default: a :class:`WarnOnce`).
        decode_threads: decoder threads per reader.
        reader_cache: open readers kept (one per stream and clip).
        index_cache: clips whose parsed boxes are kept (files are parsed once per clip even
            when its reader is reopened).
        video_backend: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"``.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        image_size: tuple[int, int],
        boxes: BoxSelection,
        sampling: PairSampling,
        warn: Callable[[str, str], None] | None = None,
        decode_threads: int = 1,
        reader_cache: int = 16,
        index_cache: int = 256,
        video_backend: str = DEFAULT_VIDEO_BACKEND,
    ) -> None:
        self.clips = list(clips)
        self.image_size = tuple(image_size)
        self.boxes = boxes
        self.sampling = sampling
        self.warn = warn or WarnOnce()
        self.decode_threads = decode_threads
        self.reader_cache = reader_cache
        self.index_cache = index_cache
        self.video_backend = video_backend
        self.reset()

    def reset(self) -> None:
        """Drop open readers and parsed boxes."""
        self._open: LRU = LRU(self.reader_cache)  # (cursor, clip) -> reader
        self._index: LRU = LRU(self.index_cache)  # clip -> ClipIndex

    def frame_counts(self) -> tuple[list[int], dict[int, SkipItem]]:
        """Open every clip once (a few threads) to read its frame count; see :class:`CropSource`."""
        from concurrent.futures import ThreadPoolExecutor

        def count(index: int) -> int | SkipItem:
            try:
                return open_reader(self.clips[index], 1, self.video_backend).num_frames
            except UnreadableVideoError as err:
                return SkipItem("unreadable_video", str(err))

        if len(self.clips) > 100:
            log.info("reading the frame counts of %d clips", len(self.clips))
        with ThreadPoolExecutor(max_workers=min(8, len(self.clips))) as pool:
            results = list(pool.map(count, range(len(self.clips))))
        skips = {i: r for i, r in enumerate(results) if isinstance(r, SkipItem)}
        return [0 if isinstance(r, SkipItem) else r for r in results], skips

    def _reader(self, index: int, cursor: int) -> FrameReader:
        """The open reader of clip ``index`` for ``cursor`` (a stream reading the clip forward)."""

        def open_clip() -> FrameReader:
            try:
                return open_reader(self.clips[index], self.decode_threads, self.video_backend)
            except UnreadableVideoError as err:
                raise SkipItem("unreadable_video", str(err)) from err

        return self._open.get_or_make((cursor, index), open_clip)

    def clip_index(self, index: int) -> ClipIndex:
        """The sampleable frames of clip ``index`` (its files parsed once, then kept)."""

        def parse() -> ClipIndex:
            clip, reader = self.clips[index], self._reader(index, cursor=0)
            frames = read_clip_boxes(clip, reader.width, reader.height, reader.num_frames, self.boxes, self.warn)
            times = reader.timestamps()
            return self.sampling.index_clip(frames, reader.fps, reader.num_frames, clip.source, times)

        return self._index.get_or_make(index, parse)

    def read(self, index: int, requests: Sequence[CropRequest], cursor: int = 0) -> list[Tensor]:
        """Decode the requested frames in one sorted call, cut the boxes, resize them.

        Each ``cursor`` has its own reader of the clip, so two streams reading one clip at two
        places each decode forward from where they stopped instead of seeking back and forth.
        """
        index_of = self.clip_index(index)
        reader = self._reader(index, cursor)
        needed = sorted({f for f, _ in requests})
        try:
            decoded = reader.get_frames([f - 1 for f in needed])
        except (UnreadableVideoError, IndexError) as err:
            self._open.pop((cursor, index), None)
            raise SkipItem("unreadable_video", str(err)) from err
        frame = dict(zip(needed, decoded, strict=True))
        return [
            resize_crops(crop_boxes(frame[f], index_of.frames[f].boxes[rows]), self.image_size) for f, rows in requests
        ]
