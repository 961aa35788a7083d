"""Video loading throughput: seek + batch decode (decord) against a sequential naive loader.

Writes H.264 clips (640x360 and 1920x1080, 25 fps, keyframe every 50 frames) with synthetic
MOT sidecars into a temporary folder, then measures per worker (one process):

* ``ours``: :class:`isr_lightning.data.VideoPairStream` batches (decord ``get_batch`` on
  frames ``t`` and ``t + delta`` only, crop, resize to 256x128, ReID augmentation);
* ``naive``: PyAV decodes every frame from the start of the clip up to ``t + delta``, then
  the same crops and transform;

and whether 2 dataloader workers keep a CPU training step fed (ISRModule, a small timm
backbone, the batch below), as the ratio of loader throughput to step throughput and as the
share of loop time spent waiting for data.

Run: ``.venv/bin/python benchmarks/bench_video_loading.py [--frames 250] [--pairs 48]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from isr_lightning.data import CropTransform, PairSampling, VideoPairLoader, VideoPairStream, discover_clips
from isr_lightning.data.transforms import crop_boxes


def write_clip(path: Path, width: int, height: int, frames: int, people: int, seed: int, gop: int = 50) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "veryfast", "crf": "23"}
        noise = rng.integers(0, 40, size=(height, width, 1), dtype=np.uint8)
        for t in range(frames):
            img = ((xx[..., None] + yy[..., None] * 2 + 3 * t + np.array([0, 60, 120])) % 200).astype(np.uint8)
            img = img + noise
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    starts = rng.uniform(0, width * 0.7, size=people)
    ys = rng.uniform(0, height * 0.4, size=people)
    lines = []
    for f in range(1, frames + 1):
        for p in range(people):
            x = (starts[p] + 2 * f) % (width * 0.85)
            lines.append(f"{f},-1,{x:.1f},{ys[p]:.1f},{width * 0.08:.1f},{height * 0.4:.1f},0.9")
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")


def naive_pair(clip, frames_boxes, t: int, u: int, transform, gen):
    """Decode sequentially from frame 0 to ``u`` with PyAV; keep ``t`` and ``u``."""
    kept = {}
    with av.open(clip.source) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i + 1 in (t, u):
                kept[i + 1] = frame.to_ndarray(format="rgb24")
            if i + 1 >= u:
                break
    out = []
    for f in (t, u):
        fb = frames_boxes[f]
        out.append(transform(crop_boxes(kept[f], fb.boxes), gen))
    return out


def bench_resolution(root: Path, width: int, height: int, args) -> dict:
    folder = root / f"{width}x{height}"
    folder.mkdir()
    for i in range(args.clips):
        write_clip(folder / f"clip{i}.mp4", width, height, args.frames, args.people, seed=i)
    clips = discover_clips(folder)
    transform = CropTransform(image_size=(256, 128))
    n_batches = max(1, args.pairs // args.batch_size)
    result = {"res": f"{width}x{height}x{args.frames}", "clips": clips}
    sampled: list[tuple[int, int, int]] = []
    crops = 0
    for backend in ("decord", "pyav"):
        stream = VideoPairStream(
            clips,
            transform,
            batch_size=args.batch_size,
            batches_per_epoch=10**6,
            sampling=PairSampling(delta_frames=(1, 30), clips_per_batch=args.clips),
            video_backend=backend,
        )
        stream.make_batch(0, 0, 1, 1, 0)  # open the readers (index + first frame) outside the timing
        t0 = time.perf_counter()
        crops, pairs = 0, []
        for b in range(1, n_batches + 1):
            batch = stream.make_batch(0, 0, 1, 1, b)
            crops += batch.num_crops
            pairs += [(int(c), *map(int, f)) for c, f in zip(batch.clip_index, batch.frame_ids, strict=True)]
        elapsed = time.perf_counter() - t0
        assert not sampled or pairs == sampled  # both backends draw the same frame pairs
        sampled = pairs
        result[f"{backend}_pairs_s"], result[f"{backend}_crops_s"] = len(pairs) / elapsed, crops / elapsed
    # naive on the same frame pairs
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    naive_crops = 0
    for c, t, u in sampled:
        a, b2 = naive_pair(clips[c], stream.crops.clip_index(c).frames, t, u, transform, gen)
        naive_crops += a.shape[0] + b2.shape[0]
    naive = time.perf_counter() - t0
    assert naive_crops == crops
    result.update(pairs=len(sampled), naive_pairs_s=len(sampled) / naive, naive_crops_s=naive_crops / naive)
    return result


def bench_feeding(clips, args) -> dict:
    from isr_lightning.module import ISRModule

    torch.set_num_threads(2)
    model = ISRModule(backbone=args.backbone, pretrained=False, image_size=(256, 128), lr_scheduler=None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch):
        opt.zero_grad()
        loss = model.training_step(batch, 0)
        loss.backward()
        opt.step()

    def make_stream():
        return VideoPairStream(
            clips,
            CropTransform(image_size=(256, 128)),
            batch_size=args.batch_size,
            batches_per_epoch=args.feed_batches,
            sampling=PairSampling(delta_frames=(1, 30), clips_per_batch=min(4, len(clips))),
        )

    cached = [make_stream().make_batch(0, 0, 1, 1, b) for b in range(3)]
    step(cached[0])
    t0 = time.perf_counter()
    for i in range(args.feed_batches):
        step(cached[i % 3])
    step_time = (time.perf_counter() - t0) / args.feed_batches
    # loader alone with 2 workers
    loader = VideoPairLoader(make_stream(), num_workers=2)
    t0 = time.perf_counter()
    n = sum(1 for _ in loader)
    load_time = (time.perf_counter() - t0) / n
    # the real loop: 2 workers + training step in the main process, time spent waiting
    loader = VideoPairLoader(make_stream(), num_workers=2)
    waited, t0 = 0.0, time.perf_counter()
    it = iter(loader)
    first = next(it)
    start = time.perf_counter()
    step(first)
    while True:
        w0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        waited += time.perf_counter() - w0
        step(batch)
    loop = time.perf_counter() - start
    return {
        "step_s": step_time,
        "loader_batch_s": load_time,
        "feed_ratio": step_time / load_time,
        "wait_share": waited / loop,
        "crops_per_batch": float(np.mean([b.num_crops for b in cached])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--feed-batches", type=int, default=12)
    parser.add_argument("--resolutions", default="640x360,1920x1080")
    parser.add_argument("--no-feed", action="store_true", help="skip the training-step comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| clip (WxHxframes) | pairs | decord pairs/s (crops/s) | pyav pairs/s (crops/s) |"
        " naive pairs/s (crops/s) | decord/naive | pyav/naive |"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.resolutions.split(","):
            w, h = map(int, res.split("x")[:2])
            rows.append(bench_resolution(Path(tmp), w, h, args))
            r = rows[-1]
            print(
                f"| {r['res']} | {r['pairs']} | {r['decord_pairs_s']:.2f} ({r['decord_crops_s']:.0f}) | "
                f"{r['pyav_pairs_s']:.2f} ({r['pyav_crops_s']:.0f}) | "
                f"{r['naive_pairs_s']:.2f} ({r['naive_crops_s']:.0f}) | "
                f"{r['decord_pairs_s'] / r['naive_pairs_s']:.1f}x | {r['pyav_pairs_s'] / r['naive_pairs_s']:.1f}x |",
                flush=True,
            )
        for r in [] if args.no_feed else rows:
            f = bench_feeding(r["clips"], args)
            print(
                f"feeding {r['res']} ({args.backbone}, {args.batch_size} pairs, {f['crops_per_batch']:.0f} crops):"
                f" step {f['step_s']:.2f} s/batch, 2-worker loader {f['loader_batch_s']:.2f} s/batch,"
                f" ratio step/loader {f['feed_ratio']:.2f}, data wait {100 * f['wait_share']:.0f}% of loop",
                flush=True,
            )


if __name__ == "__main__":
    main()
