"""One node of a multi-node training run, as each machine would start it (for the 2-node tests).

Run on every node with the same arguments and Lightning's variables ``MASTER_ADDR``,
``MASTER_PORT`` and ``NODE_RANK``::

    python -m tests.multinode_fit SHARDS RUN OUT --steps 200

Trains a tiny ISRModule on ``num_nodes`` x 1 CPU process (gloo) from ``SHARDS`` (a local folder
or a URL), checkpoints to ``RUN/checkpoints`` (``--resume``: from its ``last.ckpt``), and writes
``OUT/rank{R}.pt``: every batch's epoch, clips and frames, the final step, and the loss of a
fixed per-rank batch computed with the trained weights (all ranks together, as in training).
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.strategies import DDPStrategy

from isr_lightning import ISRModule
from isr_lightning.callbacks import RunCheckpoint
from isr_lightning.data import BoxSelection, CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.pairs import mine_batch_pairs
from isr_lightning.testing import make_frame_pair_batch

IMAGE_SIZE = (32, 16)


def tiny_model() -> ISRModule:
    """The model every node and the single-process reference build."""
    return ISRModule(
        backbone="test_vit",
        backbone_kwargs={"img_size": IMAGE_SIZE, "patch_size": 8},
        image_size=IMAGE_SIZE,
        embed_dim=16,
        temperature=0.1,
        lr_scheduler=None,
    )


def fixed_batch(rank: int):
    """The batch whose loss is compared with one process on both ranks' batches."""
    return make_frame_pair_batch(3, crops_per_frame=(1, 5), image_size=IMAGE_SIZE, seed=100 + rank)


def batch_loss(model: ISRModule, batch) -> torch.Tensor:
    """The training loss of ``batch`` (every rank calls it: the loss gathers across ranks)."""
    with torch.no_grad():
        embeddings = model(batch.crops)
        pairs = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, model.pair_miner, model.reliability)
        return model.criterion(embeddings, pairs.anchors, pairs.positives, pairs.weights, batch.crop_sources())


class RecordBatches(Callback):
    """Keeps the epoch, clips and later frames of every training batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int], list[int]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        later = batch.frame_ids[:, 1].tolist()
        self.batches.append((trainer.current_epoch, batch.clip_index.tolist(), later))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shards")
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batches_per_epoch", type=int, default=5)
    parser.add_argument("--num_nodes", type=int, default=2)
    parser.add_argument("--timeout_s", type=int, default=60)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    seed_everything(0)
    data = VideoPairDataModule(
        args.shards,
        batch_size=2,
        batches_per_epoch=args.batches_per_epoch,
        transform=CropTransform(image_size=IMAGE_SIZE),
        sampling=PairSampling(delta_frames=(1, 3), open_clips=2),
        boxes=BoxSelection(min_box_size=2),
        num_workers=1,
    )
    record = RecordBatches()
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        num_nodes=args.num_nodes,
        strategy=DDPStrategy(process_group_backend="gloo", timeout=timedelta(seconds=args.timeout_s)),
        max_steps=args.steps,
        default_root_dir=args.run,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[RunCheckpoint(every_n_train_steps=10), record],
    )
    model = tiny_model()
    ckpt = os.path.join(args.run, "checkpoints", "last.ckpt") if args.resume else None
    trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    rank = trainer.global_rank
    loss = batch_loss(model, fixed_batch(rank))
    state = {k: v.clone() for k, v in model.state_dict().items()} if rank == 0 else None
    os.makedirs(args.out, exist_ok=True)
    result = {"batches": record.batches, "step": trainer.global_step, "loss": loss, "state": state}
    torch.save(result, os.path.join(args.out, f"rank{rank}.pt"))


if __name__ == "__main__":
    main()
