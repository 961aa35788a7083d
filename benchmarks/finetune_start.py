"""Does ISR pretraining help supervised fine-tuning? The same fine-tuning from three starting points.

Each row fine-tunes the ``finetune_cpu.yaml`` recipe (MobileNetV2, 128-d, 128x64, BNNeck with
label-smoothed identity loss and batch-hard triplet loss) for the same number of steps on the
training split of one rendered domain (``mall``: 300 labelled identities), starting from

- ``isr``: an ISR checkpoint made by ``isr-lightning demo`` (``--isr-ckpt``),
- ``imagenet``: the demo's own starting weights (``weights: imagenet``),
- ``random``: random initialisation,

and evaluates rank-1 and mAP on that domain's query/gallery (150 other identities) and on the
same 150 identities rendered in domains not used for training (``station``, ``park``), before
(``--before-seeds``) and after fine-tuning. Images are resized and normalised as the data module's
validation does. Writes one JSON per run and ``results.json`` under ``--out`` and prints a table.

    python benchmarks/finetune_start.py --isr-ckpt outputs/demo/isr.ckpt --steps 200 --seeds 0 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from isr_lightning.evaluation import ReIDImageDataset, ReIDSplit, evaluate_reid, load_market_layout
from isr_lightning.evaluation.features import extract_features
from isr_lightning.finetune.data import CropImageTransform, ReIDTrainDataModule
from isr_lightning.lightning_cli import build_from_config
from isr_lightning.synth import generate_benchmark

STARTS = ("isr", "imagenet", "random")


def test_splits(data: ReIDTrainDataModule, domains: list[str]) -> dict[str, ReIDSplit]:
    """The fine-tuning domain's query/gallery and the same identities rendered in ``domains``."""
    data.prepare_data()
    data.setup("fit")
    assert data.split is not None and data.synthetic is not None
    splits = {data.synthetic.domain: data.split}
    for domain in domains:
        root = data.root.parent / f"test-{domain}-seed{data.synthetic.seed}"
        generate_benchmark(root, num_identities=data.synthetic.num_identities, seed=data.synthetic.seed, domain=domain)
        splits[domain] = load_market_layout(root, name=f"synthetic-{domain}")
    return splits


def scores(model: Any, splits: dict[str, ReIDSplit], data: ReIDTrainDataModule) -> dict[str, float]:
    """``{DOMAIN}_rank1`` and ``{DOMAIN}_mAP`` for every split (cosine, standard protocol)."""
    transform = CropImageTransform(dataclasses.replace(data.transform, train=False))
    out = {}
    for name, split in splits.items():
        query = extract_features(model, ReIDImageDataset(split.query, transform), batch_size=128)
        gallery = extract_features(model, ReIDImageDataset(split.gallery, transform), batch_size=128)
        result = evaluate_reid(query[0], gallery[0], query[1], gallery[1], query[2], gallery[2])
        out[f"{name}_rank1"], out[f"{name}_mAP"] = result.rank1, result.mAP
    return out


def run(start: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune one row and return its scores before (optional) and after."""
    weights = {"isr": str(args.isr_ckpt), "imagenet": "imagenet", "random": "null"}[start]
    name = f"{start}-seed{seed}"
    cli = build_from_config(
        "finetune_cpu",
        [
            f"--seed_everything={seed}",
            f"--data.init_args.seed={seed}",
            f"--model.init_args.weights={weights}",
            f"--trainer.max_steps={args.steps}",
            "--trainer.limit_val_batches=0",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
        ],
        trainer_defaults={"default_root_dir": str(args.out / name)},
    )
    splits = test_splits(cli.datamodule, args.test_domains)
    row: dict[str, Any] = {"start": start, "seed": seed, "steps": args.steps}
    if seed in args.before_seeds:
        row["before"] = scores(cli.model, splits, cli.datamodule)
    began = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    row["fit_seconds"] = round(time.perf_counter() - began, 1)
    row["steps_done"] = cli.trainer.global_step
    row["after"] = scores(cli.model, splits, cli.datamodule)
    (args.out / f"{name}.json").write_text(json.dumps(row, indent=2))
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict[str, Any]], domains: list[str]) -> str:
    """Markdown table: one line per start, seeds as ``a / b``."""
    columns = [f"{d}_{m}" for d in domains for m in ("rank1", "mAP")]
    lines = ["| start | when | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for start in STARTS:
        mine = [r for r in rows if r["start"] == start]
        for when in ("before", "after"):
            have = [r for r in mine if when in r]
            if have:
                cells = [" / ".join(f"{r[when][c]:.3f}" for r in have) for c in columns]
                lines.append(f"| {start} | {when} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isr-ckpt", type=Path, required=True, help="ISR checkpoint of `isr-lightning demo`")
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps per row (the same budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--starts", nargs="+", default=list(STARTS), choices=STARTS)
    parser.add_argument("--before-seeds", type=int, nargs="*", default=[0], help="seeds also scored before")
    parser.add_argument("--test-domains", nargs="+", default=["station", "park"], help="domains not trained on")
    parser.add_argument("--out", type=Path, default=Path("outputs/finetune_start"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [run(start, seed, args) for seed in args.seeds for start in args.starts]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(table(rows, ["mall", *args.test_domains]))


if __name__ == "__main__":
    main()
