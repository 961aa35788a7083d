"""Crop shards: person crops stored once by ``isr-lightning extract``, read by random access.

A shard folder ``OUT`` (local, or a URL such as ``s3://bucket/prefix``) holds

* ``chunks/`` (one ``chunks-RANK/`` per machine when several extracted it): a LitData
  dataset (``index.json`` + ``chunk-*.bin``), one item per kept frame: ``{"clip", "frame",
  "timestamp", "fps", "width", "height", "crops", "boxes", "scores", "ids"}`` with ``crops``
  ``(K, 3, H, W)`` uint8 at the stored size, or, when extracted with a JPEG quality, the
  bytes of one JPEG of the ``K`` crops stacked vertically (:func:`encode_crops`; about 10x
  smaller, lossy);
* ``boxes.npz``: the same boxes as flat arrays (``frame_item``, ``frame_number``,
  ``box_start``, ``boxes``, ``scores``, ``ids``), so training indexes a clip without reading
  its crops;
* ``isr-crops.json`` (:data:`SHARD_INDEX`, written last: its presence marks a complete
  folder): the options of the extraction and, per clip, its id, source, frame rate, size,
  frame count, its range of frames in ``boxes.npz`` (their items are consecutive), the chunk
  folder holding its items, or why it was skipped.

:class:`ShardCrops` is the :class:`~isr_lightning.data.crop_source.CropSource` of such a
folder: it filters the stored boxes with the training ``score_threshold`` and
``min_box_size``, indexes the frames exactly as the video source does, and reads the crops of
the requested frames from the chunks (resized only when the training size differs from the
stored one). The chunks of a folder on object storage are fetched on first use into a bounded
local copy (:class:`~isr_lightning.storage.FileCache`).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from isr_lightning.data.clip_index import BoxSelection, ClipIndex, PairSampling, SkipItem
from isr_lightning.data.crop_source import LRU, CropRequest
from isr_lightning.data.mot import FrameBoxes, clip_boxes
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import resize_crops
from isr_lightning.storage import DEFAULT_CACHE_GB, FileCache, is_url, join, read_bytes, stamp, url_exists

__all__ = [
    "BOXES_FILE",
    "CHUNKS_DIR",
    "SHARD_INDEX",
    "CorruptShardError",
    "ShardCrops",
    "ShardIndex",
    "decode_crops",
    "encode_crops",
    "is_shard_folder",
]

log = logging.getLogger(__name__)

SHARD_INDEX = "isr-crops.json"
"""The index file of a complete shard folder (how ``--data.root`` recognises one)."""
CHUNKS_DIR = "chunks"
BOXES_FILE = "boxes.npz"
FORMAT_VERSION = 1


class CorruptShardError(RuntimeError):
    """A file of a shard folder is missing, truncated or disagrees with the index."""


def encode_crops(crops: Tensor, quality: int) -> np.ndarray:
    """One JPEG of a frame's crops, stacked vertically (one encode and one decode per frame).

    Args:
        crops: ``(K, 3, H, W)`` uint8, ``K >= 1``; with ``H`` a multiple of 16 no JPEG block
            spans two crops.
        quality: JPEG quality, 1 to 100 (Pillow, libjpeg-turbo).

    Returns:
        ``(N,)`` uint8: the JPEG file's bytes.
    """
    from PIL import Image

    k, c, h, w = crops.shape
    stacked = crops.permute(0, 2, 3, 1).reshape(k * h, w, c).numpy()
    buffer = io.BytesIO()
    Image.fromarray(stacked).save(buffer, format="JPEG", quality=quality)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def decode_crops(data: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The crops of :func:`encode_crops`: ``(N,)`` bytes -> ``(K, 3, H, W)`` uint8 (``size = (H, W)``)."""
    from PIL import Image

    stacked = np.asarray(Image.open(io.BytesIO(data.tobytes())).convert("RGB"))
    total, w, c = stacked.shape
    return stacked.reshape(total // size[0], size[0], w, c).transpose(0, 3, 1, 2)


def is_shard_folder(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` (a local folder or a URL) holds a shard index (:data:`SHARD_INDEX`)."""
    if is_url(root):
        return url_exists(join(str(root), SHARD_INDEX))
    return (Path(root) / SHARD_INDEX).is_file()


@dataclass
class ShardIndex:
    """The index of a shard folder.

    Attributes:
        root: the folder.
        meta: the extraction's options (``size``, ``selection``, ``fps_cap``...).
        clips: per clip: ``clip_id``, ``source``, ``kind``, ``fps``, ``width``, ``height``,
            ``num_frames``, ``frames`` (``[start, stop)`` into the frame arrays), ``skip``
            (``None`` or ``[reason, message]``).
        arrays: ``frame_item (F,)``, ``frame_number (F,)``, ``box_start (F + 1,)``,
            ``boxes (B, 4)``, ``scores (B,)``, ``ids (B,)``.
        version: for a folder on object storage, the :func:`~isr_lightning.storage.stamp` of
            its index, which changes when the folder is extracted again (``""`` when local).
    """

    root: str
    meta: dict[str, Any]
    clips: list[dict[str, Any]]
    arrays: dict[str, np.ndarray]
    version: str = ""

    @classmethod
    def read(cls, root: str | os.PathLike[str]) -> ShardIndex:
        """Read the index of a shard folder.

        Raises:
            CorruptShardError: the index or the box arrays are missing or unreadable.
        """
        path = join(str(root), SHARD_INDEX)
        try:
            version = stamp(path) if is_url(path) else ""
            data = json.loads(read_bytes(path))
            with np.load(io.BytesIO(read_bytes(join(str(root), BOXES_FILE)))) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as err:
            raise CorruptShardError(f"cannot read shard folder {root}: {err}") from err
        if data.get("format") != FORMAT_VERSION:
            raise CorruptShardError(f"{path}: format {data.get('format')!r}, expected {FORMAT_VERSION}")
        return cls(str(root), data["meta"], data["clips"], arrays, version)

    @property
    def size(self) -> tuple[int, int]:
        """Stored crop size ``(H, W)``."""
        return int(self.meta["size"][0]), int(self.meta["size"][1])

    def clip_list(self) -> list[Clip]:
        """The corpus's clips (id, source, kind, frame rate), in index order."""
        return [
            Clip(c["clip_id"], c["source"], kind=c["kind"], fps=c["fps"], num_frames=c["num_frames"])
            for c in self.clips
        ]

    def frames(self, index: int) -> tuple[np.ndarray, np.ndarray, list[FrameBoxes]]:
        """Frame numbers ``(F,)``, items ``(F,)`` and stored boxes of clip ``index``'s kept frames."""
        lo, hi = self.clips[index]["frames"]
        a = self.arrays
        starts = a["box_start"][lo : hi + 1]
        boxes = [
            FrameBoxes(a["boxes"][s:e], a["ids"][s:e], a["scores"][s:e])
            for s, e in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)
        ]
        return a["frame_number"][lo:hi], a["frame_item"][lo:hi], boxes


@dataclass
class _ShardClip:
    index: ClipIndex
    item: dict[int, int]  # frame -> item
    stored: dict[int, np.ndarray]  # frame -> stored crop positions of the ClipIndex's boxes


class _Chunks:
    """Random access to the items of a LitData folder, naming the chunk file of any failure.

    A remote folder is read through a :class:`~isr_lightning.storage.FileCache`: its
    ``index.json`` and each chunk file are fetched on first use, and LitData reads the local copy.
    """

    def __init__(self, folder: str, cache: FileCache | None = None) -> None:
        from litdata import StreamingDataset

        self.folder, self.cache = folder, cache
        self._checked: set[str] = set()  # chunk files of the local copy whose size was checked
        local = str(cache.folder) if cache is not None else folder
        index_file = cache.path("index.json") if cache is not None else os.path.join(folder, "index.json")
        try:
            with open(index_file) as f:
                self.chunks = json.load(f)["chunks"]
        except (OSError, ValueError, KeyError) as err:
            raise CorruptShardError(f"cannot read {join(folder, 'index.json')}: {err}") from err
        if cache is None:
            for chunk in self.chunks:
                self._check_size(chunk, os.path.join(folder, chunk["filename"]))
        self.ends = np.cumsum([c["chunk_size"] for c in self.chunks])
        self.dataset = StreamingDataset(input_dir=local, batch_decode=0)  # random access: one item at a time

    def _check_size(self, chunk: dict[str, Any], path: str) -> None:
        size = os.path.getsize(path) if os.path.isfile(path) else None
        if size != chunk["chunk_bytes"]:
            found = "missing" if size is None else f"{size} bytes, index says {chunk['chunk_bytes']}"
            raise CorruptShardError(f"corrupt chunk file {join(self.folder, chunk['filename'])}: {found}")

    def _chunk_of(self, item: int) -> dict[str, Any]:
        return self.chunks[int(np.searchsorted(self.ends, item, side="right"))]

    def file_of(self, item: int) -> str:
        """The chunk file holding ``item``."""
        return join(self.folder, self._chunk_of(item)["filename"])

    def __getitem__(self, item: int) -> dict[str, Any]:
        attempts = 1 if self.cache is None else 2  # a second: another process evicted the chunk meanwhile
        for attempt in range(attempts):
            if self.cache is not None:
                self._fetch(self._chunk_of(item))
            try:
                return self.dataset[int(item)]
            except Exception as err:  # litdata raises whatever its deserialiser hits
                if attempt == attempts - 1:
                    raise CorruptShardError(f"corrupt chunk file {self.file_of(item)}: item {item}: {err!r}") from err
        raise AssertionError("unreachable")

    def _fetch(self, chunk: dict[str, Any]) -> None:
        """Make the local copy hold ``chunk``; its size is checked once per process."""
        assert self.cache is not None
        path = self.cache.path(chunk["filename"])
        if chunk["filename"] not in self._checked:
            self._check_size(chunk, path)
            self._checked.add(chunk["filename"])


class ShardCrops:
    """Crops read from a shard folder (a :class:`~isr_lightning.data.crop_source.CropSource`).

    Args:
        root: the shard folder.
        image_size: training crop size ``(H, W)`` (stored crops are resized with
            :func:`~isr_lightning.data.transforms.resize_crops` when it differs).
        boxes: the training's box options: ``score_threshold`` and ``min_box_size`` filter the
            stored boxes; the others were fixed at extraction (a warning says when they differ).
        sampling: which frames can be sampled (and how far apart a pair's are).
        index_cache: clips whose indexed boxes are kept.
        cache_dir: where the chunks of a shard folder on object storage are copied (``None``:
            :func:`~isr_lightning.storage.default_cache_dir` ``/store``); shared by the
            processes of a machine.
        cache_gb: the size the local copy is kept under (least recently used chunks go first).

    Raises:
        CorruptShardError: the folder's index cannot be read.
    """

    def __init__(
        self,
        root: str,
        image_size: tuple[int, int],
        boxes: BoxSelection,
        sampling: PairSampling,
        index_cache: int = 256,
        cache_dir: str | None = None,
        cache_gb: float = DEFAULT_CACHE_GB,
    ) -> None:
        self.root = str(root)
        self.shard_index = ShardIndex.read(root)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.boxes = boxes
        self.sampling = sampling
        self.index_cache = index_cache
        self.cache_dir, self.cache_gb = cache_dir, cache_gb
        self.jpeg = self.shard_index.meta.get("jpeg_quality")  # None: raw uint8 crops
        stored = self.shard_index.meta["selection"]
        for key in ("source", "gt_classes", "min_visibility", "gt_iou"):
            want = getattr(boxes, key)
            have = tuple(stored[key]) if isinstance(stored[key], list) else stored[key]
            if want != have:
                log.warning("shards %s were extracted with %s=%r (training asks %r)", root, key, have, want)
        self.reset()

    def reset(self) -> None:
        """Drop the open chunks and indexed clips."""
        self._chunks: dict[str, _Chunks] = {}  # chunk folder -> its open items
        self._clips: LRU = LRU(self.index_cache)  # clip -> _ShardClip

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_chunks": {}}  # each process opens the chunks itself

    def _clip(self, index: int) -> _ShardClip:
        return self._clips.get_or_make(index, lambda: self._index_clip(index))

    def _index_clip(self, index: int) -> _ShardClip:
        entry = self.shard_index.clips[index]
        if entry["skip"] is not None:
            raise SkipItem(entry["skip"][0], entry["skip"][1])
        numbers, items, stored = self.shard_index.frames(index)
        frames, positions = {}, {}
        thr, min_size = self.boxes.score_threshold, self.boxes.min_box_size
        for f, fb in zip(numbers.tolist(), stored, strict=True):
            _, keep = clip_boxes(fb.boxes, entry["width"], entry["height"], min_size)
            if thr is not None:
                keep &= fb.scores >= thr
            rows = np.flatnonzero(keep)
            frames[f], positions[f] = fb.select(rows), rows
        parsed = self.sampling.index_clip(frames, entry["fps"], entry["num_frames"], entry["source"])
        return _ShardClip(parsed, dict(zip(numbers.tolist(), items.tolist(), strict=True)), positions)

    def frame_counts(self) -> tuple[list[int], dict[int, SkipItem]]:
        """Frames of every clip, from the index.

        As from video, a clip whose video could not be opened at extraction has none; one skipped
        for its boxes keeps its frames and is skipped when it is indexed.
        """
        counts, skips = [], {}
        for i, entry in enumerate(self.shard_index.clips):
            if entry["skip"] is not None and entry["skip"][0] == "unreadable_video":
                skips[i] = SkipItem(*entry["skip"])
                counts.append(0)
            else:
                counts.append(int(entry.get("num_frames") or 0))
        return counts, skips

    def clip_index(self, index: int) -> ClipIndex:
        """The sampleable frames of clip ``index`` (from the stored boxes, filtered)."""
        return self._clip(index).index

    def _chunks_of(self, index: int) -> _Chunks:
        """The chunk folder holding clip ``index``'s items (one per extracting machine), opened once."""
        name = self.shard_index.clips[index].get("chunks", CHUNKS_DIR)
        if name not in self._chunks:
            folder = join(self.root, name)
            cache = None
            if is_url(folder):
                limit, version = self.cache_gb * 1e9, self.shard_index.version
                cache = FileCache(folder, self.cache_dir, limit, pinned=("index.json",), version=version)
            self._chunks[name] = _Chunks(folder, cache)
        return self._chunks[name]

    def _decode(self, data: np.ndarray, chunks: _Chunks, item: int) -> np.ndarray:
        try:
            return decode_crops(data, self.shard_index.size)
        except (OSError, ValueError) as err:  # Pillow: not a JPEG, truncated, or the wrong size
            raise CorruptShardError(f"corrupt chunk file {chunks.file_of(item)}: item {item}: {err}") from err

    def read(self, index: int, requests: Sequence[CropRequest], cursor: int = 0) -> list[Tensor]:
        """Read the requested frames' items and take the crops of the requested boxes (random access: no cursor)."""
        clip, chunks = self._clip(index), self._chunks_of(index)
        items: dict[int, np.ndarray] = {}
        for f in sorted({f for f, _ in requests}):
            item = chunks[clip.item[f]]
            if (int(item["clip"]), int(item["frame"])) != (index, f):
                raise CorruptShardError(
                    f"{chunks.file_of(clip.item[f])}: item {clip.item[f]} is clip {int(item['clip'])} frame "
                    f"{int(item['frame'])}, the index says clip {index} frame {f}"
                )
            items[f] = item["crops"] if self.jpeg is None else self._decode(item["crops"], chunks, clip.item[f])
        out = []
        for f, rows in requests:
            crops = items[f][clip.stored[f][rows]]
            if crops.shape[2:] == self.image_size:
                out.append(torch.from_numpy(np.ascontiguousarray(crops)))
            else:
                out.append(resize_crops([c.transpose(1, 2, 0) for c in crops], self.image_size))
        return out
