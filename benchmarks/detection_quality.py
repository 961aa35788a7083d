"""Recall and precision at IoU 0.5 of a detector on videos with ground truth.

Runs ``isr-lightning detect``'s detector over each video (into a temporary copy, so nothing
is written beside the data) and scores its boxes against the video's ``NAME.gt.txt``
(:func:`~isr_lightning.data.detectors.score_detections`). MOTChallenge sequence folders
(``gt/gt.txt``) are scored the same way. Prints one row per video and detector.

Run: ``python benchmarks/detection_quality.py ../shared/data/tud-stadtmitte [../shared/data/mot17-mini]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from isr_lightning.data.commands import detect
from isr_lightning.data.detectors import BackgroundSubtractionDetector, score_detections
from isr_lightning.data.mot import read_mot_file
from isr_lightning.data.sources import discover_clips


def score_folder(root: Path, detector) -> list[tuple[str, object, float]]:
    rows = []
    for clip in discover_clips(root):
        if clip.gt is None or clip.kind != "video":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / Path(clip.source).name
            shutil.copy(clip.source, video)
            start = time.perf_counter()
            detect(video, detector=detector)
            seconds = time.perf_counter() - start
            found = read_mot_file(str(video.with_suffix(".txt")))
        truth = read_mot_file(clip.gt, is_gt=True)
        rows.append((clip.clip_id, score_detections(found, truth), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="folders of videos with NAME.gt.txt")
    args = parser.parse_args()
    print("| video | detector | recall | precision | detections / ground truth | seconds |")
    print("|---|---|---|---|---|---|")
    for root in args.roots:
        for name, scores, seconds in score_folder(root, BackgroundSubtractionDetector()):
            print(
                f"| {name} | background subtraction | {scores.recall:.3f} | {scores.precision:.3f} | "
                f"{scores.detections} / {scores.ground_truth} | {seconds:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
