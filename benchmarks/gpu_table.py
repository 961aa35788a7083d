"""The GPU table, in one prepared run of under 8 minutes: ISR's training speed against a bare loop.

Rows, each side by side on the same GPU:

* **bare loop**: ResNet-50 at 256x128, projection, bf16 autocast, AdamW, on random crops
  already on the GPU: the ceiling of any data path;
* **ISR from video**: ``ISRModule(resnet50)`` under a Lightning ``Trainer`` (bf16-mixed), fed by
  ``VideoPairDataModule`` decoding the corpus (``--workers`` loader workers);
* **ISR from shards**: the same, fed by crop shards extracted once from the corpus
  (target: >= 80 % of the bare loop's crops/s);
* **swin_b**: the paper's backbone at 224x224, ``--swin-steps`` steps from shards;
* **decoders**: frames/s of decord, PyAV and torchcodec (CPU, and NVDEC on CUDA) on the corpus.

Prints a markdown table and writes ``OUT/gpu_table.json``. ``--dry-run`` shrinks everything
to a CPU check of seconds (the test suite runs it): tiny models, a few steps, no bf16.

On the lent GPU machine (Python 3.12, torch, timm, lightning, torchmetrics present), carry the
missing wheels (decord, av, jsonargparse, litdata, wandb, docstring-parser, typeshed-client;
see the device tool's README) and a corpus rendered here (``isr-lightning synth corpus
.gpu/corpus --num_clips 16 --width 640 --height 360``), then run
``PYTHONPATH=src:/tmp/site python benchmarks/gpu_table.py --corpus .gpu/corpus --out $OUT``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer

from isr_lightning import ISRModule
from isr_lightning.callbacks import CropThroughput
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.data.extract import extract_corpus

FULL = {"backbone": "resnet50", "size": (256, 128), "swin": "swin_base_patch4_window7_224", "precision": "bf16-mixed"}
DRY = {"backbone": "resnet10t", "size": (64, 32), "swin": "resnet10t", "precision": "32-true"}


def bare_loop(backbone: str, size: tuple[int, int], crops: int, steps: int, device: str, bf16: bool) -> float:
    """Crops/s of a plain PyTorch training loop on random crops already on the device."""
    model = ISRModule(backbone=backbone, image_size=size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(crops, 3, *size, device=device)
    for step in range(steps + 2):
        if step == 2:  # warm-up (cudnn autotune, allocator) outside the timing
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(images).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return crops * steps / (time.perf_counter() - start)


def isr_run(backbone: str, size: tuple[int, int], root: Path, steps: int, workers: int, setup: dict) -> float:
    """Crops/s of ISR training (Trainer, loader included) over ``steps`` steps after a warm-up window."""
    meter = CropThroughput(window=max(1, steps // 2))
    data = VideoPairDataModule(
        root=root,
        batch_size=16,
        batches_per_epoch=10**6,
        transform=CropTransform(image_size=size),
        sampling=PairSampling(delta_seconds=(0.5, 3.0), max_crops_per_pair=32),
        num_workers=workers,
        pin_memory=setup["device"] == "cuda",
    )
    model = ISRModule(backbone=backbone, image_size=size)
    trainer = Trainer(
        accelerator="gpu" if setup["device"] == "cuda" else "cpu",
        devices=1,
        precision=setup["precision"],
        max_steps=steps + max(1, steps // 2),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[meter],
    )
    trainer.fit(model, datamodule=data)
    return float(meter.last_crops_per_sec or 0.0)


def decoder_rates(corpus: Path, device: str) -> dict[str, float]:
    """Frames/s of each decoder over the corpus (one thread; NVDEC for torchcodec on CUDA)."""
    from bench_loader_throughput import decode_fps

    from isr_lightning.data.video import TorchCodecVideoReader, UnreadableVideoError

    videos = sorted(str(p) for p in corpus.glob("*.mp4"))
    rates = {backend: decode_fps(videos, backend) for backend in ("decord", "pyav")}
    for name, where in (("torchcodec", "cpu"), ("torchcodec-nvdec", "cuda")):
        if where == "cuda" and device != "cuda":
            continue
        try:
            frames, start = 0, time.perf_counter()
            for video in videos:
                reader = TorchCodecVideoReader(video, num_threads=1, device=where)
                for first in range(0, reader.num_frames, 16):
                    frames += len(reader.get_frames(range(first, min(first + 16, reader.num_frames))))
            rates[name] = frames / (time.perf_counter() - start)
        except UnreadableVideoError as err:  # not installed, or no FFmpeg / NVDEC
            rates[name] = float("nan")
            print(f"{name}: {err}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a rendered video corpus (default: render a small one)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per ISR row")
    parser.add_argument("--swin-steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_table"))
    parser.add_argument("--dry-run", action="store_true", help="a CPU check of seconds: tiny models, few steps")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    setup = {**(DRY if args.dry_run else FULL), "device": device}
    if args.dry_run:
        args.steps, args.swin_steps, args.workers = 2, 2, 0
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if corpus is None:
            from isr_lightning.synth import generate_corpus

            corpus = Path(tmp) / "corpus"
            clips, seconds = (2, 2) if args.dry_run else (16, 10)
            generate_corpus(corpus, num_clips=clips, seconds=seconds, preview=False)
        shards = Path(tmp) / "shards"
        extract_corpus(str(corpus), shards, size=setup["size"], workers=1 if args.dry_run else 4)
        bf16 = setup["precision"].startswith("bf16")
        rows: dict[str, Any] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
        crops = 8 if args.dry_run else 256
        rows["bare_crops_per_s"] = bare_loop(setup["backbone"], setup["size"], crops, args.steps, device, bf16)
        rows["video_crops_per_s"] = isr_run(setup["backbone"], setup["size"], corpus, args.steps, args.workers, setup)
        rows["shards_crops_per_s"] = isr_run(setup["backbone"], setup["size"], shards, args.steps, args.workers, setup)
        swin_size = (224, 224) if not args.dry_run else setup["size"]
        swin_shards = Path(tmp) / "swin_shards"
        extract_corpus(str(corpus), swin_shards, size=swin_size, workers=1 if args.dry_run else 4)
        rows["swin_crops_per_s"] = isr_run(setup["swin"], swin_size, swin_shards, args.swin_steps, args.workers, setup)
        rows["decoders_frames_per_s"] = decoder_rates(corpus, device)
    rows["shards_vs_bare"] = rows["shards_crops_per_s"] / rows["bare_crops_per_s"]
    rows["video_vs_bare"] = rows["video_crops_per_s"] / rows["bare_crops_per_s"]
    (args.out / "gpu_table.json").write_text(json.dumps(rows, indent=2))
    print(f"| row | crops/s | x bare loop |\n|---|---|---|\n| bare loop | {rows['bare_crops_per_s']:.0f} | 1.00 |")
    for key, name in (("video", "ISR from video"), ("shards", "ISR from shards")):
        print(f"| {name} | {rows[f'{key}_crops_per_s']:.0f} | {rows[f'{key}_vs_bare']:.2f} |")
    print(f"| {setup['swin']} | {rows['swin_crops_per_s']:.0f} | - |")
    print("decoders (frames/s):", json.dumps({k: round(v, 1) for k, v in rows["decoders_frames_per_s"].items()}))


if __name__ == "__main__":
    main()
