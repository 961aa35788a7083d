"""``isr-lightning extract``: decode a corpus once and store its person crops as LitData shards.

Each clip is decoded once, forward, in chunks of sorted frames; every kept frame (a frame
with at least one box, at most ``--fps`` frames per second) becomes one LitData item with its
crops resized to the stored size (:func:`~isr_lightning.data.transforms.resize_crops`, uint8)
and its boxes. All boxes of at least 1 pixel are stored, so training still applies its own
``score_threshold`` and ``min_box_size``. The format is described in
:mod:`isr_lightning.data.shards`.

Writing uses :func:`litdata.optimize` with ``--workers`` processes, each taking a fixed,
ordered slice of the clips; every worker also logs the clips it wrote, in order, so the index
knows which items belong to which clip. The output is deterministic for a given
``--workers``. A rerun on a complete folder says so and exits 0; a rerun on an interrupted
one (no index yet) deletes what the interrupted run wrote and starts again.

The output may be a URL (``s3://bucket/prefix``): the chunks are written to a local staging
folder and uploaded, then ``boxes.npz``, then the index. Several machines may share an
extraction (``--num_nodes``, ``--node_rank``): each extracts its slice of the clips into its
own chunk folder and leaves its clips' records in ``parts/``; node 0 writes the one index.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isr_lightning.data.clip_index import BoxSelection, SkipItem, label_boxes, read_clip_boxes, read_ground_truth
from isr_lightning.data.detectors import Detector
from isr_lightning.data.mot import FrameBoxes
from isr_lightning.data.shards import (
    BOXES_FILE,
    CHUNKS_DIR,
    FORMAT_VERSION,
    SHARD_INDEX,
    ShardIndex,
    encode_crops,
    is_shard_folder,
)
from isr_lightning.data.sources import Clip, discover_clips, local_path
from isr_lightning.data.transforms import crop_boxes, resize_crops
from isr_lightning.data.video import DEFAULT_VIDEO_BACKEND, FrameReader, UnreadableVideoError, open_reader
from isr_lightning.progress import Progress
from isr_lightning.storage import is_url, join, read_bytes, remove, upload_folder, url_exists, write_bytes

__all__ = ["extract", "extract_corpus", "kept_frames"]

log = logging.getLogger(__name__)

WORK_DIR = ".extract"
"""Where an extraction in progress keeps its worker logs and LitData cache (removed at the end)."""
PARTS_DIR = "parts"
"""Where each machine of a multi-machine extraction leaves the records of its clips for node 0."""
_PER_MACHINE = ("workers", "corpus")  # options that may differ between the machines of one extraction


def kept_frames(frames: list[int], fps: float, fps_cap: float | None) -> list[int]:
    """The MOT frame numbers an extraction keeps.

    Args:
        frames: sorted frame numbers with at least one box.
        fps: the clip's frame rate.
        fps_cap: at most this many frames per second (the first frame of each ``1 / fps_cap``
            slot of the video's frame grid); ``None`` keeps all.

    Returns:
        The kept frame numbers, sorted.
    """
    if fps_cap is None or fps_cap >= fps:
        return list(frames)
    slot = [int(np.floor((f - 1) * fps_cap / fps + 1e-9)) for f in frames]
    first = {s: int(np.ceil(s * fps / fps_cap - 1e-9)) + 1 for s in set(slot)}  # first frame of the slot
    return [f for f, s in zip(frames, slot, strict=True) if f == first[s]]


class _ExtractClip:
    """The LitData ``fn``: clip number -> its items (a generator), logged per worker."""

    def __init__(
        self, clips: list[Clip], work: str, size: tuple[int, int], selection: BoxSelection, args: dict[str, Any]
    ) -> None:
        self.clips, self.work, self.size, self.selection, self.args = clips, work, size, selection, args

    def __call__(self, index: int):
        clip = self.clips[index]
        record: dict[str, Any] = {"clip": index, "items": 0, "frames": [], "skip": None, "decoded": 0}
        try:
            yield from self._items(index, clip, record)
        except SkipItem as err:
            record["skip"] = [err.reason, str(err)]
        finally:
            rank = os.environ.get("DATA_OPTIMIZER_GLOBAL_RANK", "0")
            with open(os.path.join(self.work, f"rank-{int(rank):05d}.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")

    def _stored(self, crops: torch.Tensor) -> np.ndarray:
        quality = self.args["jpeg_quality"]
        return crops.numpy() if quality is None else encode_crops(crops, quality)

    def _items(self, index: int, clip: Clip, record: dict[str, Any]):
        try:
            reader = open_reader(clip, 1, self.args["video_backend"])
        except UnreadableVideoError as err:
            raise SkipItem("unreadable_video", str(err)) from err
        record.update(fps=reader.fps, width=reader.width, height=reader.height, num_frames=reader.num_frames)
        detector = self.args["detector"]
        try:
            boxes = read_clip_boxes(clip, reader.width, reader.height, reader.num_frames, self.selection)
        except SkipItem as err:
            if err.reason != "missing_detections" or detector is None:
                raise
            yield from self._detected_items(index, clip, reader, record)  # no boxes yet: find them in this decode
            return
        keep = kept_frames(sorted(f for f, fb in boxes.items() if len(fb)), reader.fps, self.args["fps"])
        chunk = self.args["chunk"]
        for start in range(0, len(keep), chunk):
            part = keep[start : start + chunk]
            yield from self._frame_items(index, reader, record, part, self._decode(reader, part, record), boxes)

    def _detected_items(self, index: int, clip: Clip, reader: FrameReader, record: dict[str, Any]):
        """Decode every frame once, detect people in it, and store the crops of the kept frames."""
        detector = self.args["detector"]
        detector.reset()
        ground_truth = read_ground_truth(clip, self.selection)
        chunk, found = self.args["chunk"], 0
        for start in range(1, reader.num_frames + 1, chunk):
            part = list(range(start, min(start + chunk, reader.num_frames + 1)))
            decoded = self._decode(reader, part, record)
            raw = {
                f: FrameBoxes(d[:, :4], np.full(len(d), -1, np.int64), d[:, 4])
                for f, d in zip(part, detector(decoded), strict=True)
                if len(d)
            }
            boxes = label_boxes(raw, reader.width, reader.height, reader.num_frames, self.selection, ground_truth)
            found += sum(len(fb) for fb in boxes.values())
            keep = set(kept_frames(sorted(f for f, fb in boxes.items() if len(fb)), reader.fps, self.args["fps"]))
            frames = [f for f in part if f in keep]
            yield from self._frame_items(index, reader, record, frames, decoded[[f - start for f in frames]], boxes)
        record["detected"] = found

    @staticmethod
    def _decode(reader: FrameReader, frames: list[int], record: dict[str, Any]) -> np.ndarray:
        try:
            decoded = reader.get_frames([f - 1 for f in frames])
        except (UnreadableVideoError, IndexError) as err:
            raise SkipItem("unreadable_video", str(err)) from err
        record["decoded"] += len(frames)
        return decoded

    def _frame_items(
        self,
        index: int,
        reader: FrameReader,
        record: dict[str, Any],
        frames: list[int],
        decoded: np.ndarray,
        boxes: dict[int, FrameBoxes],
    ):
        for f, frame in zip(frames, decoded, strict=True):
            fb = boxes[f]
            record["items"] += 1
            record["frames"].append([f, fb.boxes.tolist(), fb.scores.tolist(), fb.ids.tolist()])
            yield {
                "clip": index,
                "frame": f,
                "timestamp": (f - 1) / reader.fps,
                "fps": float(reader.fps),
                "width": int(reader.width),
                "height": int(reader.height),
                "crops": self._stored(resize_crops(crop_boxes(frame, fb.boxes), self.size)),
                "boxes": fb.boxes.astype(np.float32),
                "scores": fb.scores.astype(np.float32),
                "ids": fb.ids.astype(np.int64),
            }


def _part_records(stage: Path, work: Path) -> list[dict[str, Any]]:
    """The clip records of this machine's extraction, in LitData's item order, checked against its chunks."""
    records = []
    for log_file in sorted(work.glob("rank-*.jsonl")):  # LitData merges the workers' chunks in rank order
        records += [json.loads(line) for line in log_file.read_text().splitlines()]
    with open(stage / CHUNKS_DIR / "index.json") as f:
        written = sum(c["chunk_size"] for c in json.load(f)["chunks"])
    logged = sum(r["items"] for r in records)
    if written != logged:
        raise RuntimeError(f"LitData wrote {written} items, the workers logged {logged}: rerun isr-lightning extract")
    return records


def _combine(
    clips: list[Clip], parts: dict[str, list[dict[str, Any]]], meta: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray], Counter]:
    """The shard index and box arrays of all machines' records.

    Args:
        clips: the corpus's clips.
        parts: chunk folder -> the records of the clips written there, in item order.
        meta: the extraction's options.

    Returns:
        The index (``isr-crops.json``), the arrays of ``boxes.npz`` and the skipped clips per reason.
    """
    records: dict[int, dict] = {}
    item_start: dict[int, int] = {}
    folder: dict[int, str] = {}
    for name, part in parts.items():
        total = 0
        for record in part:
            records[record["clip"]], item_start[record["clip"]], folder[record["clip"]] = record, total, name
            total += record["items"]
    missing = [i for i in range(len(clips)) if i not in records]
    if missing:
        raise RuntimeError(f"extraction lost clips {missing[:5]} ({len(missing)}): rerun isr-lightning extract")
    skipped: Counter[str] = Counter()
    meta["decoded_frames"] = sum(records[i].get("decoded", 0) for i in range(len(clips)))
    entries, frame_item, frame_number, box_start = [], [], [], [0]
    boxes, scores, ids = [], [], []
    for i, clip in enumerate(clips):
        r = records[i]
        entry = {
            "clip_id": clip.clip_id,
            "source": clip.source,
            "kind": clip.kind,
            "fps": r.get("fps"),
            "width": r.get("width"),
            "height": r.get("height"),
            "num_frames": r.get("num_frames"),
            "chunks": folder[i],
            "frames": [len(frame_item), len(frame_item)],
            "skip": r["skip"],
        }
        if r["skip"] is not None:
            skipped[r["skip"][0]] += 1
            log.warning("skipping: [%s] clip %s: %s", r["skip"][0], clip.source, r["skip"][1])
        else:
            if not r["frames"]:
                skipped["too_few_people"] += 1
                log.warning("skipping: [too_few_people] clip %s: no frame with a box", clip.source)
            for k, (f, b, s, d) in enumerate(r["frames"]):
                frame_item.append(item_start[i] + k)
                frame_number.append(f)
                boxes += b
                scores += s
                ids += d
                box_start.append(box_start[-1] + len(b))
            entry["frames"][1] = len(frame_item)
        entries.append(entry)
    arrays = {
        "frame_item": np.array(frame_item, dtype=np.int64),
        "frame_number": np.array(frame_number, dtype=np.int64),
        "box_start": np.array(box_start, dtype=np.int64),
        "boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4),
        "scores": np.array(scores, dtype=np.float32),
        "ids": np.array(ids, dtype=np.int64),
    }
    return {"format": FORMAT_VERSION, "meta": meta, "clips": entries}, arrays, skipped


def _write_index(out: str, index: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``boxes.npz``, then the index (last: its presence marks a complete folder)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(join(out, BOXES_FILE), buffer.getvalue())
    write_bytes(join(out, SHARD_INDEX), json.dumps(index, indent=1).encode())


def _wait_for_parts(out: str, num_nodes: int, timeout: float, meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The records of every machine's part, once all are written (polled every 2 s).

    Raises:
        TimeoutError: a part is still missing after ``timeout`` seconds.
        ValueError: a part was written by an extraction with other options (an older run).
    """
    deadline = time.monotonic() + timeout
    names = [join(out, PARTS_DIR, f"{rank}.json") for rank in range(num_nodes)]
    while missing := [name for name in names if not url_exists(name)]:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"after {timeout:.0f} s, {len(missing)} of {num_nodes} machines have not written their part "
                f"({missing[0]}...): run their extraction, then rerun node 0 to write the index"
            )
        time.sleep(2.0)
    parts = {}
    for rank, name in enumerate(names):
        part = json.loads(read_bytes(name))
        theirs, ours = ({k: v for k, v in m.items() if k not in _PER_MACHINE} for m in (part["meta"], meta))
        if theirs != ours:
            raise ValueError(f"{name} was written by an extraction with other options: {theirs} (node 0: {ours})")
        parts[_part_folder(rank, num_nodes)] = part["records"]
    return parts


