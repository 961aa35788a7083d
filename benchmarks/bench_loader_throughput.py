"""Frame pairs per second of one loader worker, one decode per pair against visits.

One process (= one dataloader worker, one thread) builds ``VideoPairStream`` batches the way
the demo recipe does (8 frame pairs, ``delta`` 0.5-3 s, at most 24 crops per pair, 128x64
crops with the ReID augmentation) and times them for each corpus, side by side:

* ``pairs_per_visit=1``: every batch opens fresh clips and decodes two frames per pair (the
  loader before visits);
* ``pairs_per_visit=8`` (the default): a clip opened once gives 8 pairs, one per batch for 8
  batches, all their frames decoded in one sorted pass.

Corpora: the demo corpus (``--corpus``, default the demo's cache, 640x360 at 12 fps with one
keyframe per clip) and H.264 clips written here at 640x360 and 1920x1080, 25 fps, a keyframe
every 2 s (``bench_video_loading.write_clip``). The bar: >= 50 frame pairs/s per worker.

Run: ``.venv/bin/python benchmarks/bench_loader_throughput.py [--batches 40]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_video_loading import write_clip

from isr_lightning.data import CropTransform, PairSampling, VideoPairStream, discover_clips

DEMO_CORPUS = Path.home() / ".cache/isr-lightning/demo-seed0/corpus-40"


def pairs_per_second(clips, pairs_per_visit: int, batches: int) -> tuple[float, float]:
    """``(frame pairs/s, crops/s)`` of ``batches`` batches after one warm-up batch."""
    stream = VideoPairStream(
        clips,
        CropTransform(image_size=(128, 64)),
        batch_size=8,
        batches_per_epoch=10**6,
        sampling=PairSampling(delta_seconds=(0.5, 3.0), max_crops_per_pair=24, pairs_per_visit=pairs_per_visit),
    )
    stream.make_batch(0, 0, 1, 1, 0)  # imports and first allocations outside the timing
    t0 = time.perf_counter()
    pairs = crops = 0
    for b in range(1, batches + 1):
        batch = stream.make_batch(0, 0, 1, 1, b)
        pairs += batch.num_pairs
        crops += batch.num_crops
    elapsed = time.perf_counter() - t0
    return pairs / elapsed, crops / elapsed


def written_corpus(root: Path, width: int, height: int, clips: int, frames: int) -> list:
    folder = root / f"{width}x{height}"
    folder.mkdir()
    for i in range(clips):
        write_clip(folder / f"clip{i}.mp4", width, height, frames, people=6, seed=i)
    return discover_clips(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEMO_CORPUS, help="the demo corpus (skipped when absent)")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per configuration")
    parser.add_argument("--clips", type=int, default=16, help="clips written per resolution")
    parser.add_argument("--frames", type=int, default=250, help="frames per written clip (25 fps)")
    parser.add_argument("--resolutions", default="640x360,1920x1080")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| corpus | 1 pair per visit: pairs/s (crops/s) | 8 pairs per visit: pairs/s (crops/s) | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        corpora = []
        if args.corpus.is_dir():
            corpora.append((f"demo corpus ({args.corpus.name})", discover_clips(args.corpus)))
        for res in filter(None, args.resolutions.split(",")):
            w, h = map(int, res.split("x"))
            corpora.append(
                (
                    f"{w}x{h}, {args.frames} frames, keyframe every 2 s",
                    written_corpus(Path(tmp), w, h, args.clips, args.frames),
                )
            )
        for name, clips in corpora:
            one, one_crops = pairs_per_second(clips, 1, args.batches)
            eight, eight_crops = pairs_per_second(clips, 8, args.batches)
            print(
                f"| {name} | {one:.1f} ({one_crops:.0f}) | {eight:.1f} ({eight_crops:.0f}) | {eight / one:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
