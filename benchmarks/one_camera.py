"""Adapt a model to one camera's unlabeled footage; score that camera's people before and after.

For each seed: build the recipe with ``--data.root TRAIN`` and ``--model.init_args.weights
START``, score the start on every check, train ``--steps`` steps, score again. A check is a
video with ground-truth tracks turned into a one-camera ReID benchmark
(:func:`~isr_lightning.evaluation.tracks.write_track_benchmark`: each person's early boxes
query their late ones); the training video's own ground truth is one when it has one (the
labels are never used for training). Prints one JSON object per run and a table.

Run (the demo's checkpoint adapted to the real TUD-Stadtmitte camera, two seeds)::

    python benchmarks/one_camera.py --train /data/tud --start outputs/demo/isr.ckpt --steps 300 --seeds 0 1 \\
        --out /tmp/one_camera [-- --model.init_args.optimizer.init_args.lr=0.0003]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from isr_lightning.data import discover_clips
from isr_lightning.evaluation.features import benchmark_scores, embed_split
from isr_lightning.evaluation.tracks import TrackSplit, write_track_benchmark
from isr_lightning.lightning_cli import build_from_config


def checks_of(args: argparse.Namespace) -> dict[str, Any]:
    """The labelled one-camera benchmarks: the training video's own (when it has ground truth) and ``--check``s."""
    videos = []
    for clip in discover_clips(args.train):
        if clip.gt is not None:
            videos.append((Path(clip.source).stem, clip.source, clip.gt))
    for spec in args.check:
        name, files = spec.split("=", 1)
        video, gt = files.split(",")
        videos.append((name, video, gt))
    split = TrackSplit(stride=args.stride)
    return {name: write_track_benchmark(video, gt, args.out / "checks" / name, split) for name, video, gt in videos}


def scores(model: Any, checks: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for name, split in checks.items():
        result = benchmark_scores(*embed_split(model, split))
        out[name] = {key: round(result[key], 4) for key in ("rank1", "mAP")}
    return out


def run(seed: int, args: argparse.Namespace, checks: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    name = f"{args.label}-seed{seed}"
    cli = build_from_config(
        args.recipe,
        [
            f"--seed_everything={seed}",
            f"--data.init_args.root={args.train}",
            f"--model.init_args.weights={args.start}",
            f"--trainer.max_steps={args.steps}",
            f"--trainer.default_root_dir={args.out / name}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            *overrides,
        ],
    )
    row: dict[str, Any] = {"label": args.label, "seed": seed, "steps": args.steps, "overrides": overrides}
    row["before"] = scores(cli.model, checks)
    began = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    row["fit_seconds"] = round(time.perf_counter() - began, 1)
    row["steps_done"] = cli.trainer.global_step
    row["after"] = scores(cli.model, checks)
    metrics = cli.trainer.callback_metrics
    if "train/pair_precision" in metrics:
        row["last_pair_precision"] = round(float(metrics["train/pair_precision"]), 4)
    (args.out / f"{name}.json").write_text(json.dumps(row, indent=2))
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="the camera's footage (a data root)")
    parser.add_argument("--start", default="imagenet", help="weights to start from (a .ckpt, or imagenet)")
    parser.add_argument("--check", action="append", default=[], help="NAME=VIDEO,GT: another labelled check")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--recipe", default="cpu_demo")
    parser.add_argument("--stride", type=int, default=5, help="frames between kept boxes of a track")
    parser.add_argument("--label", default="adapt")
    parser.add_argument("--out", type=Path, default=Path("/tmp/one_camera"))
    args = parser.parse_args(argv[:split])
    args.out.mkdir(parents=True, exist_ok=True)
    checks = checks_of(args)
    rows = [run(seed, args, checks, argv[split + 1 :]) for seed in args.seeds]
    print("\n| check | seed | before rank-1 / mAP | after rank-1 / mAP |\n|---|---|---|---|")
    for row in rows:
        for name in checks:
            b, a = row["before"][name], row["after"][name]
            print(f"| {name} | {row['seed']} | {b['rank1']:.3f} / {b['mAP']:.3f} | {a['rank1']:.3f} / {a['mAP']:.3f} |")


if __name__ == "__main__":
    main()
