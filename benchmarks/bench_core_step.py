"""Training-step cost of ISRModule under Lightning vs. a plain PyTorch loop doing the same math.

Both sides run the same backbone, projection, Hungarian mining, bidirectional reliability,
weighted InfoNCE, AdamW and warm-up/cosine schedule on the same batches, alternating
rounds so that machine noise hits both alike. The plain loop is also split into phases to
give the share of the step spent in pair mining (similarity, Hungarian, reliability).

    python benchmarks/bench_core_step.py [--backbone resnet18] [--pairs 8] [--crops 6]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader

from isr_lightning import ISRModule, WarmupCosineLR
from isr_lightning.losses import reliability_weighted_info_nce
from isr_lightning.pairs import mine_batch_pairs
from isr_lightning.testing import BatchList, make_frame_pair_batch


class StepTimer(Callback):
    """Wall time of each training batch, from batch start to the end of the optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args: object) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: object) -> None:
        self.times.append(time.perf_counter() - self._start)


def lightning_steps(model: ISRModule, batches: list, steps: int) -> list[float]:
    timer = StepTimer()
    trainer = Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, DataLoader(BatchList(batches), batch_size=None))
    return timer.times


def plain_steps(model: ISRModule, batches: list, steps: int) -> tuple[list[float], list[float]]:
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = WarmupCosineLR(optimizer, total_steps=steps)
    model.train()
    totals, mining = [], []
    for batch in batches[:steps]:
        start = time.perf_counter()
        embeddings = F.normalize(model.projection(model.backbone(batch.crops)), dim=-1)
        t0 = time.perf_counter()
        pairs = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, model.pair_miner, model.reliability)
        mining.append(time.perf_counter() - t0)
        loss = reliability_weighted_info_nce(embeddings, pairs.anchors, pairs.positives, pairs.weights, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        totals.append(time.perf_counter() - start)
    return totals, mining


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=8, help="frame pairs per batch")
    parser.add_argument("--crops", type=int, default=6, help="max crops per frame")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    size = (args.height, args.width)
    batches = [make_frame_pair_batch(args.pairs, (2, args.crops), size, seed=s) for s in range(args.steps + 1)]
    crops = statistics.mean(b.num_crops for b in batches)
    lightning_times, plain_times, mining_times = [], [], []
    for _ in range(args.rounds):
        # Drop the first step of each run (allocator warm-up, Lightning set-up).
        model = ISRModule(backbone=args.backbone, image_size=size)
        lightning_times += lightning_steps(model, batches, args.steps + 1)[1:]
        model = ISRModule(backbone=args.backbone, image_size=size)
        totals, mining = plain_steps(model, batches, args.steps + 1)
        plain_times += totals[1:]
        mining_times += mining[1:]
    lightning_median = statistics.median(lightning_times)
    plain_median = statistics.median(plain_times)
    mining_median = statistics.median(mining_times)
    print(f"backbone={args.backbone} input={size} frame_pairs/batch={args.pairs} mean crops/batch={crops:.1f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps")
    print()
    print("| loop | median step (s) | ratio to plain |")
    print("|---|---|---|")
    print(f"| plain PyTorch | {plain_median:.4f} | 1.000 |")
    print(f"| ISRModule + Trainer | {lightning_median:.4f} | {lightning_median / plain_median:.3f} |")
    print()
    print(f"pair mining (similarity + Hungarian + reliability): {mining_median * 1e3:.2f} ms per step,")
    print(f"{100 * mining_median / plain_median:.2f}% of the plain step")


if __name__ == "__main__":
    main()
