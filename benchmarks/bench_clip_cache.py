"""What one dataloader worker pays per batch when its shard has more clips than open readers.

A worker visits the clips of its shard cyclically, one frame pair per clip per batch, so with
more clips than ``reader_cache`` every visit reopens the reader (an LRU cache under a cyclic
scan always misses). Kept: the parsed detection/gt boxes of each clip (``index_cache``), so a
reopen costs the decoder set-up only. Compared, alternating in one process, on the demo's
synthetic corpus (40 clips of 10 s, 640x360) with 2 workers' sharding (20 clips per worker):

* ``parse every visit``: ``index_cache=0`` (the behaviour before the index cache);
* ``parse once``: the default ``index_cache``;
* ``all readers open``: ``reader_cache`` larger than the shard (no reopening at all; about
  50 MB per 640x360 decord reader, so not a default).

Run: ``.venv/bin/python benchmarks/bench_clip_cache.py [--batches 30] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from isr_lightning.data import CropTransform, PairSampling, VideoPairStream, discover_clips
from isr_lightning.demo import DEFAULT_CACHE
from isr_lightning.synth import generate_corpus

MODES = {
    "parse every visit": {"index_cache": 0},
    "parse once": {},
    "all readers open": {"reader_cache": 64},
}


def seconds_per_batch(clips, transform, batches: int, **cache) -> float:
    sampling = PairSampling(delta_seconds=(0.5, 3.0), pairs_per_visit=1)  # every batch opens its clips
    stream = VideoPairStream(clips, transform, batch_size=8, batches_per_epoch=10**6, sampling=sampling, **cache)
    stream.make_batch(0, 0, 1, 2, 0)  # import and allocation warm-up
    start = time.perf_counter()
    for b in range(1, batches + 1):
        stream.make_batch(0, 0, 1, 2, 2 * b)  # worker 0 of 2
    return (time.perf_counter() - start) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    corpus = DEFAULT_CACHE / "demo-seed0" / "corpus-40"
    generate_corpus(corpus, num_clips=40, seed=0)
    clips = discover_clips(corpus)
    transform = CropTransform(image_size=(args.height, args.width))
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode, cache in MODES.items():
            times[mode].append(seconds_per_batch(clips, transform, args.batches, **cache))
    base = statistics.median(times["parse every visit"])
    print(f"{len(clips)} clips, 20 per worker, batches of 8 frame pairs, crops {args.height}x{args.width}")
    print("| mode | s/batch (median of rounds) | x parse every visit |")
    print("|---|---|---|")
    for mode, values in times.items():
        median = statistics.median(values)
        print(f"| {mode} | {median:.3f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
