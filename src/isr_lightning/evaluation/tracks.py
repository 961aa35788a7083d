"""A ReID benchmark from one camera's ground-truth tracks: the labelled check of a single camera.

A user with one camera has no second camera to query across. Each ground-truth track is
split in time instead: its boxes in the first half of the track are seen by "camera 1" and
are the queries, its boxes in the second half by "camera 2" and are the gallery, with a gap
between the halves so that no query has a near-copy of itself (the next frame) in the
gallery. The standard protocol then asks, for a person seen early, to find the same person
later among everyone the camera saw later.

The crops are written as a Market-1501-layout folder (``query/``, ``bounding_box_test/``,
names ``PPPP_cCsS_FFFFFF_BB.jpg``), so every evaluation path of the library reads it
(``isr-lightning evaluate CKPT DIR --dataset folder``, :func:`load_market_layout`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from isr_lightning.data.mot import filter_boxes, read_mot_file
from isr_lightning.data.sources import Clip
from isr_lightning.data.transforms import crop_boxes
from isr_lightning.data.video import open_reader
from isr_lightning.evaluation.datasets import ReIDSplit, format_market_name, load_market_layout

__all__ = ["TrackSplit", "write_track_benchmark"]

_MARKER = "isr-track-benchmark.json"


@dataclass(frozen=True)
class TrackSplit:
    """How tracks become queries and gallery.

    Args:
        stride: keep every ``stride``-th frame of a track (neighbouring frames are near-copies).
        gap_seconds: frames this close to the middle of a track are dropped, so a query's
            nearest gallery item is at least this far away in time.
        min_height: boxes lower than this (pixels, after clipping to the frame) are dropped.
        min_boxes: a track needs this many kept boxes on each side of the gap.
    """

    stride: int = 5
    gap_seconds: float = 1.0
    min_height: float = 32.0
    min_boxes: int = 2

    def __post_init__(self) -> None:
        if self.stride < 1 or self.min_boxes < 1 or self.gap_seconds < 0 or self.min_height < 0:
            raise ValueError(f"invalid TrackSplit {self}")


def _halves(frames: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames before and after the middle of a track (``frames`` sorted), ``gap`` frames around it dropped."""
    middle = (frames[0] + frames[-1]) / 2
    return frames[frames <= middle - gap / 2], frames[frames >= middle + gap / 2]


def write_track_benchmark(
    video: str | Path, gt: str | Path, out: str | Path, split: TrackSplit | None = None
) -> ReIDSplit:
    """Write the query/gallery crops of a video's ground-truth tracks (cached: rerun is free).

    Args:
        video: the video (any file the readers decode).
        gt: its MOT ground truth (``frame,id,x,y,w,h,...``; ids are the persons).
        out: output folder (Market-1501 layout); reused when it was written with the same inputs.
        split: how tracks are split (``None``: :class:`TrackSplit` defaults).

    Returns:
        The benchmark as :func:`~isr_lightning.evaluation.load_market_layout` reads it.

    Raises:
        ValueError: no track is long enough to give both queries and gallery items.
    """
    split = split or TrackSplit()
    out = Path(out)
    record = {"video": str(Path(video).resolve()), "gt": str(Path(gt).resolve()), **asdict(split)}
    marker = out / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == record:
        return load_market_layout(out, name=f"tracks-{Path(video).stem}")
    if out.exists():
        shutil.rmtree(out)
    reader = open_reader(Clip(Path(video).stem, str(video)))
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for frame, boxes in read_mot_file(str(gt), is_gt=True).items():
        if not 1 <= frame <= reader.num_frames:
            continue
        kept = filter_boxes(boxes, reader.width, reader.height)
        for pid, box in zip(kept.ids.tolist(), kept.boxes, strict=True):
            if pid >= 1 and box[3] - box[1] >= split.min_height:
                tracks.setdefault(pid, {})[frame] = box
    gap = round(split.gap_seconds * reader.fps)
    wanted: dict[int, list[tuple[int, int, np.ndarray]]] = {}  # frame -> (pid, camera, box)
    for pid, boxes in sorted(tracks.items()):
        early, late = _halves(np.array(sorted(boxes)), gap)
        early, late = early[:: split.stride], late[:: split.stride]
        if min(len(early), len(late)) < split.min_boxes:
            continue
        for camera, frames in ((1, early), (2, late)):
            for f in frames.tolist():
                wanted.setdefault(f, []).append((pid, camera, boxes[f]))
    if not wanted:
        raise ValueError(f"{gt}: no track has {split.min_boxes}+ boxes on each side of a {split.gap_seconds} s gap")
    for folder in ("query", "bounding_box_test"):
        (out / folder).mkdir(parents=True)
    ordered = sorted(wanted)
    for frame, image in zip(ordered, reader.get_frames([f - 1 for f in ordered]), strict=True):
        rows = wanted[frame]
        crops = crop_boxes(image, np.stack([box for _, _, box in rows]))
        for (pid, camera, _), crop in zip(rows, crops, strict=True):
            folder = "query" if camera == 1 else "bounding_box_test"
            name = format_market_name(pid, camera, frame)
            Image.fromarray(np.ascontiguousarray(crop)).save(out / folder / name, quality=95)
    marker.write_text(json.dumps(record))
    return load_market_layout(out, name=f"tracks-{Path(video).stem}")
