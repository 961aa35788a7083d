"""Frame pairs per second of one loader worker against the frames per second one thread decodes.

For each corpus, side by side in one run (one torch thread, one decoder thread):

* **decode**: every frame of every clip decoded in order to an RGB array by each backend
  (decord, PyAV, and torchcodec when it is installed): the ceiling of any loader that decodes
  video;
* **loader**: ``VideoPairStream`` batches built the way the demo recipe asks (8 frame pairs,
  ``delta`` 0.5-3 s, at most 24 crops per pair, 128x64 crops with the ReID augmentation), with
  each backend, as one worker (the default ``open_clips`` streams), timed over whole visits
  after the first (``--batches`` or more), each in a fresh process whose peak RSS is reported;
* **extraction**: ``isr-lightning extract`` of each corpus with one worker (frames decoded/s
  against PyAV's decode), and for the real video without boxes ``extract --detector`` (one
  decode) against ``detect`` plus a decode, timed apart.

The ratio is loader pairs/s over decode frames/s of the same backend; the target is >= 0.5.
Corpora: H.264 clips written here (``--frames`` frames at 25 fps, 6 moving people, a keyframe
every 2 s and every 10 s, at 640x360 and 1920x1080), the demo corpus when it is cached, and a
real video (``--real PATH``, e.g. OpenCV's vtest.avi; its boxes are detected once here with
background subtraction, see ``docs/own_camera.md``).

Run: ``.venv/bin/python benchmarks/bench_loader_throughput.py [--frames 500] [--batches 160] [--real vtest.avi]
[--backends pyav,torchcodec]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import decord
import torch
from bench_video_loading import write_clip

from isr_lightning.data import CropTransform, PairSampling, VideoPairStream, discover_clips
from isr_lightning.data.commands import detect

DEMO_CORPUS = Path.home() / ".cache/isr-lightning/demo-seed0/corpus-40"
SAMPLING = PairSampling(delta_seconds=(0.5, 3.0), max_crops_per_pair=24)


def backends() -> list[str]:
    """The video backends installed here, decord first."""
    try:
        import torchcodec.decoders  # noqa: F401
    except (ImportError, RuntimeError):  # RuntimeError: FFmpeg's libraries are missing
        return ["decord", "pyav"]
    return ["decord", "pyav", "torchcodec"]


def decode_fps(videos: list[str], backend: str) -> float:
    """Frames/s of decoding every frame of ``videos`` in order to RGB arrays on one thread."""
    frames, start = 0, time.perf_counter()
    for video in videos:
        if backend == "torchcodec":
            from torchcodec.decoders import VideoDecoder

            decoder = VideoDecoder(video, num_ffmpeg_threads=1, dimension_order="NHWC")
            for first in range(0, len(decoder), 16):
                frames += len(decoder.get_frames_in_range(first, min(first + 16, len(decoder))).data)
        elif backend == "pyav":
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


def loader_pairs_per_second(clips: list, backend: str, batches: int) -> tuple[float, float, float]:
    """``(frame pairs/s, crops/s, peak RSS in GB)`` of one worker, timed over whole visits after the first."""
    torch.set_num_threads(1)
    stream = VideoPairStream(
        clips,
        CropTransform(image_size=(128, 64)),
        batch_size=8,
        batches_per_epoch=10**6,
        sampling=SAMPLING,
        video_backend=backend,
    )
    warm = stream.batches_per_visit(1)  # the first visit opens every stream's clip and parses its files
    for b in range(warm):
        stream.make_batch(0, 0, 1, 1, b)
    pairs = crops = 0
    start = time.perf_counter()
    for b in range(warm, warm + -(-batches // warm) * warm):
        batch = stream.make_batch(0, 0, 1, 1, b)
        pairs, crops = pairs + batch.num_pairs, crops + batch.num_crops
    elapsed = time.perf_counter() - start
    return pairs / elapsed, crops / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def isolated(fn, *args):
    """``fn(*args)`` in a fresh process: one loader's open readers never add to the next one's memory."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def extraction_fps(folder: Path, detector: bool = False) -> tuple[float, float]:
    """``(frames decoded/s, seconds)`` of ``isr-lightning extract`` with one worker (boxes found
    in the same decode when ``detector``, for a folder without boxes)."""
    from isr_lightning.data.detectors import BackgroundSubtractionDetector
    from isr_lightning.data.extract import extract_corpus

    with tempfile.TemporaryDirectory() as out:
        found = BackgroundSubtractionDetector() if detector else None
        summary = extract_corpus(str(folder), Path(out) / "shards", size=(128, 64), workers=1, detector=found)
    return summary["decoded"] / summary["seconds"], summary["seconds"]


