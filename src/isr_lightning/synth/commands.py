"""``isr-lightning synth``: generate the synthetic training corpus or benchmark.

Usage (options are the parameters of :func:`~isr_lightning.synth.generate_corpus` and
:func:`~isr_lightning.synth.generate_benchmark` with their config fields; ``--help`` lists
them)::

    isr-lightning synth corpus ROOT [--num_clips 40] [--seconds 10] [--fps 12] [--seed 0]
                                    [--workers 1] [--person_styles [flat,shaded]] ...
    isr-lightning synth benchmark ROOT [--num_identities 150] [--num_cameras 6] [--seed 0]
                                       [--domain mall|street|station|park] ...
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from isr_lightning.synth.benchmark import generate_benchmark
from isr_lightning.synth.video import generate_corpus

__all__ = ["SYNTH_COMMANDS", "benchmark", "corpus"]


def _report(root: Path, what: str, cached: bool, start: float) -> None:
    state = "cached" if cached else f"generated in {time.perf_counter() - start:.1f} s"
    print(f"{root}: {what} ({state})")


def corpus(root: Path, **config: Any) -> None:
    """Render training clips: mp4 videos with MOT detection and ground-truth sidecars.

    Args:
        root: output folder.
        **config: the other arguments of :func:`~isr_lightning.synth.generate_corpus`.
    """
    start = time.perf_counter()
    info = generate_corpus(root, **config)
    what = (
        f"{len(info.clips)} clips x {info.num_frames} frames, "
        f"{info.num_gt_boxes} gt boxes, {info.num_det_boxes} detections"
    )
    _report(root, what, info.cached, start)


def benchmark(root: Path, **config: Any) -> None:
    """Render a cross-domain ReID benchmark in the Market-1501 layout.

    Args:
        root: output folder.
        **config: the other arguments of :func:`~isr_lightning.synth.generate_benchmark`.
    """
    start = time.perf_counter()
    info = generate_benchmark(root, **config)
    what = (
        f"{info.num_query} queries, {info.num_gallery} gallery images "
        f"({info.num_distractors} distractors, {info.num_junk} junk), {info.num_train} train images"
    )
    _report(root, what, info.cached, start)


SYNTH_COMMANDS = {"corpus": corpus, "benchmark": benchmark}
