"""2-process gloo DDP on CPU equals one process on the concatenated batch."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule, Trainer, seed_everything
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.distributed import gather_variable
from isr_lightning.losses import ReliabilityWeightedInfoNCE
from isr_lightning.testing import BatchList, concat_batches, make_frame_pair_batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Rank 0 holds 7 crops and 3 pairs; rank 1 holds 4 crops and, in the second case, no pair.
FEATURES = torch.randn(11, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
LOCAL_ROWS = [slice(0, 7), slice(7, 11)]
LOCAL_PAIRS = {
    "both_ranks_have_pairs": [([0, 1, 2], [3, 5, 6], [0.5, 1.0, 2.0]), ([0, 2], [1, 3], [1.5, 0.25])],
    "rank1_has_no_pairs": [([0, 1, 2], [3, 5, 6], [0.5, 1.0, 2.0]), ([], [], [])],
    "same_video_across_ranks": [([0, 1, 2], [3, 5, 6], [0.5, 1.0, 2.0]), ([0, 2], [1, 3], [1.5, 0.25])],
}
# (video, rank-local frame pair) of each crop: rank 1's frame pair 0 is another time of video 0,
# which rank 0's pairs 0 and 2 also show; the single process numbers rank 1's frame pairs from 10.
LOCAL_SOURCES = [[[0, 0], [0, 0], [0, 0], [0, 0], [1, 1], [1, 1], [0, 2]], [[0, 0], [0, 0], [2, 1], [2, 1]]]
SINGLE_SOURCES = LOCAL_SOURCES[0] + [[v, p + 10] for v, p in LOCAL_SOURCES[1]]


def _sources(case: str, rows: list[list[int]]) -> torch.Tensor | None:
    return torch.tensor(rows) if case == "same_video_across_ranks" else None


def _loss_worker(rank: int, port: int, case: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    x = FEATURES[LOCAL_ROWS[rank]].clone().requires_grad_(True)
    anchors, positives, weights = (torch.tensor(v) for v in LOCAL_PAIRS[case][rank])
    sources = _sources(case, LOCAL_SOURCES[rank])
    loss = ReliabilityWeightedInfoNCE(0.2)(
        F.normalize(x, dim=1), anchors.long(), positives.long(), weights.double(), sources
    )
    loss.backward()
    assert gather_variable(torch.arange(x.shape[0]) + 100 * rank).tolist() == [*range(7), *range(100, 104)]
    torch.save({"loss": loss.detach(), "grad": x.grad}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("case", sorted(LOCAL_PAIRS))
def test_gathered_loss_gradient_equals_single_process(case: str, tmp_path: Path) -> None:
    mp.spawn(_loss_worker, args=(_free_port(), case, str(tmp_path)), nprocs=2)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    x = FEATURES.clone().requires_grad_(True)
    (a0, p0, w0), (a1, p1, w1) = LOCAL_PAIRS[case]
    anchors = torch.tensor(a0 + [a + 7 for a in a1]).long()
    positives = torch.tensor(p0 + [p + 7 for p in p1]).long()
    weights = torch.tensor(w0 + w1).double()
    full = ReliabilityWeightedInfoNCE(0.2)(
        F.normalize(x, dim=1), anchors, positives, weights, _sources(case, SINGLE_SOURCES)
    )
    full.backward()

    # DDP averages gradients over the 2 ranks: each rank's loss is scaled by the world size.
    assert sum(r["loss"] for r in results).item() / 2 == pytest.approx(full.item(), rel=1e-12)
    ddp_grad = torch.cat([r["grad"] for r in results]) / 2
    torch.testing.assert_close(ddp_grad, x.grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- full Lightning DDP


STEPS = 3
RANK_BATCHES = [
    [make_frame_pair_batch(3, crops_per_frame=(1, 5), seed=10 * step + rank) for step in range(STEPS)]
    for rank in range(2)
]


class RankBatches(LightningDataModule):
    """Rank ``r`` reads its own batches; a single process reads both ranks' batches merged."""

    def train_dataloader(self) -> DataLoader:
        if self.trainer.world_size == 1:
            batches = [concat_batches([RANK_BATCHES[0][s], RANK_BATCHES[1][s]]) for s in range(STEPS)]
        else:
            batches = RANK_BATCHES[self.trainer.global_rank]
        return DataLoader(BatchList(batches), batch_size=None)


def _sgd(params: object) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1)


def _fit(devices: int, strategy: str) -> dict[str, torch.Tensor]:
    seed_everything(0)
    model = ISRModule(
        backbone="test_vit",
        backbone_kwargs={"img_size": (32, 16), "patch_size": 8},
        image_size=(32, 16),
        embed_dim=16,
        temperature=0.1,
        optimizer=_sgd,
        lr_scheduler=None,
    )
    trainer = Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_steps=STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=RankBatches())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_ddp_parameters_equal_single_process_on_full_batch() -> None:
    # unequal crop counts per rank at every step
    assert all(RANK_BATCHES[0][s].num_crops != RANK_BATCHES[1][s].num_crops for s in range(STEPS))
    single = _fit(1, "auto")
    ddp = _fit(2, "ddp_spawn")
    initial = ISRModule(backbone="test_vit", backbone_kwargs={"img_size": (32, 16), "patch_size": 8}, embed_dim=16)
    moved = 0
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-6, atol=1e-6, msg=f"parameter {name} differs")
        moved += int(not torch.allclose(value, initial.state_dict()[name]))
    assert moved > 0.5 * len(single), "training did not move the parameters"
