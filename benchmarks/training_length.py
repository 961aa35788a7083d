"""How far more training goes, and where it stops transferring: scores along one long run.

Trains the ``cpu_demo`` recipe (ImageNet start, cosine schedule over ``--steps``) on a corpus
and, at each of ``--at`` steps, scores the model on the demo's four synthetic benchmarks
(``mall``, ``station``, ``park`` held out, ``street``) and on a real camera's people
(``--real-check VIDEO,GT``: TUD-Stadtmitte's ground-truth tracks as a one-camera ReID check,
:func:`~isr_lightning.evaluation.tracks.write_track_benchmark`). ``--mix VIDEO`` adds real
unlabeled footage to the synthetic corpus (a manifest of both; the video's boxes are detected
once with background subtraction). Each row is appended to ``OUT/results.jsonl`` when scored.

Run::

    TUD=../shared/data/tud-stadtmitte/TUD-Stadtmitte
    python benchmarks/training_length.py --steps 3000 --at 100 300 1000 3000 \\
        --real-check $TUD.mp4,$TUD.gt.txt --label synthetic --out /tmp/length [--mix vtest.avi] [-- overrides]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from isr_lightning.demo import DEFAULT_CACHE, prepare_demo_data
from isr_lightning.evaluation.features import benchmark_scores, embed_split
from isr_lightning.evaluation.tracks import write_track_benchmark
from isr_lightning.lightning_cli import build_from_config


def mixed_manifest(corpus: Path, video: Path, out: Path) -> Path:
    """A manifest of the synthetic corpus's clips and one real video (its boxes detected here once)."""
    from isr_lightning.data.commands import detect

    folder = out / "real"
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / video.name
    if not local.exists():
        shutil.copy(video, local)
        detect(local)
    rows = ["video,detections,gt"]
    for clip in sorted(corpus.glob("*.mp4")):
        rows.append(f"{clip},{clip.with_suffix('.det.txt')},{clip.with_suffix('.gt.txt')}")
    rows.append(f"{local},{local.with_suffix('.txt')},")
    manifest = out / "mixed.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


class ScoreAt(Callback):
    """Scores the model on every check when training reaches one of ``steps``."""

    def __init__(self, steps: list[int], checks: dict[str, Any], write: Any) -> None:
        self.steps, self.checks, self.write = set(steps), checks, write

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step in self.steps:
            self.steps.discard(trainer.global_step)
            row: dict[str, Any] = {"step": trainer.global_step}
            for name, split in self.checks.items():
                result = benchmark_scores(*embed_split(pl_module, split))
                row[f"{name}_rank1"], row[f"{name}_mAP"] = round(result["rank1"], 4), round(result["mAP"], 4)
            pl_module.train()
            self.write(row)


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--at", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-check", help="VIDEO,GT of a real camera with ground-truth tracks")
    parser.add_argument("--mix", type=Path, help="a real unlabeled video added to the training corpus")
    parser.add_argument("--label", default="synthetic")
    parser.add_argument("--out", type=Path, default=Path("/tmp/length"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv[:split])
    overrides = argv[split + 1 :]
    args.out.mkdir(parents=True, exist_ok=True)
    data = prepare_demo_data(args.cache, seed=0)
    checks: dict[str, Any] = dict(data.benchmarks)
    if args.real_check:
        video, gt = args.real_check.split(",")
        checks["real"] = write_track_benchmark(video, gt, args.out / "checks" / "real")
    root = mixed_manifest(data.corpus, args.mix, args.out) if args.mix else data.corpus
    results = args.out / "results.jsonl"
    began = time.perf_counter()

    def write(row: dict[str, Any]) -> None:
        row.update(label=args.label, seed=args.seed, minutes=round((time.perf_counter() - began) / 60, 1))
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    cli = build_from_config(
        "cpu_demo",
        [
            f"--data.init_args.root={root}",
            f"--seed_everything={args.seed}",
            f"--trainer.max_steps={args.steps}",
            f"--trainer.default_root_dir={args.out / args.label}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            *overrides,
        ],
        trainer_defaults={"callbacks": [ScoreAt(args.at, checks, write)]},
    )
    start: dict[str, Any] = {"step": 0}
    for name, split_ in checks.items():
        result = benchmark_scores(*embed_split(cli.model, split_))
        start[f"{name}_rank1"], start[f"{name}_mAP"] = round(result["rank1"], 4), round(result["mAP"], 4)
    write(start)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)


if __name__ == "__main__":
    main()
