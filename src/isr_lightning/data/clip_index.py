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
    "label_boxes",
    "read_clip_boxes",
    "read_ground_truth",
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
    ground_truth = None if selection.source == "gt" else read_ground_truth(clip, selection, warn)
    return label_boxes(raw, width, height, num_frames, selection, ground_truth)


def read_ground_truth(
    clip: Clip, selection: BoxSelection, warn: Callable[[str, str], None] | None = None
) -> dict[int, FrameBoxes] | None:
    """The clip's ground-truth boxes (ids for diagnostics), or ``None`` without a readable file.

    Args:
        clip: the clip.
        selection: its ground-truth classes and visibility.
        warn: ``warn(key, message)`` for an unreadable file (training goes on); default: log.
    """
    if clip.gt is None:
        return None
    try:
        return read_mot_file(
            clip.gt, is_gt=True, gt_classes=selection.gt_classes, min_visibility=selection.min_visibility
        )
    except (OSError, ValueError) as err:  # ids are diagnostics only: warn, keep training
        (warn or _log_warning)(clip.gt, f"ignoring ground truth {clip.gt}: {err}")
        return None


def label_boxes(
    raw: dict[int, FrameBoxes],
    width: int,
    height: int,
    num_frames: int,
    selection: BoxSelection,
    ground_truth: dict[int, FrameBoxes] | None = None,
) -> dict[int, FrameBoxes]:
    """Clip raw boxes to the frame, drop small ones and give detections their ground-truth ids.

    Args:
        raw: MOT frame number -> boxes, as read from a file or found by a detector.
        width: frame width in pixels.
        height: frame height in pixels.
        num_frames: frames in the video; boxes of frames outside ``1..num_frames`` are dropped.
        selection: which boxes.
        ground_truth: the clip's ground truth (:func:`read_ground_truth`) for the ids of
            detections; ``None``: ids ``-1`` (or the boxes' own, for ``source="gt"``).

    Returns:
        MOT frame number -> boxes with ids (ground-truth ids, ``-1`` when unknown).
    """
    frames = {}
    for f, boxes in raw.items():
        if not 1 <= f <= num_frames:
            continue
        boxes = filter_boxes(boxes, width, height, selection.min_box_size)
        if selection.source != "gt":
            gt = ground_truth.get(f) if ground_truth is not None else None
            boxes = assign_gt_ids(boxes, gt, selection.gt_iou)
        frames[f] = boxes
    return frames


def _log_warning(key: str, message: str) -> None:
    log.warning("%s", message)


def delta_range(
    pairing: str, fps: float, delta_frames: tuple[int, int], delta_seconds: tuple[float, float] | None
) -> tuple[float, float]:
    """The inclusive range of ``delta`` between a pair's frames, in frames or in seconds.

    ``delta_seconds`` (when given) is returned as it is: pairs are then placed by the frames'
    timestamps (a variable-frame-rate video keeps the right spacing). Otherwise
    ``delta_frames``, at least 1 frame apart for a temporal pair. Instance pairing uses one
    frame: ``(0, 0)``. ``fps`` is unused and kept for the signature's readers.
    """
    if pairing == "instance":
        return (0.0, 0.0)
    if delta_seconds is not None:
        return float(delta_seconds[0]), float(delta_seconds[1])
    return float(max(1, delta_frames[0])), float(delta_frames[1])


_EPS = 1e-6  # timestamps of a pair exactly delta apart must count as inside the range


