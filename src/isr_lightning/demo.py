"""``isr-lightning demo``: watch ISR learn identity from unlabeled synthetic video on a CPU.

1. Renders (once, cached) a corpus of synthetic street clips with noisy detections and a
   cross-domain Market-1501-layout benchmark of unseen people in another visual domain.
2. Evaluates the untrained model: rank-k/mAP/mINP on the benchmark, and the precision of
   the pairs its matching mines on the training videos.
3. Trains ISR with the ``cpu_demo.yaml`` recipe for a time budget.
4. Evaluates again, prints a before/after table and writes ``isr.ckpt``, ``metrics.json``
   and ``ranked_lists.png`` to the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import lazy_instance
from lightning.pytorch.callbacks import RichProgressBar

from isr_lightning.batch import FramePairBatch
from isr_lightning.callbacks import TrainingTimeBudget
from isr_lightning.data import VideoPairDataModule
from isr_lightning.evaluation import (
    ReIDImageDataset,
    ReIDSplit,
    eval_transform,
    evaluate_reid,
    load_market_layout,
    ranked_lists,
    render_ranked_lists,
)
from isr_lightning.evaluation.commands import extract_features
from isr_lightning.lightning_cli import build_from_config, recipe_path
from isr_lightning.loggers import WandbLogger
from isr_lightning.matching import HungarianMiner
from isr_lightning.module import ISRModule
from isr_lightning.pairs import mine_batch_pairs, pair_precision_counts
from isr_lightning.reliability import UniformReliability
from isr_lightning.synth import generate_benchmark, generate_corpus

__all__ = ["benchmark_scores", "main", "training_pair_precision", "unaugmented_frame_pairs"]

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("ISR_LIGHTNING_CACHE", Path.home() / ".cache" / "isr-lightning"))
REPORTED = ("rank1", "rank5", "rank10", "mAP", "mINP", "pair_precision")


@dataclass
class Features:
    """Embeddings ``(N, D)`` with person ids ``(N,)`` and camera ids ``(N,)``."""

    feats: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor


def embed_split(model: ISRModule, split: ReIDSplit, batch_size: int = 128) -> tuple[Features, Features]:
    """Embed the query and gallery images of a benchmark with the model's eval transform."""
    transform = eval_transform(model.data_config)
    query = Features(*extract_features(model, ReIDImageDataset(split.query, transform), batch_size))
    gallery = Features(*extract_features(model, ReIDImageDataset(split.gallery, transform), batch_size))
    return query, gallery


def benchmark_scores(query: Features, gallery: Features) -> dict[str, float]:
    """Rank-1/5/10, mAP and mINP under the standard protocol (cosine)."""
    result = evaluate_reid(query.feats, gallery.feats, query.pids, gallery.pids, query.camids, gallery.camids)
    return {key: float(value) for key, value in result.to_dict().items() if key in REPORTED}


def unaugmented_frame_pairs(corpus: Path, image_size: Sequence[int], num_batches: int = 12) -> Iterator[FramePairBatch]:
    """A fixed set of training batches (8 frame pairs, 0.5-3 s apart, no augmentation) with gt ids."""
    data = VideoPairDataModule(
        root=corpus,
        image_size=tuple(image_size),
        batch_size=8,
        batches_per_epoch=num_batches,
        delta_seconds=(0.5, 3.0),
        augment=False,
        num_workers=0,
        seed=12345,
    )
    yield from data.train_dataloader()


@torch.no_grad()
def training_pair_precision(model: ISRModule, corpus: Path, image_size: Sequence[int], num_batches: int = 12) -> float:
    """Precision of Hungarian matching on the model's embeddings of (unaugmented) training frame pairs.

    The same association for every model, whatever its own pair miner (an instance-
    discrimination model cannot associate two frames itself), so that the number compares
    representations. Uses the ground-truth track ids of the synthetic corpus, which training
    never sees.
    """
    correct = total = 0
    for batch in unaugmented_frame_pairs(corpus, image_size, num_batches):
        embeddings = model.embed(batch.crops)
        pairs = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, HungarianMiner(), UniformReliability())
        c, t = pair_precision_counts(pairs, batch.track_ids.to(embeddings.device))
        correct, total = correct + c, total + t
    return correct / max(total, 1)


