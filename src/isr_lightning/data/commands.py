"""``isr-lightning detect``: write MOT detection sidecars for raw videos."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from isr_lightning.data.detectors import build_detector
from isr_lightning.data.mot import write_mot_file
from isr_lightning.data.sources import VIDEO_EXTENSIONS
from isr_lightning.data.video import DecordVideoReader, UnreadableVideoError

__all__ = ["detect_main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isr-lightning detect",
        description="Detect people in videos and write MOT sidecars NAME.txt next to each NAME.mp4.",
    )
    p.add_argument("root", help="a video file or a folder searched recursively for videos")
    p.add_argument("--detector", default="background", choices=["background", "torchvision"])
    p.add_argument("--weights", default=None, help="torchvision detector state_dict file")
    p.add_argument("--model", default="fasterrcnn_resnet50_fpn", help="torchvision detection model")
    p.add_argument("--score-threshold", type=float, default=0.5, help="torchvision: min person score")
    p.add_argument("--device", default="cpu")
    p.add_argument("--stride", type=int, default=1, help="detect every N-th frame (others get no boxes)")
    p.add_argument("--chunk", type=int, default=64, help="frames decoded and detected at once")
    p.add_argument("--overwrite", action="store_true", help="replace existing sidecars")
    return p


def detect_main(argv: list[str]) -> int:
    """Run the ``detect`` command.

    Args:
        argv: command-line arguments (without ``detect``).

    Returns:
        0 on success, 1 when some videos failed, 2 on a usage error.
    """
    args = _parser().parse_args(argv)
    root = Path(args.root)
    if not root.exists():
        print(f"isr-lightning detect: not found: {root}", file=sys.stderr)
        return 2
    videos = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        print(f"isr-lightning detect: no videos under {root}", file=sys.stderr)
        return 2
    try:
        if args.detector == "torchvision":
            detector = build_detector(
                "torchvision", args.weights, model=args.model, score_threshold=args.score_threshold, device=args.device
            )
        else:
            detector = build_detector("background")
    except (FileNotFoundError, ValueError) as err:
        print(f"isr-lightning detect: {err}", file=sys.stderr)
        return 2
    failed = 0
    for video in videos:
        out = video.with_suffix(".txt")
        if out.exists() and not args.overwrite:
            print(f"skip {video} ({out.name} exists; --overwrite to replace)")
            continue
        try:
            reader = DecordVideoReader(str(video))
            detections: dict[int, np.ndarray] = {}
            indices = list(range(0, reader.num_frames, max(1, args.stride)))
            for start in range(0, len(indices), args.chunk):
                chunk = indices[start : start + args.chunk]
                for i, boxes in zip(chunk, detector(reader.get_frames(chunk)), strict=True):
                    if len(boxes):
                        detections[i + 1] = boxes
        except UnreadableVideoError as err:
            print(f"failed {video}: {err}", file=sys.stderr)
            failed += 1
            continue
        write_mot_file(str(out), detections)
        print(f"wrote {out} ({sum(len(b) for b in detections.values())} boxes, {len(detections)} frames)")
    return 1 if failed else 0
