"""``isr-lightning demo``: train ISR on CPU and show that it learns to associate people.

Interim version: trains on generated frame pairs (:mod:`isr_lightning.testing`) and reports
the pair precision of Hungarian matching on held-out frame pairs before and after training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader

from isr_lightning.module import ISRModule
from isr_lightning.pairs import mine_batch_pairs, pair_precision_counts
from isr_lightning.testing import BatchList, make_frame_pair_batch

__all__ = ["main"]


def held_out_pair_precision(model: ISRModule, batches: list) -> float:
    """Share of Hungarian matches joining the same person on ``batches`` (model in eval mode)."""
    correct = total = 0
    for batch in batches:
        embeddings = model.embed(batch.crops)
        pairs = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, model.pair_miner, model.reliability)
        c, t = pair_precision_counts(pairs, batch.track_ids.to(embeddings.device))
        correct, total = correct + c, total + t
    return correct / max(total, 1)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="isr-lightning demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--steps", type=int, default=60, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seed_everything(args.seed)
    size = (64, 32)
    train = [make_frame_pair_batch(8, (3, 8), size, num_identities=200, seed=s) for s in range(args.steps)]
    held_out = [make_frame_pair_batch(8, (3, 8), size, num_identities=200, seed=10_000 + s) for s in range(8)]
    model = ISRModule(
        backbone="resnet10t",
        image_size=size,
        embed_dim=64,
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3),
    )
    before = held_out_pair_precision(model, held_out)
    trainer = Trainer(accelerator="cpu", max_steps=args.steps, default_root_dir=args.out, logger=False)
    trainer.fit(model, DataLoader(BatchList(train), batch_size=None))
    after = held_out_pair_precision(model, held_out)
    args.out.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(args.out / "isr.ckpt")
    metrics = {"before": {"pair_precision": before}, "after": {"pair_precision": after}}
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"held-out pair precision: before {before:.3f}  after {after:.3f}")
    print(f"outputs in {args.out.resolve()}")
    return 0