@dataclass
class ClipIndex:
    """The frames of a clip that can be sampled, where they are in time, and how far apart a pair's may be.

    Attributes:
        frames: MOT frame number -> its boxes.
        valid: ``(F,)`` sorted frame numbers with at least ``min_crops`` boxes.
        position: ``(F,)`` where each valid frame is, in the unit of ``delta``: its frame number,
            or its timestamp in seconds when ``delta`` is in seconds.
        delta: inclusive range of position differences of a pair (``(0, 0)``: instance pairs).
        grid: a frame number ``t`` is a partner candidate only when ``t % grid == 0`` (when a
            later frame has any such candidate): the stream then keeps the crops of every
            ``grid``-th frame while it decodes forward, not of all of them.
        reach: frames back from a frame within which its partners lie: what the stream keeps.
    """

    frames: dict[int, FrameBoxes]
    valid: np.ndarray
    position: np.ndarray
    delta: tuple[float, float]
    grid: int = 1
    reach: int = 0

    @classmethod
    def build(
        cls,
        frames: dict[int, FrameBoxes],
        delta: tuple[float, float],
        min_crops: int,
        times: np.ndarray | None = None,
        grid: int = 1,
        reach: int | None = None,
    ) -> ClipIndex:
        """Index ``frames``, keeping as sampleable those with ``>= min_crops`` boxes.

        Args:
            frames: MOT frame number -> boxes.
            delta: pair spacing, in frames (``times`` ``None``) or in seconds.
            min_crops: boxes a sampleable frame needs.
            times: ``(num_frames,)`` timestamps in seconds of frames ``1..num_frames`` (``None``:
                positions are frame numbers).
            grid: see the attribute.
            reach: see the attribute (``None``: ``delta``'s maximum, for frame positions).
        """
        valid = np.array(sorted(f for f, fb in frames.items() if len(fb) >= min_crops), dtype=np.int64)
        position = valid.astype(np.float64) if times is None else np.asarray(times, np.float64)[valid - 1]
        reach = int(np.ceil(delta[1])) if reach is None else int(reach)
        return cls(frames, valid, position, (float(delta[0]), float(delta[1])), max(1, int(grid)), reach)

    @property
    def temporal(self) -> bool:
        """Pairs are two frames ``delta > 0`` apart (not two views of one frame)."""
        return self.delta[1] > 0

    def partner_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """For each valid frame ``valid[i]``, the slice ``valid[lo[i]:hi[i]]`` of its possible earlier partners."""
        lo = np.searchsorted(self.position, self.position - self.delta[1] - _EPS, side="left")
        hi = np.searchsorted(self.position, self.position - self.delta[0] + _EPS, side="right")
        return lo, np.maximum(hi, lo)

    def num_pairs(self) -> int:
        """How many distinct frame pairs the clip can give."""
        if not self.temporal:
            return len(self.valid)
        lo, hi = self.partner_bounds()
        return int((hi - lo).sum())

    def window_pairs(self, start: int, stop: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """One pair for every valid frame ``u`` of frames ``[start, stop)`` that has a partner.

        The partner ``t`` is drawn uniformly among the valid frames ``delta`` before ``u``
        (which may lie before ``start``: the stream decodes forward and keeps them), preferring
        those on the :attr:`grid`. Instance pairs are ``(u, u)``.

        Args:
            start: first MOT frame of the window.
            stop: one past its last frame.
            rng: random source.

        Returns:
            ``(t, u)`` pairs of MOT frame numbers, in the order of ``u``.
        """
        first, last = np.searchsorted(self.valid, [start, stop], side="left")
        if not self.temporal:
            return [(int(u), int(u)) for u in self.valid[first:last]]
        lo, hi = self.partner_bounds()
        pairs = []
        for i in range(first, last):
            if hi[i] == lo[i]:
                continue
            candidates = self.valid[lo[i] : hi[i]]
            on_grid = candidates[candidates % self.grid == 0]
            if len(on_grid):
                candidates = on_grid
            pairs.append((int(candidates[rng.integers(len(candidates))]), int(self.valid[i])))
        return pairs

    def check_usable(self, source: str, span: float, min_crops: int) -> None:
        """Raise :class:`SkipItem` when the clip cannot give a single pair.

        Args:
            source: the clip's location, for the message.
            span: from the clip's first to its last frame, in the unit of ``delta``.
            min_crops: the box count a sampled frame needs (for the message).
        """
        if self.temporal and span < self.delta[0] - _EPS:
            raise SkipItem("clip_too_short", f"{source}: {span:g} long, shorter than delta {self.delta[0]:g}")
        if self.num_pairs() == 0:
            apart = f"no frames {self.delta[0]:g}-{self.delta[1]:g} apart both with"
            what = apart if self.temporal else "no frame with"
            raise SkipItem("too_few_people", f"{source}: {what} >= {min_crops} boxes")


@dataclass(frozen=True)
class PairSampling:
    """How frame pairs are drawn from a clip and grouped into batches.

    A loader worker streams ``open_clips`` clips at once, each decoded forward
    ``pairs_per_visit`` frames at a time (a *visit*): every frame of the visit that has people
    becomes the later frame of one pair, its earlier partner drawn from the frames ``delta``
    before it (kept from the decoding so far), and the visit's pairs are shuffled over the
    worker's next batches, ``clips_per_batch`` clips in each. See ``docs/data.md``.

    Args:
        pairing: ``"temporal"`` (frames ``t`` and ``t + delta``: ISR) or ``"instance"`` (one
            frame, two augmented views of each crop: the MoCo/SimCLR baseline).
        delta_frames: inclusive range of ``delta`` in frames.
        delta_seconds: inclusive range of ``delta`` in seconds, measured on the frames'
            timestamps (right for variable-frame-rate video too); overrides ``delta_frames``
            when given.
        min_crops_per_frame: frames with fewer boxes are never sampled.
        max_crops_per_pair: cap on the crops of a frame pair (each frame keeps at most half,
            a random subset drawn once per frame); ``None``: no cap.
        max_crops_per_batch: cap on the crops of a batch (whole pairs past it are dropped
            and counted as ``crop_cap``); ``None``: no cap.
        clips_per_batch: distinct clips (streams) that give a batch its pairs (``None``: the
            batch size).
        open_clips: clips a worker streams at once, rounded up to a multiple of
            ``clips_per_batch`` (``None``: ``clips_per_batch``). Each batch draws its clips from
            all of them, so the people a run sees change ``open_clips / clips_per_batch`` times
            faster than with ``clips_per_batch`` streams walking their clips forward; each open
            clip holds one decoder (a PyAV reader a few MB; decord's grow with what they
            decode) and the crops of its kept frames (docs/data.md).
        pairs_per_visit: frames a visit decodes forward from each clip (one pair per frame
            with people).
        partner_candidates: about how many earlier frames of the ``delta`` range a later frame
            chooses its partner from (every ``k``-th frame): the crops the stream keeps while
            decoding forward are those of fewer frames (memory) when it is below the frames
            in ``delta``'s range.
    """

    pairing: str = "temporal"
    delta_frames: tuple[int, int] = (1, 30)
    delta_seconds: tuple[float, float] | None = None
    min_crops_per_frame: int = 2
    max_crops_per_pair: int | None = 64
    max_crops_per_batch: int | None = None
    clips_per_batch: int | None = None
    open_clips: int | None = 16
    pairs_per_visit: int = 8
    partner_candidates: int = 16

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
        if self.pairs_per_visit < 1 or self.partner_candidates < 1:
            raise ValueError("pairs_per_visit and partner_candidates must be >= 1")
        for name in ("clips_per_batch", "open_clips"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        # plain tuples whatever the caller passed (lists from a config file)
        object.__setattr__(self, "delta_frames", (int(lo), int(hi)))
        if self.delta_seconds is not None:
            object.__setattr__(self, "delta_seconds", tuple(float(v) for v in self.delta_seconds))

    def index_clip(
        self,
        frames: dict[int, FrameBoxes],
        fps: float,
        num_frames: int,
        source: str,
        times: np.ndarray | None = None,
    ) -> ClipIndex:
        """Index a clip's boxes for sampling; raise :class:`SkipItem` when it cannot give a pair.

        Args:
            frames: MOT frame number -> boxes.
            fps: the clip's (average) frame rate: the timestamps when ``times`` is ``None``.
            num_frames: frames in the video.
            source: the clip's location, for messages.
            times: ``(num_frames,)`` timestamps in seconds of the frames (container timestamps;
                a variable-frame-rate video is paired by them), or ``None``: ``(f - 1) / fps``.
        """
        min_crops = max(1, self.min_crops_per_frame)
        delta = delta_range(self.pairing, fps, self.delta_frames, self.delta_seconds)
        in_seconds = self.delta_seconds is not None and self.pairing == "temporal"
        if in_seconds and times is None:
            times = np.arange(num_frames, dtype=np.float64) / fps
        frames_per_unit = fps if in_seconds else 1.0
        grid = int(np.ceil((delta[1] - delta[0]) * frames_per_unit / self.partner_candidates))
        if in_seconds:  # the most frames any frame's partners lie back (exact for a variable frame rate)
            back = np.arange(len(times)) - np.searchsorted(times, times - delta[1] - _EPS, side="left")
            reach = int(back.max(initial=0)) + 1
        else:
            reach = int(np.ceil(delta[1])) + 1
        index = ClipIndex.build(frames, delta, min_crops, times if in_seconds else None, grid, reach)
        span = float(times[-1] - times[0]) if in_seconds and len(times) else float(num_frames - 1)
        index.check_usable(source, span, min_crops)
        return index