def _part_folder(node_rank: int, num_nodes: int) -> str:
    """The chunk folder of one machine's part (``chunks`` when one machine extracts)."""
    return CHUNKS_DIR if num_nodes == 1 else f"{CHUNKS_DIR}-{node_rank}"


def _start_output(out: Path) -> Path:
    """Make ``out`` ready for a new extraction; return its work folder.

    An interrupted extraction (its work folder exists) is cleared to start again; a folder
    holding anything else is refused.

    Raises:
        FileExistsError: ``out`` holds something else.
        PermissionError: ``out`` cannot be created or written.
    """
    work = out / WORK_DIR
    if out.exists() and any(out.iterdir()) and not work.is_dir():
        raise FileExistsError(f"{out} is not empty and not a crop-shard folder")
    for stale in (out / CHUNKS_DIR, work, out / BOXES_FILE):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError("not writable")
    except OSError as err:
        raise PermissionError(f"cannot write to {out}: {err}") from err
    (work / "cache").mkdir(parents=True)
    return work


@contextlib.contextmanager
def _optimizer_cache(cache: Path) -> Iterator[None]:
    """Point LitData's optimizer caches into ``cache`` (the environment is restored on exit)."""
    names = {"DATA_OPTIMIZER_CACHE_FOLDER": cache / "chunks", "DATA_OPTIMIZER_DATA_CACHE_FOLDER": cache / "data"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(path) for name, path in names.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _watch_progress(work: Path, num_clips: int) -> Iterator[None]:
    """Show the extraction's progress from the clips the workers log as they finish them."""
    seen: dict[Path, int] = {}
    stop = threading.Event()

    def report(progress: Progress) -> None:
        for log_file in sorted(work.glob("rank-*.jsonl")):
            text = log_file.read_text()
            lines = text.splitlines()
            complete = lines if text.endswith("\n") else lines[:-1]  # the last line may be half written
            for line in complete[seen.get(log_file, 0) :]:
                record = json.loads(line)
                progress.advance(work=record.get("decoded", 0), skipped=int(record["skip"] is not None))
            seen[log_file] = len(complete)

    def watch(progress: Progress) -> None:
        while not stop.wait(1.0):
            report(progress)

    with Progress("extract", total=num_clips, unit="clips", rate_unit="frames decoded") as progress:
        thread = threading.Thread(target=watch, args=(progress,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            report(progress)


def extract_corpus(
    root: str,
    out: str | os.PathLike[str],
    size: tuple[int, int] = (256, 128),
    workers: int = 1,
    fps: float | None = None,
    boxes: BoxSelection | None = None,
    use_gt: bool = True,
    video_backend: str = DEFAULT_VIDEO_BACKEND,
    chunk: int = 32,
    chunk_bytes: str = "64MB",
    jpeg_quality: int | None = None,
    detector: Detector | None = None,
    num_nodes: int = 1,
    node_rank: int = 0,
    staging: str | None = None,
    merge_timeout: float = 86400.0,
) -> dict[str, Any]:
    """Extract the crops of a corpus into a shard folder, local or on object storage.

    With ``num_nodes`` machines, each runs the same command with its ``node_rank`` and
    extracts a contiguous ``1/num_nodes`` of the clips (in sorted order) into its own chunk
    folder ``OUT/chunks-RANK``, then writes the records of its clips to ``OUT/parts/RANK.json``;
    node 0 waits for every part and writes the one index. The crops are those one machine
    would store; only the chunk folder holding them differs.

    Args:
        root: corpus root (anything :func:`~isr_lightning.data.sources.discover_clips` reads).
        out: the shard folder (created; must be empty, an interrupted extraction, or complete),
            or a URL (``s3://bucket/prefix``): chunks are written to a local staging folder and
            uploaded, the index last.
        size: stored crop size ``(H, W)``.
        workers: LitData worker processes.
        fps: at most this many frames per second per clip (``None``: every frame with a box).
        boxes: which boxes (default :class:`BoxSelection`); ``min_box_size`` and
            ``score_threshold`` are forced to ``1`` and ``None``: training applies its own.
        use_gt: read ground-truth files (ids) when present.
        video_backend: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"``.
        chunk: frames decoded per call.
        chunk_bytes: LitData chunk size.
        jpeg_quality: store each frame's crops as one JPEG of this quality (1-100; about 10x
            smaller, lossy: batches then differ slightly from video's); ``None`` (default)
            stores raw uint8, exactly the crops training from video cuts.
        detector: find the people of a clip that has no box file in the same decode that cuts
            its crops (``--detector BackgroundSubtractionDetector``, or ``TorchvisionDetector``
            as for ``isr-lightning detect``): every frame is decoded once, detected, and the
            kept frames' crops stored. ``None``: such a clip is skipped (``missing_detections``).
        num_nodes: machines sharing the extraction (``out`` must be a URL or a shared folder).
        node_rank: this machine's number, ``0`` to ``num_nodes - 1``.
        staging: where chunks are written before upload (``None``: the system's temporary folder).
        merge_timeout: how long node 0 waits for the other machines' parts, in seconds.

    Returns:
        A summary: ``status`` (``"complete"`` when ``out`` was already complete, ``"part"``
        when this machine wrote its part and node 0 writes the index, else ``"extracted"``),
        ``clips``, ``frames`` (stored), ``crops``, ``decoded`` (frames decoded), ``skipped``
        (reason -> clips), ``seconds``, ``bytes`` (written by this machine).

    Raises:
        DataRootError: the corpus root holds no clip.
        FileNotFoundError: the corpus root does not exist.
        FileExistsError: ``out`` holds something else.
        PermissionError: ``out`` cannot be created or written.
        StorageError: ``out`` is a URL that cannot be written.
        TimeoutError: node 0 waited ``merge_timeout`` seconds for a missing part.
    """
    from litdata import optimize

    out = os.fspath(out)
    if not is_url(out):
        out = str(local_path(out, "the shard folder"))
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100] or None, got {jpeg_quality}")
    if not 0 <= node_rank < num_nodes:
        raise ValueError(f"node_rank must be in [0, num_nodes), got node_rank={node_rank}, num_nodes={num_nodes}")
    if is_shard_folder(out):
        index = ShardIndex.read(out)
        return {"status": "complete", "clips": len(index.clips), "frames": len(index.arrays["frame_item"])}
    clips = discover_clips(root, use_gt=use_gt)
    mine = list(range(node_rank * len(clips) // num_nodes, (node_rank + 1) * len(clips) // num_nodes))
    in_place = num_nodes == 1 and not is_url(out)
    stage = Path(out) if in_place else Path(tempfile.mkdtemp(prefix="isr-extract-", dir=staging))
    work = _start_output(stage)
    selection = dataclasses.replace(boxes or BoxSelection(), score_threshold=None, min_box_size=1.0)
    meta = {
        "size": list(size),
        "fps_cap": fps,
        "selection": {
            "source": selection.source,
            "gt_classes": None if selection.gt_classes is None else list(selection.gt_classes),
            "min_visibility": selection.min_visibility,
            "gt_iou": selection.gt_iou,
        },
        "use_gt": use_gt,
        "jpeg_quality": jpeg_quality,
        "detector": None if detector is None else type(detector).__name__,
        "workers": workers,
        "num_nodes": num_nodes,
        "corpus": str(root),
    }
    fn = _ExtractClip(
        clips,
        str(work),
        size,
        selection,
        {
            "fps": fps,
            "chunk": chunk,
            "video_backend": video_backend,
            "jpeg_quality": jpeg_quality,
            "detector": detector,
        },
    )
    t0 = time.perf_counter()
    part = _part_folder(node_rank, num_nodes)
    try:
        with _optimizer_cache(work / "cache"), _watch_progress(work, len(mine)):
            optimize(
                fn=fn,
                inputs=mine,
                output_dir=str((stage / CHUNKS_DIR).resolve()),
                num_workers=workers,
                chunk_bytes=chunk_bytes,
                keep_data_ordered=True,
                reorder_files=False,
                verbose=False,
            )
        records = _part_records(stage, work)
        shutil.rmtree(work)
        nbytes = sum(p.stat().st_size for p in (stage / CHUNKS_DIR).rglob("*") if p.is_file())
        if not in_place:
            upload_folder(stage / CHUNKS_DIR, join(out, part), last=("index.json",))
    finally:
        if not in_place:
            shutil.rmtree(stage, ignore_errors=True)
    if num_nodes == 1:
        parts = {part: records}
    else:
        write_bytes(join(out, PARTS_DIR, f"{node_rank}.json"), json.dumps({"meta": meta, "records": records}).encode())
        if node_rank != 0:
            seconds = time.perf_counter() - t0
            return {"status": "part", "clips": len(mine), **_counts(records), "seconds": seconds, "bytes": nbytes}
        parts = _wait_for_parts(out, num_nodes, merge_timeout, meta)
    index, arrays, skipped = _combine(clips, parts, meta)
    _write_index(out, index, arrays)
    if num_nodes > 1:
        for rank in range(num_nodes):
            remove(join(out, PARTS_DIR, f"{rank}.json"))
    return {
        "status": "extracted",
        "clips": len(clips),
        "frames": len(arrays["frame_item"]),
        "crops": int(arrays["box_start"][-1]),
        "decoded": index["meta"]["decoded_frames"],
        "skipped": dict(skipped),
        "seconds": time.perf_counter() - t0,
        "bytes": nbytes,
    }


def _counts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary numbers of one machine's part."""
    return {
        "frames": sum(len(r["frames"]) for r in records),
        "crops": sum(len(f[1]) for r in records for f in r["frames"]),
        "decoded": sum(r.get("decoded", 0) for r in records),
        "skipped": dict(Counter(r["skip"][0] for r in records if r["skip"] is not None)),
    }


def extract(root: str, out: str, **options: Any) -> None:
    """Decode a corpus once and store its person crops as LitData shards (docs/data.md).

    Args:
        root: corpus root: a video folder with MOT sidecars, MOT sequences, or a manifest.
        out: output folder or URL (train with ``--data.root OUT``).
        **options: the other arguments of :func:`extract_corpus`.
    """
    summary = extract_corpus(root, out, **options)
    if summary["status"] == "complete":
        print(f"{out} is complete ({summary['clips']} clips, {summary['frames']} frames); nothing to do")
        return
    what = "this machine's part of " if summary["status"] == "part" else ""
    print(
        f"extracted {what}{summary['clips']} clips: {summary['frames']} frames, {summary['crops']} crops, "
        f"{summary['bytes'] / 2**20:.1f} MiB in {summary['seconds']:.1f} s to {out}; "
        f"skipped: {summary['skipped'] or 'none'}"
        + ("; node 0 writes the index when every part is in" if summary["status"] == "part" else "")
    )
