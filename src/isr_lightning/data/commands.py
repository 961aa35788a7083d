"""``isr-lightning detect``: write MOT detection sidecars for raw videos."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from isr_lightning.data.detectors import BackgroundSubtractionDetector, Detector
from isr_lightning.data.mot import write_mot_file
from isr_lightning.data.sources import VIDEO_EXTENSIONS
from isr_lightning.data.video import DecordVideoReader, UnreadableVideoError
from isr_lightning.progress import Progress

__all__ = ["detect"]

log = logging.getLogger(__name__)


def detect(
    root: Path,
    detector: Detector | None = None,
    stride: int = 1,
    chunk: int = 64,
    overwrite: bool = False,
) -> int:
    """Detect people in videos and write a MOT sidecar NAME.txt next to each NAME.mp4.

    Args:
        root: a video file, or a folder searched recursively for videos.
        detector: the detector (``--detector TorchvisionDetector --detector.weights FILE``);
            default: :class:`~isr_lightning.data.detectors.BackgroundSubtractionDetector`.
        stride: detect every N-th frame (the others get no boxes).
        chunk: frames decoded and detected at once.
        overwrite: replace existing sidecars.

    Returns:
        0, or 1 when some videos could not be read (each named on stderr).

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no video.
    """
    if not root.exists():
        raise FileNotFoundError(f"not found: {root}")
    videos = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise FileNotFoundError(f"no videos under {root}")
    detector = detector or BackgroundSubtractionDetector()
    failed = 0
    with Progress("detect", total=len(videos), unit="videos", rate_unit="frames") as progress:
        for video in videos:
            out = video.with_suffix(".txt")
            if out.exists() and not overwrite:
                print(f"skip {video} ({out.name} exists; --overwrite true to replace)")
                progress.advance(skipped=1)
                continue
            detector.reset()
            try:
                reader = DecordVideoReader(str(video))
                detections: dict[int, np.ndarray] = {}
                indices = list(range(0, reader.num_frames, max(1, stride)))
                for start in range(0, len(indices), chunk):
                    frames = indices[start : start + chunk]
                    for i, boxes in zip(frames, detector(reader.get_frames(frames)), strict=True):
                        if len(boxes):
                            detections[i + 1] = boxes
                    progress.advance(done=0, work=len(frames))
            except UnreadableVideoError as err:
                print(f"failed {video}: {err}", file=sys.stderr)
                failed += 1
                progress.advance(skipped=1)
                continue
            write_mot_file(str(out), detections)
            progress.advance()
            print(f"wrote {out} ({sum(len(b) for b in detections.values())} boxes, {len(detections)} frames)")
    return 1 if failed else 0
