"""Two real processes (gloo): the rank comes from torch.distributed, counts are equal."""

import socket

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from isr_lightning.data import BoxSelection, CropTransform, PairSampling, VideoPairDataModule


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, root: str, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        dm = VideoPairDataModule(
            root,
            batch_size=2,
            batches_per_epoch=4,
            transform=CropTransform(image_size=(16, 8)),
            sampling=PairSampling(delta_frames=(1, 3)),
            boxes=BoxSelection(min_box_size=2),
            num_workers=2,
        )
        dm.setup("fit")
        batches = list(dm.train_dataloader())
        clips = sorted({int(c) for b in batches for c in b.clip_index})
        gathered = [None, None]
        dist.all_gather_object(gathered, (len(batches), clips))
        if rank == 0:
            out["result"] = gathered
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # ~60 s: two spawned ranks, each with two dataloader workers
def test_two_processes_equal_batches_disjoint_clips(corpus):
    manager = mp.get_context("spawn").Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), str(corpus), out), nprocs=2, join=True)
    (n0, clips0), (n1, clips1) = out["result"]
    assert n0 == n1 == 4
    assert not set(clips0) & set(clips1)
    assert clips0 and clips1
