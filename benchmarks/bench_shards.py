"""Frame pairs per second of one dataloader worker: from crop shards vs from video.

Extracts the demo's synthetic corpus (40 clips of 10 s, 640x360, 12 fps) with
``isr-lightning extract`` (stored crops ``--size``, default the training size 128x64, so
training reads them without resizing), then builds batches with ``make_batch`` in one process
as worker 0 of 2 would (20 clips; batches of 8 frame pairs, ``delta_seconds`` 0.5-3 s,
``max_crops_per_pair`` 24, 128x64 crops with the ReID augmentation, ``pairs_per_visit``
default), alternating the two sources for ``--rounds`` rounds, with one torch thread as in a
DataLoader worker. Reports extraction time, size on disk, frame pairs/s of each source (median
of rounds) and their ratio, and the shards' rate without augmentation (what reading costs:
the augmentation, shared by both sources, is most of a shard batch's time). With
``--jpeg-quality Q`` it also extracts JPEG shards (``extract_corpus(jpeg_quality=Q)``) and
reports their size and rates beside the raw ones. With ``--store URL`` (an S3 prefix; the AWS
variables name the server, docs/scale_out.md) it also extracts there and reads the shards from
the store: the first round with an empty local copy of the chunks (every chunk downloaded as
sampling first needs it), the next rounds from the local copy.

Run: ``.venv/bin/python benchmarks/bench_shards.py [--batches 60] [--rounds 3] [--size 128x64]
[--jpeg-quality 90] [--store s3://bucket/prefix]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from isr_lightning.data import CropTransform, PairSampling, VideoPairStream, discover_clips
from isr_lightning.data.extract import extract_corpus
from isr_lightning.demo import DEFAULT_CACHE
from isr_lightning.synth import generate_corpus

STREAM = {
    "batch_size": 8,
    "batches_per_epoch": 10**6,
    "sampling": PairSampling(delta_seconds=(0.5, 3.0), max_crops_per_pair=24),
}


def pairs_per_second(stream: VideoPairStream, batches: int) -> float:
    stream.make_batch(0, 0, 1, 2, 0)  # import and allocation warm-up
    pairs = 0
    start = time.perf_counter()
    for b in range(1, batches + 1):
        pairs += stream.make_batch(0, 0, 1, 2, 2 * b).num_pairs  # worker 0 of 2
    return pairs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="128x64", help="stored crop size HxW")
    parser.add_argument("--workers", type=int, default=1, help="extraction workers")
    parser.add_argument("--out", default=None, help="shard folder (default: a temporary one)")
    parser.add_argument("--jpeg-quality", type=int, default=None, help="also measure JPEG shards of this quality")
    parser.add_argument("--store", default=None, help="also extract to and read from this URL (s3://...)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    corpus = DEFAULT_CACHE / "demo-seed0" / "corpus-40"
    generate_corpus(corpus, num_clips=40, seed=0)
    size = tuple(int(v) for v in args.size.split("x"))
    transform, plain = CropTransform(image_size=(128, 64)), CropTransform(image_size=(128, 64), train=False)
    streams = {"video": VideoPairStream(discover_clips(corpus), transform, **STREAM)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "shards")
        folders = {"shards": (out, None)}
        if args.jpeg_quality is not None:
            folders[f"JPEG q{args.jpeg_quality} shards"] = (out.with_name(out.name + "-jpeg"), args.jpeg_quality)
        if args.store is not None:
            folders["shards in the store"] = (args.store, None)
        for name, (folder, quality) in folders.items():
            summary = extract_corpus(str(corpus), folder, size=size, workers=args.workers, jpeg_quality=quality)
            if summary["status"] == "extracted":
                print(
                    f"extract {name}: {summary['clips']} clips, {summary['frames']} frames, {summary['crops']} "
                    f"crops at {args.size} in {summary['seconds']:.1f} s ({args.workers} worker(s)), "
                    f"{summary['bytes'] / 2**20:.1f} MiB on disk"
                )
            cache = {"cache_dir": str(Path(tmp) / "store-copy")}  # empty at the first round
            streams[name] = VideoPairStream.from_shards(str(folder), transform, **cache, **STREAM)
            streams[f"{name}, no augmentation"] = VideoPairStream.from_shards(str(folder), plain, **cache, **STREAM)
        rates: dict[str, list[float]] = {name: [] for name in streams}
        for _ in range(args.rounds):
            for name, stream in streams.items():
                rates[name].append(pairs_per_second(stream, args.batches))
    video_rate, shard_rate = statistics.median(rates["video"]), statistics.median(rates["shards"])
    print(f"{args.batches} batches x {args.rounds} rounds, worker 0 of 2, training crops 128x64 augmented")
    print("| source | frame pairs/s (median) | rounds |")
    print("|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{r:.1f}' for r in values)} |")
    print(f"shards / video: {shard_rate / video_rate:.1f}x")


if __name__ == "__main__":
    main()