def save_ranked_lists(split: ReIDSplit, query: Features, gallery: Features, path: Path, rows: int = 6) -> None:
    """Write a picture of ``rows`` queries with their top-10 gallery images (green: same person)."""
    step = max(1, len(split.query) // rows)
    chosen = torch.arange(0, step * rows, step)[:rows]
    top, correct = ranked_lists(
        query.feats[chosen], gallery.feats, query.pids[chosen], gallery.pids, query.camids[chosen], gallery.camids
    )
    query_images = [ReIDImageDataset(split.query).load_image(int(i)) for i in chosen]
    gallery_data = ReIDImageDataset(split.gallery)
    gallery_images = [[gallery_data.load_image(int(j)) if j >= 0 else None for j in row] for row in top]
    render_ranked_lists(query_images, gallery_images, correct.tolist()).save(path)


def _evaluate(model: ISRModule, split: ReIDSplit, corpus: Path) -> tuple[dict[str, float], Features, Features]:
    query, gallery = embed_split(model, split)
    scores = benchmark_scores(query, gallery)
    scores["pair_precision"] = training_pair_precision(model, corpus, model.image_size)
    return scores, query, gallery


def _table(before: dict[str, float], after: dict[str, float]) -> str:
    lines = [f"{'metric':<16}{'before':>10}{'after':>10}"]
    lines += [f"{key:<16}{before[key]:>10.3f}{after[key]:>10.3f}" for key in REPORTED]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="isr-lightning demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where generated data is kept")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on training steps")
    parser.add_argument("--config", default=str(recipe_path("cpu_demo")), help="LightningCLI recipe")
    parser.add_argument("--clips", type=int, default=40, help="synthetic training clips")
    parser.add_argument("--identities", type=int, default=150, help="benchmark identities")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. --model.init_args.backbone=resnet10t")
    args, overrides = parser.parse_known_args(argv)
    overrides = [*args.overrides, *overrides]

    data_dir = args.cache / f"demo-seed{args.seed}"
    print(f"synthetic data in {data_dir} (generated once, then reused)")
    corpus = data_dir / f"corpus-{args.clips}"
    generate_corpus(corpus, num_clips=args.clips, seed=args.seed)
    bench = data_dir / f"benchmark-{args.identities}"
    generate_benchmark(bench, num_identities=args.identities, seed=args.seed + 1)
    split = load_market_layout(bench, name="synthetic-benchmark")

    args.out.mkdir(parents=True, exist_ok=True)
    overrides = [f"--data.init_args.root={corpus}", f"--seed_everything={args.seed}", *overrides]
    if args.max_steps is not None:
        overrides.append(f"--trainer.max_steps={args.max_steps}")
    cli = build_from_config(
        args.config,
        overrides,
        trainer_defaults={
            "default_root_dir": str(args.out),
            "logger": lazy_instance(WandbLogger, project="isr-lightning-demo", save_dir=str(args.out)),
            "callbacks": [lazy_instance(TrainingTimeBudget, minutes=args.minutes), lazy_instance(RichProgressBar)],
        },
    )
    model: ISRModule = cli.model

    print("evaluating the untrained model ...")
    before, _, _ = _evaluate(model, split, corpus)
    print(f"training for about {args.minutes:g} minutes ...")
    cli.trainer.fit(model, datamodule=cli.datamodule)
    print("evaluating the trained model ...")
    after, query, gallery = _evaluate(model, split, corpus)

    cli.trainer.save_checkpoint(args.out / "isr.ckpt")
    metrics: dict[str, Any] = {"before": before, "after": after, "steps": cli.trainer.global_step}
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_ranked_lists(split, query, gallery, args.out / "ranked_lists.png")
    print()
    print(f"{len(split.query)} queries, {len(split.gallery)} gallery images of unseen people, other domain")
    print(_table(before, after))
    print(f"\ntrained {cli.trainer.global_step} steps; outputs in {args.out.resolve()}:")
    print("  isr.ckpt  metrics.json  ranked_lists.png")
    print("what to expect from these numbers: docs/benchmarks.md, section 'The demo'")
    return 0
