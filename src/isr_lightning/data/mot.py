"""MOTChallenge text files: detections, ground truth and ``seqinfo.ini``.

A MOT text file has one box per line, ``frame,id,x,y,w,h,score[,...]`` with 1-based frame
numbers, ``id = -1`` for anonymous detections and ``(x, y)`` the top-left corner in pixels.
Ground-truth files (``gt.txt``) use columns 7-9 as ``flag,class,visibility``.

This module is the one reader and writer of the format: the data pipeline reads detections
and ground truth with :func:`read_mot_file`, the synthetic corpus writes its sidecars with
:func:`detection_rows`, :func:`ground_truth_rows` and :func:`format_mot_rows`.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import fsspec
import numpy as np
from scipy.optimize import linear_sum_assignment

from isr_lightning.data.boxes import box_iou
from isr_lightning.storage import read_bytes

__all__ = [
    "DETECTION_DECIMALS",
    "FrameBoxes",
    "MalformedDetectionsError",
    "assign_gt_ids",
    "clip_boxes",
    "detection_rows",
    "filter_boxes",
    "format_mot_rows",
    "ground_truth_rows",
    "parse_mot_rows",
    "parse_mot_text",
    "read_mot_file",
    "read_mot_rows",
    "read_seqinfo",
    "write_mot_file",
]

DETECTION_DECIMALS = (0, 0, 2, 2, 2, 2, 4, 0, 0, 0)
"""Decimals of the columns of :func:`detection_rows` written by :func:`write_mot_file`."""


class MalformedDetectionsError(ValueError):
    """A MOT text file cannot be parsed."""


@dataclass
class FrameBoxes:
    """Boxes of one frame.

    Attributes:
        boxes: ``(K, 4)`` float32 ``(x1, y1, x2, y2)`` in frame pixels.
        ids: ``(K,)`` int64 track ids (``-1`` when unknown).
        scores: ``(K,)`` float32 detection scores (1 for ground truth).
    """

    boxes: np.ndarray
    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: np.ndarray) -> FrameBoxes:
        """Return the rows selected by the boolean or index array ``keep``."""
        return FrameBoxes(self.boxes[keep], self.ids[keep], self.scores[keep])


def parse_mot_rows(text: str, source: str = "<text>") -> np.ndarray:
    """Parse MOT text into its rows, unfiltered.

    Args:
        text: file content, comma (or whitespace) separated; blank lines and lines starting
            with ``#`` are skipped.
        source: name used in error messages.

    Returns:
        ``(N, C)`` float64 rows in file order, ``C >= 6`` the fewest columns of any row (longer
        rows are cut to it); ``(0, 6)`` for a file without rows.

    Raises:
        MalformedDetectionsError: a row has fewer than 6 numeric columns, a non-numeric or a
            non-finite value.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return np.zeros((0, 6))
    rows: list[list[float]] = []
    width = None
    for number, line in enumerate(lines, start=1):
        parts = line.replace(",", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError as err:
            raise MalformedDetectionsError(f"{source}: line {number} is not numeric: {line!r}") from err
        if len(values) < 6:
            raise MalformedDetectionsError(
                f"{source}: line {number} has {len(values)} columns, need at least 6 "
                f"(frame,id,x,y,w,h[,score,...]): {line!r}"
            )
        width = len(values) if width is None else min(width, len(values))
        rows.append(values)
    table = np.array([r[: max(width or 6, 6)] for r in rows], dtype=np.float64)
    if not np.isfinite(table).all():
        raise MalformedDetectionsError(f"{source}: contains non-finite values")
    return table


def parse_mot_text(
    text: str,
    *,
    is_gt: bool = False,
    score_threshold: float | None = None,
    gt_classes: Iterable[int] | None = (1,),
    min_visibility: float = 0.0,
    source: str = "<text>",
) -> dict[int, FrameBoxes]:
    """Parse MOT text into boxes per frame.

    Args:
        text: file content, comma (or whitespace) separated.
        is_gt: the text is a ground-truth file: rows with ``flag == 0`` are dropped, and
            ``gt_classes``/``min_visibility`` filter on columns 8 and 9 when present.
        score_threshold: drop detections with a lower score (column 7); ignored for gt.
        gt_classes: classes kept from a gt file (MOT17: 1 pedestrian, 2 person on vehicle,
            7 static person); ``None`` keeps every class.
        min_visibility: minimum visibility (column 9) kept from a gt file.
        source: name used in error messages.

    Returns:
        Frame number (1-based, as in the file) -> boxes of that frame. Frames without rows
        are absent.

    Raises:
        MalformedDetectionsError: a row has fewer than 6 numeric columns or a non-numeric value.
    """
    table = parse_mot_rows(text, source)
    if not len(table):
        return {}
    keep, scores = _keep_and_scores(table, is_gt, score_threshold, gt_classes, min_visibility)
    return _group_by_frame(table[keep], scores[keep])


def _keep_and_scores(
    table: np.ndarray,
    is_gt: bool,
    score_threshold: float | None,
    gt_classes: Iterable[int] | None,
    min_visibility: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` bool rows kept by the filters of :func:`parse_mot_text` and ``(N,)`` float32 scores."""
    keep = np.ones(len(table), dtype=bool)
    ncol = table.shape[1]
    if is_gt:
        if ncol >= 7:
            keep &= table[:, 6] != 0
        if _has_class_columns(table):
            classes = table[:, 7].astype(np.int64)
            if gt_classes is not None:
                keep &= np.isin(classes, np.asarray(list(gt_classes))) | (classes == -1)  # -1: class not given
            if ncol >= 9:
                keep &= (table[:, 8] >= min_visibility) | (classes == -1)
        scores = np.ones(len(table), dtype=np.float32)
    else:
        scores = table[:, 6].astype(np.float32) if ncol >= 7 else np.ones(len(table), np.float32)
        if score_threshold is not None:
            keep &= scores >= score_threshold
    return keep, scores


def _has_class_columns(table: np.ndarray) -> bool:
    """Whether columns 8-9 of a ground-truth table are MOT16+'s class and visibility.

    MOT15 files put world coordinates there instead (``wx, wy, wz``: fractional, or ``-1``
    when unknown); a class is a whole number. A column of ``-1`` says nothing either way and
    filters nothing (class ``-1`` is kept as "not given").
    """
    if table.shape[1] < 8:
        return False
    column = table[:, 7]
    return bool(np.all(column == np.round(column)))


def _group_by_frame(table: np.ndarray, scores: np.ndarray) -> dict[int, FrameBoxes]:
    """``(N, C)`` rows and ``(N,)`` scores -> frame number -> xyxy boxes, in file order per frame."""
    frames = table[:, 0].astype(np.int64)
    boxes = np.stack([table[:, 2], table[:, 3], table[:, 2] + table[:, 4], table[:, 3] + table[:, 5]], axis=1).astype(
        np.float32
    )
    ids = table[:, 1].astype(np.int64)
    out: dict[int, FrameBoxes] = {}
    order = np.argsort(frames, kind="stable")
    frames, boxes, ids, scores = frames[order], boxes[order], ids[order], scores[order]
    if not len(frames):
        return out
    uniq, starts = np.unique(frames, return_index=True)
    ends = [*starts[1:].tolist(), len(frames)]
    for f, s, e in zip(uniq.tolist(), starts.tolist(), ends, strict=True):
        out[int(f)] = FrameBoxes(boxes[s:e], ids[s:e], scores[s:e])
    return out


def _read_text(path: str) -> str:
    """The content of a MOT file (local path or fsspec URL) as text."""
    try:
        raw = read_bytes(path)
    except FileNotFoundError:
        raise
    except OSError as err:  # remote errors, permissions
        raise FileNotFoundError(f"cannot read detections {path}: {err}") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedDetectionsError(f"{path}: not a text file") from err


def read_mot_file(path: str, **kwargs: object) -> dict[int, FrameBoxes]:
    """Read a MOT text file from a local path or any fsspec URL.

    Args:
        path: file path or URL.
        **kwargs: forwarded to :func:`parse_mot_text`.

    Returns:
        Frame number (1-based) -> boxes.

    Raises:
        FileNotFoundError: the file does not exist.
        MalformedDetectionsError: the content cannot be parsed.
    """
    return parse_mot_text(_read_text(path), source=str(path), **kwargs)  # type: ignore[arg-type]


def read_mot_rows(path: str | os.PathLike[str]) -> np.ndarray:
    """Read the rows of a MOT text file, unfiltered (see :func:`parse_mot_rows`).

    Args:
        path: file path or fsspec URL.

    Returns:
        ``(N, C)`` float64 rows in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        MalformedDetectionsError: the content cannot be parsed.
    """
    return parse_mot_rows(_read_text(str(path)), source=str(path))


def filter_boxes(frame_boxes: FrameBoxes, width: int, height: int, min_size: float = 0.0) -> FrameBoxes:
    """Clip boxes to the image and drop degenerate or small ones.

    Boxes are snapped outwards to whole pixels (``floor`` of ``x1, y1``, ``ceil`` of
    ``x2, y2``) after clipping to ``[0, width] x [0, height]``, so the crop of a kept box
    is exactly ``frame[y1:y2, x1:x2]``.

    Args:
        frame_boxes: boxes of one frame.
        width: frame width in pixels.
        height: frame height in pixels.
        min_size: minimum width and height (after clipping) of a kept box, in pixels; a box
            needs at least 1 pixel in each direction in any case.

    Returns:
        The kept boxes, with integer-valued float32 coordinates.
    """
    boxes, keep = clip_boxes(frame_boxes.boxes, width, height, min_size)
    return FrameBoxes(boxes[keep], frame_boxes.ids[keep], frame_boxes.scores[keep])


def clip_boxes(boxes: np.ndarray, width: int, height: int, min_size: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped and snapped as :func:`filter_boxes` does, and which of them it keeps.

    Clipping is idempotent: boxes already clipped come back unchanged, so the mask filters
    stored boxes with a stricter ``min_size``.

    Args:
        boxes: ``(K, 4)`` ``(x1, y1, x2, y2)``.
        width: frame width in pixels.
        height: frame height in pixels.
        min_size: minimum width and height after clipping (at least 1 pixel in any case).

    Returns:
        ``(K, 4)`` float32 clipped boxes and the ``(K,)`` bool mask of kept ones.
    """
    b = boxes.astype(np.float64)
    x1 = np.floor(np.clip(b[:, 0], 0, width))
    y1 = np.floor(np.clip(b[:, 1], 0, height))
    x2 = np.ceil(np.clip(b[:, 2], 0, width))
    y2 = np.ceil(np.clip(b[:, 3], 0, height))
    # a box entirely outside the image collapses to zero width/height
    inside = (b[:, 2] > 0) & (b[:, 3] > 0) & (b[:, 0] < width) & (b[:, 1] < height)
    w, h = x2 - x1, y2 - y1
    keep = inside & (w >= max(1.0, min_size)) & (h >= max(1.0, min_size))
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32), keep


def assign_gt_ids(detections: FrameBoxes, gt: FrameBoxes | None, min_iou: float = 0.5) -> FrameBoxes:
    """Give detections the ids of the ground-truth boxes they match one-to-one.

    Detections and ground-truth boxes are matched by maximum total IoU (Hungarian); a matched
    detection with IoU ``>= min_iou`` takes its ground-truth id, every other one gets ``-1``.

    Args:
        detections: ``K`` detected boxes of one frame (ids ignored).
        gt: ``M`` ground-truth boxes of the same frame, or ``None``.
        min_iou: IoU a match needs.

    Returns:
        The detections with ``(K,)`` ids.
    """
    ids = np.full(len(detections), -1, dtype=np.int64)
    if gt is not None and len(gt) and len(detections):
        iou = box_iou(detections.boxes, gt.boxes)
        rows, cols = linear_sum_assignment(iou, maximize=True)
        ok = iou[rows, cols] >= min_iou
        ids[rows[ok]] = gt.ids[cols[ok]]
    return FrameBoxes(detections.boxes, ids, detections.scores)


def detection_rows(frame: int, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """MOT rows ``frame,-1,x,y,w,h,score,-1,-1,-1`` of one frame's detections.

    Args:
        frame: 1-based frame number.
        boxes: ``(K, 4)`` ``x, y, w, h`` (top-left corner, size) in pixels.
        scores: ``(K,)`` detection scores.

    Returns:
        ``(K, 10)`` float64 rows.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    return _frame_rows(frame, -1, boxes, np.concatenate([scores, np.full((len(scores), 3), -1.0)], axis=1))


def ground_truth_rows(frame: int, ids: np.ndarray, boxes: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """MOT ground-truth rows ``frame,id,x,y,w,h,1,1,visibility`` of one frame (flag 1, class 1: pedestrian).

    Args:
        frame: 1-based frame number.
        ids: ``(K,)`` track ids.
        boxes: ``(K, 4)`` ``x, y, w, h`` (top-left corner, size) in pixels.
        visibility: ``(K,)`` visible fraction of each person, in ``[0, 1]``.

    Returns:
        ``(K, 9)`` float64 rows.
    """
    visibility = np.asarray(visibility, dtype=np.float64).reshape(-1, 1)
    return _frame_rows(frame, ids, boxes, np.concatenate([np.ones((len(visibility), 2)), visibility], axis=1))


def _frame_rows(frame: int, ids: np.ndarray | int, boxes: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """``(K, 6 + T)`` rows ``frame, id, x, y, w, h, *tail`` from ``(K, 4)`` boxes and a ``(K, T)`` tail."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    return np.column_stack([np.full(n, frame), np.broadcast_to(np.asarray(ids, np.float64), (n,)), boxes, tail])


def format_mot_rows(rows: np.ndarray, decimals: Sequence[int]) -> str:
    """MOT text of a table of rows, one comma-separated line per row.

    Args:
        rows: ``(N, C)`` values, columns as in the file (``frame, id, x, y, w, h, ...``), e.g.
            from :func:`detection_rows` or :func:`ground_truth_rows`.
        decimals: ``C`` numbers of decimals, one per column (0 writes integers: ``-1``, not
            ``-1.0``).

    Returns:
        The text, every line ending with a newline; ``""`` for no rows.

    Raises:
        ValueError: ``rows`` is not a table with one column per entry of ``decimals``.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return ""
    if rows.ndim != 2 or rows.shape[1] != len(decimals):
        raise ValueError(f"rows {rows.shape} need one number of decimals per column, got {len(decimals)}")
    specs = [f".{d}f" for d in decimals]
    lines = (",".join(format(v, spec) for v, spec in zip(row, specs, strict=True)) for row in rows.tolist())
    return "".join(line + "\n" for line in lines)


def write_mot_file(
    path: str,
    detections: Mapping[int, np.ndarray],
) -> None:
    """Write detections in MOT text format (``frame,-1,x,y,w,h,score,-1,-1,-1``).

    Boxes are written with 2 decimals and scores with 4 (:data:`DETECTION_DECIMALS`).

    Args:
        path: output file path or fsspec URL.
        detections: frame number (1-based) -> ``(K, 5)`` array ``(x1, y1, x2, y2, score)``
            (or ``(K, 4)`` without score, written as 1).
    """
    tables = []
    for frame in sorted(detections):
        arr = np.asarray(detections[frame], dtype=np.float64)
        if arr.size == 0:
            continue
        arr = arr.reshape(-1, arr.shape[-1])
        xywh = np.column_stack([arr[:, 0], arr[:, 1], arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]])
        scores = arr[:, 4] if arr.shape[1] > 4 else np.ones(len(arr))
        tables.append(detection_rows(frame, xywh, scores))
    text = format_mot_rows(np.concatenate(tables), DETECTION_DECIMALS) if tables else ""
    with fsspec.open(path, "w") as f:
        f.write(text)


def read_seqinfo(path: str) -> dict[str, str]:
    """Read the ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``.

    Args:
        path: path or URL of ``seqinfo.ini``.

    Returns:
        Keys lower-cased (``name``, ``imdir``, ``framerate``, ``seqlength``, ``imwidth``,
        ``imheight``, ``imext``) -> string values.

    Raises:
        MalformedDetectionsError: there is no ``[Sequence]`` section.
    """
    parser = configparser.ConfigParser()
    with fsspec.open(path, "r") as f:
        parser.read_string(f.read())
    if "Sequence" not in parser:
        raise MalformedDetectionsError(f"{path}: no [Sequence] section")
    return {k.lower(): v for k, v in parser["Sequence"].items()}
