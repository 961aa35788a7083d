"""Frame pairs per second of one loader worker against the frames per second one thread decodes.

For each corpus, side by side in one process (one torch thread, one decoder thread):

* **decode**: every frame of every clip decoded in order to an RGB array, by PyAV and by decord
  (the ceiling of any loader that decodes video);
* **loader**: ``VideoPairStream`` batches built the way the demo recipe asks (8 frame pairs,
  ``delta`` 0.5-3 s, at most 24 crops per pair, 128x64 crops with the ReID augmentation), with
  the decord and the PyAV backend, as one worker (``clips_per_batch`` 8 streams).

The ratio is loader pairs/s over decode frames/s of the same backend; the target is >= 0.5.
Corpora: H.264 clips written here (``--frames`` frames at 25 fps, 6 moving people, a keyframe
every 2 s and every 10 s, at 640x360 and 1920x1080), the demo corpus when it is cached, and a
real video (``--real PATH``, e.g. OpenCV's vtest.avi; its boxes are detected once here with
background subtraction, see ``docs/own_camera.md``).

Run: ``.venv/bin/python benchmarks/bench_loader_throughput.py [--frames 500] [--batches 40] [--real vtest.avi]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import av
import decord
import torch
from bench_video_loading import write_clip

from isr_lightning.data import CropTransform, PairSampling, VideoPairStream, discover_clips

DEMO_CORPUS = Path.home() / ".cache/isr-lightning/demo-seed0/corpus-40"
SAMPLING = PairSampling(delta_seconds=(0.5, 3.0), max_crops_per_pair=24)


def decode_fps(videos: list[str], backend: str) -> float:
    """Frames/s of decoding every frame of ``videos`` in order to RGB arrays on one thread."""
    frames, start = 0, time.perf_counter()
    for video in videos:
        if backend == "pyav":
            with av.open(video) as container:
                stream = container.streams.video[0]
                stream.thread_count = 1
                for frame in container.decode(stream):
                    frame.to_ndarray(format="rgb24")
                    frames += 1
        else:
            reader = decord.VideoReader(video, num_threads=1)
            for first in range(0, len(reader), 16):
                frames += len(reader.get_batch(list(range(first, min(first + 16, len(reader))))).asnumpy())
    return frames / (time.perf_counter() - start)


def loader_pairs_per_second(clips: list, backend: str, batches: int) -> tuple[float, float]:
    """``(frame pairs/s, crops/s)`` of one worker over ``batches`` batches after the first visit."""
    stream = VideoPairStream(
        clips,
        CropTransform(image_size=(128, 64)),
        batch_size=8,
        batches_per_epoch=10**6,
        sampling=SAMPLING,
        video_backend=backend,
    )
    warm = SAMPLING.pairs_per_visit  # the first visit opens every stream's clip and parses its files
    for b in range(warm):
        stream.make_batch(0, 0, 1, 1, b)
    pairs = crops = 0
    start = time.perf_counter()
    for b in range(warm, warm + batches):
        batch = stream.make_batch(0, 0, 1, 1, b)
        pairs, crops = pairs + batch.num_pairs, crops + batch.num_crops
    elapsed = time.perf_counter() - start
    return pairs / elapsed, crops / elapsed


def written_corpus(root: Path, width: int, height: int, clips: int, frames: int, gop_seconds: int) -> Path:
    folder = root / f"{width}x{height}-gop{gop_seconds}s"
    folder.mkdir()
    for i in range(clips):
        write_clip(folder / f"clip{i}.mp4", width, height, frames, people=6, seed=i, gop=25 * gop_seconds)
    return folder


def real_corpus(root: Path, video: Path) -> Path:
    from isr_lightning.data.commands import detect

    folder = root / "real"
    folder.mkdir()
    shutil.copy(video, folder / video.name)
    detect(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="timed batches per loader")
    parser.add_argument("--clips", type=int, default=4, help="clips written per corpus")
    parser.add_argument("--frames", type=int, default=500, help="frames per written clip (25 fps)")
    parser.add_argument("--resolutions", default="640x360,1920x1080")
    parser.add_argument("--gops", default="2,10", help="keyframe intervals of the written clips, in seconds")
    parser.add_argument("--real", type=Path, help="a real video without boxes (vtest.avi)")
    parser.add_argument("--demo", type=Path, default=DEMO_CORPUS, help="the demo corpus (skipped when absent)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| corpus | decode frames/s: PyAV / decord | loader pairs/s: decord / PyAV | ratio decord / PyAV |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        corpora: list[tuple[str, Path]] = []
        if args.demo.is_dir():
            corpora.append(("demo corpus (640x360, 12 fps)", args.demo))
        for res in filter(None, args.resolutions.split(",")):
            w, h = map(int, res.split("x"))
            for gop in map(int, args.gops.split(",")):
                folder = written_corpus(Path(tmp), w, h, args.clips, args.frames, gop)
                corpora.append((f"{w}x{h}, keyframe every {gop} s", folder))
        if args.real is not None:
            corpora.append((f"real: {args.real.name}", real_corpus(Path(tmp), args.real)))
        for name, folder in corpora:
            clips = discover_clips(folder)
            videos = [c.source for c in clips]
            decode = {backend: decode_fps(videos, backend) for backend in ("pyav", "decord")}
            loader = {
                backend: loader_pairs_per_second(clips, backend, args.batches)[0] for backend in ("decord", "pyav")
            }
            ratios = f"{loader['decord'] / decode['decord']:.2f} / {loader['pyav'] / decode['pyav']:.2f}"
            rates = f"{decode['pyav']:.1f} / {decode['decord']:.1f} | {loader['decord']:.1f} / {loader['pyav']:.1f}"
            print(f"| {name} | {rates} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