def written_corpus(root: Path, width: int, height: int, clips: int, frames: int, gop_seconds: int) -> Path:
    folder = root / f"{width}x{height}-gop{gop_seconds}s"
    folder.mkdir()
    for i in range(clips):
        write_clip(folder / f"clip{i}.mp4", width, height, frames, people=6, seed=i, gop=25 * gop_seconds)
    return folder


def real_corpus(root: Path, video: Path) -> Path:
    folder = root / "real"
    folder.mkdir()
    shutil.copy(video, folder / video.name)
    detect(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=160, help="timed batches per loader (whole visits)")
    parser.add_argument("--clips", type=int, default=4, help="clips written per corpus")
    parser.add_argument("--frames", type=int, default=500, help="frames per written clip (25 fps)")
    parser.add_argument("--resolutions", default="640x360,1920x1080")
    parser.add_argument("--gops", default="2,10", help="keyframe intervals of the written clips, in seconds")
    parser.add_argument("--real", type=Path, help="a real video without boxes (vtest.avi)")
    parser.add_argument("--demo", type=Path, default=DEMO_CORPUS, help="the demo corpus (skipped when absent)")
    parser.add_argument("--backends", help="comma-separated video backends (default: every one installed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.backends.split(",") if args.backends else backends()
    print(f"| corpus | decode frames/s: {' / '.join(names)} | loader pairs/s | loader / decode | loader peak RSS, GB |")
    print("|---|---|---|---|---|")
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
        extraction: dict[str, tuple[float, float]] = {}
        for name, folder in corpora:
            clips = discover_clips(folder)
            videos = [c.source for c in clips]
            decode = [decode_fps(videos, backend) for backend in names]
            loaders = [isolated(loader_pairs_per_second, clips, backend, args.batches) for backend in names]
            loader = [pairs for pairs, _, _ in loaders]
            cells = [" / ".join(f"{v:.1f}" for v in decode), " / ".join(f"{v:.1f}" for v in loader)]
            cells.append(" / ".join(f"{p / d:.2f}" for p, d in zip(loader, decode, strict=True)))
            cells.append(" / ".join(f"{rss:.1f}" for _, _, rss in loaders))
            print(f"| {name} | {' | '.join(cells)} |", flush=True)
            pyav_rate = decode[names.index("pyav")] if "pyav" in names else float("nan")
            extraction[name] = (pyav_rate, extraction_fps(folder)[0])
        print("\n| corpus | decode frames/s (PyAV) | extract, boxes given: frames decoded/s | ratio |")
        print("|---|---|---|---|")
        for name, (decode_rate, extract_rate) in extraction.items():
            print(f"| {name} | {decode_rate:.1f} | {extract_rate:.1f} | {extract_rate / decode_rate:.2f} |", flush=True)
        if args.real is not None:  # one decode for boxes and crops: extract --detector against detect + decode
            bare = Path(tmp) / "real-bare"
            bare.mkdir()
            shutil.copy(args.real, bare / args.real.name)
            began = time.perf_counter()
            decode_fps([str(bare / args.real.name)], "pyav")
            decode_s = time.perf_counter() - began
            began = time.perf_counter()
            detect(bare)
            detect_s = time.perf_counter() - began
            (bare / f"{args.real.stem}.txt").unlink()
            _, extract_s = extraction_fps(bare, detector=True)
            print(
                f"\n{args.real.name}: decode {decode_s:.1f} s, detect (decodes too) {detect_s:.1f} s, "
                f"extract --detector (one decode) {extract_s:.1f} s"
            )


if __name__ == "__main__":
    main()
