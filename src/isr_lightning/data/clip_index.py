"""What a clip's files say: the boxes of each frame, and the frame pairs the clip can give.

Both training sources use it: the video stream (:mod:`~isr_lightning.data.stream`) indexes a
clip when it first opens it, and crop shards (:mod:`~isr_lightning.data.shards`) store the
boxes it selects, so the two sample the same pairs from the same files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from isr_lightning.data.mot import (
    FrameBoxes,
    MalformedDetectionsError,
    assign_gt_ids,
    filter_boxes,
    read_mot_file,
)
from isr_lightning.data.sources import Clip

__all__ = [
    "SKIP_REASONS",
    "BoxSelection",
    "ClipIndex",
    "PairSampling",
    "SkipItem",
    "delta_range",
    "read_clip_boxes",
]

log = logging.getLogger(__name__)

SKIP_REASONS = (
    "unreadable_video",
    "missing_detections",
    "malformed_detections",
    "clip_too_short",
    "too_few_people",
)
"""Why a clip gives no frame pair; batches count their skips under these names."""


class SkipItem(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A clip cannot give a frame pair; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BoxSelection:
    """Which boxes of a clip become crops.

    Args:
        source: ``"detections"`` (the clip's detection file; ground-truth ids attached where
            a ground-truth file exists) or ``"gt"`` (the ground-truth boxes themselves).
        score_threshold: minimum detection score (``None``: keep all).
        min_box_size: minimum box width and height in pixels after clipping to the frame.
        gt_classes: classes kept from ground-truth files (``None``: all).
        min_visibility: minimum visibility kept from ground-truth files.
        gt_iou: IoU a detection needs to take a ground-truth id (one-to-one matching).
    """

    source: str = "detections"
    score_threshold: float | None = None
    min_box_size: float = 8.0
    gt_classes: tuple[int, ...] | None = (1, 2, 7)
    min_visibility: float = 0.0
    gt_iou: float = 0.5

    def __post_init__(self) -> None:
        if self.source not in ("detections", "gt"):
            raise ValueError(f"box_source must be 'detections' or 'gt', got {self.source!r}")


def read_clip_boxes(
    clip: Clip,
    width: int,
    height: int,
    num_frames: int,
    selection: BoxSelection,
    warn: Callable[[str, str], None] | None = None,
) -> dict[int, FrameBoxes]:
    """The selected boxes of every frame of a clip, clipped to the frame, with ids.

    Args:
        clip: the clip (its detection and ground-truth files).
        width: frame width in pixels.
        height: frame height in pixels.
        num_frames: frames in the video; boxes of frames outside ``1..num_frames`` are dropped.
        selection: which boxes.
        warn: ``warn(key, message)`` for an unreadable ground-truth file next to detections
            (used for ids only, so training goes on); default: log a warning.

    Returns:
        MOT frame number (1-based) -> boxes with ids (ground-truth ids, ``-1`` when unknown).

    Raises:
        SkipItem: the box file is missing (``missing_detections``) or malformed
            (``malformed_detections``).
    """
    use_gt = selection.source == "gt"
    path = clip.gt if use_gt else clip.detections
    if path is None:
        raise SkipItem("missing_detections", f"{clip.clip_id}: no {'ground-truth' if use_gt else 'detection'} file")
    try:
        raw = read_mot_file(
            path,
            is_gt=use_gt,
            score_threshold=selection.score_threshold,
            gt_classes=selection.gt_classes,
            min_visibility=selection.min_visibility,
        )
    except FileNotFoundError as err:
        raise SkipItem("missing_detections", f"detections not found: {path}") from err
    except (MalformedDetectionsError, ValueError, UnicodeError) as err:
        raise SkipItem("malformed_detections", f"malformed detections {path}: {err}") from err
    gt = None
    if not use_gt and clip.gt is not None:
        try:
            gt = read_mot_file(
                clip.gt, is_gt=True, gt_classes=selection.gt_classes, min_visibility=selection.min_visibility
            )
        except (OSError, ValueError) as err:  # ids are diagnostics only: warn, keep training
            (warn or _log_warning)(clip.gt, f"ignoring ground truth {clip.gt}: {err}")
    frames = {}
    for f, boxes in raw.items():
        if not 1 <= f <= num_frames:
            continue
        boxes = filter_boxes(boxes, width, height, selection.min_box_size)
        if not use_gt:
            boxes = assign_gt_ids(boxes, gt.get(f) if gt is not None else None, selection.gt_iou)
        frames[f] = boxes
    return frames


def _log_warning(key: str, message: str) -> None:
    log.warning("%s", message)


def delta_range(
    pairing: str, fps: float, delta_frames: tuple[int, int], delta_seconds: tuple[float, float] | None
) -> tuple[int, int]:
    """The inclusive range of ``delta`` in frames for a clip of frame rate ``fps``.

    ``delta_seconds`` (when given) is converted with ``fps`` and overrides ``delta_frames``;
    a temporal pair is at least 1 frame apart; instance pairing uses one frame (``(0, 0)``).
    """
    if pairing == "instance":
        return (0, 0)
    if delta_seconds is not None:
        lo = max(1, round(delta_seconds[0] * fps))
        return lo, max(lo, round(delta_seconds[1] * fps))
    return max(1, delta_frames[0]), delta_frames[1]


@dataclass
class ClipIndex:
    """The frames of a clip that can be sampled, and the ``delta`` range between a pair's frames.

    Attributes:
        frames: MOT frame number -> its boxes.
        valid: sorted frame numbers with at least ``min_crops`` boxes.
        delta: inclusive ``delta`` range in frames (``(0, 0)``: instance pairs).
    """

    frames: dict[int, FrameBoxes]
    valid: np.ndarray
    delta: tuple[int, int]

    @classmethod
    def build(cls, frames: dict[int, FrameBoxes], delta: tuple[int, int], min_crops: int) -> ClipIndex:
        """Index ``frames``, keeping as sampleable those with ``>= min_crops`` boxes."""
        valid = np.array(sorted(f for f, fb in frames.items() if len(fb) >= min_crops), dtype=np.int64)
        return cls(frames, valid, delta)

    @property
    def temporal(self) -> bool:
        """Pairs are two frames ``delta >= 1`` apart (not two views of one frame)."""
        return self.delta[1] > 0

    def pair_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """For each valid frame ``valid[i]``, the slice ``valid[lo[i]:hi[i]]`` of its partners."""
        lo = np.searchsorted(self.valid, self.valid + self.delta[0], side="left")
        hi = np.searchsorted(self.valid, self.valid + self.delta[1], side="right")
        return lo, np.maximum(hi, lo)

    def num_pairs(self) -> int:
        """How many distinct frame pairs the clip can give."""
        if not self.temporal:
            return len(self.valid)
        lo, hi = self.pair_bounds()
        return int((hi - lo).sum())

    def sample_pair(self, rng: np.random.Generator) -> tuple[int, int]:
        """Draw MOT frame numbers ``(t, t + delta)`` uniformly over the clip's valid pairs."""
        if not self.temporal:
            t = int(self.valid[rng.integers(len(self.valid))])
            return t, t
        lo, hi = self.pair_bounds()
        cum = np.cumsum(hi - lo)
        r = int(rng.integers(cum[-1]))
        i = int(np.searchsorted(cum, r, side="right"))
        before = int(cum[i - 1]) if i else 0
        return int(self.valid[i]), int(self.valid[lo[i] + r - before])

    def sample_visit(self, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
        """Draw ``count`` frame pairs that lie close together, to be decoded in one pass.

        The first pair is drawn uniformly over the clip's valid pairs (:meth:`sample_pair`);
        the others uniformly over the valid pairs inside a window of ``2 * delta_max + 1``
        frames placed uniformly at random around the first pair, so decoding them all costs
        about one window of frames wherever the clip's keyframes are. Instance pairs (one
        frame each) are drawn from the whole clip.

        Args:
            rng: random source.
            count: number of pairs.

        Returns:
            ``count`` pairs ``(t, t + delta)`` of MOT frame numbers.
        """
        first = self.sample_pair(rng)
        if not self.temporal:
            return [first] + [self.sample_pair(rng) for _ in range(count - 1)]
        span = 2 * self.delta[1] + 1
        start = int(rng.integers(first[1] - span + 1, first[0] + 1))
        inside = self.valid[(self.valid >= start) & (self.valid < start + span)]
        window = ClipIndex(self.frames, inside, self.delta)
        return [first] + [window.sample_pair(rng) for _ in range(count - 1)]

    def check_usable(self, source: str, num_frames: int, min_crops: int) -> None:
        """Raise :class:`SkipItem` when the clip cannot give a single pair.

        Args:
            source: the clip's location, for the message.
            num_frames: frames in the video.
            min_crops: the box count a sampled frame needs (for the message).
        """
        if self.temporal and num_frames - 1 < self.delta[0]:
            raise SkipItem("clip_too_short", f"{source}: {num_frames} frames, shorter than delta {self.delta[0]}")
        if self.num_pairs() == 0:
            what = f"no frames {self.delta[0]}-{self.delta[1]} apart both with" if self.temporal else "no frame with"
            raise SkipItem("too_few_people", f"{source}: {what} >= {min_crops} boxes")


@dataclass(frozen=True)
class PairSampling:
    """How frame pairs are drawn from a clip and grouped into batches.

    Args:
        pairing: ``"temporal"`` (frames ``t`` and ``t + delta``: ISR) or ``"instance"`` (one
            frame, two augmented views of each crop: the MoCo/SimCLR baseline).
        delta_frames: inclusive range of ``delta`` in frames.
        delta_seconds: inclusive range of ``delta`` in seconds, converted per clip with its
            frame rate (at least 1 frame); overrides ``delta_frames`` when given.
        min_crops_per_frame: frames with fewer boxes are never sampled.
        max_crops_per_pair: cap on the crops of a frame pair (each frame keeps at most half,
            a random subset); ``None``: no cap.
        max_crops_per_batch: cap on the crops of a batch (whole pairs past it are dropped
            and counted as ``crop_cap``); ``None``: no cap.
        clips_per_batch: distinct clips a batch draws its pairs from (``None``: the batch
            size).
        pairs_per_visit: frame pairs drawn from a clip each time a loader worker opens it,
            one per batch for that many consecutive batches of the worker, their frames
            decoded in one pass (``docs/data.md``); ``1`` gives every batch fresh clips.
    """

    pairing: str = "temporal"
    delta_frames: tuple[int, int] = (1, 30)
    delta_seconds: tuple[float, float] | None = None
    min_crops_per_frame: int = 2
    max_crops_per_pair: int | None = 64
    max_crops_per_batch: int | None = None
    clips_per_batch: int | None = None
    pairs_per_visit: int = 8

    def __post_init__(self) -> None:
        if self.pairing not in ("temporal", "instance"):
            raise ValueError(f"pairing must be 'temporal' or 'instance', got {self.pairing!r}")
        lo, hi = self.delta_frames
        if not 0 <= lo <= hi:
            raise ValueError(f"delta_frames must be 0 <= min <= max, got {self.delta_frames}")
        if self.pairing == "temporal" and self.delta_seconds is None and hi < 1:
            raise ValueError("temporal pairing needs delta_frames max >= 1")
        if self.delta_seconds is not None and not 0 < self.delta_seconds[0] <= self.delta_seconds[1]:
            raise ValueError(f"delta_seconds must be 0 < min <= max, got {self.delta_seconds}")
        if self.max_crops_per_pair is not None and self.max_crops_per_pair < 2:
            raise ValueError(f"max_crops_per_pair must be >= 2, got {self.max_crops_per_pair}")
        if self.pairs_per_visit < 1 or (self.clips_per_batch is not None and self.clips_per_batch < 1):
            raise ValueError("pairs_per_visit and clips_per_batch must be >= 1")
        # plain tuples whatever the caller passed (lists from a config file)
        object.__setattr__(self, "delta_frames", (int(lo), int(hi)))
        if self.delta_seconds is not None:
            object.__setattr__(self, "delta_seconds", tuple(float(v) for v in self.delta_seconds))

    def index_clip(self, frames: dict[int, FrameBoxes], fps: float, num_frames: int, source: str) -> ClipIndex:
        """Index a clip's boxes for sampling; raise :class:`SkipItem` when it cannot give a pair.

        Args:
            frames: MOT frame number -> boxes.
            fps: the clip's frame rate (converts ``delta_seconds``).
            num_frames: frames in the video.
            source: the clip's location, for messages.
        """
        min_crops = max(1, self.min_crops_per_frame)
        delta = delta_range(self.pairing, fps, self.delta_frames, self.delta_seconds)
        index = ClipIndex.build(frames, delta, min_crops)
        index.check_usable(source, num_frames, min_crops)
        return index
