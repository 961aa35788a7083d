"""Pair mining over a batch of frame pairs (``isr_lightning.pairs``), against hand-made batches."""

from __future__ import annotations

import torch

from isr_lightning.matching import HungarianMiner
from isr_lightning.pairs import mine_batch_pairs, pair_precision_counts
from isr_lightning.reliability import UniformReliability


def test_mine_batch_pairs_offsets_and_weights() -> None:
    # Two frame pairs; embeddings chosen so crop k of frame t matches crop k of frame t+delta.
    basis = torch.eye(4, dtype=torch.float32)
    emb = torch.stack([basis[0], basis[1], basis[1], basis[0], basis[2], basis[3], basis[3]])
    pair_index = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    frame_side = torch.tensor([0, 0, 1, 1, 0, 0, 1])
    pairs = mine_batch_pairs(emb, pair_index, frame_side, HungarianMiner(), UniformReliability())
    got = sorted(zip(pairs.anchors.tolist(), pairs.positives.tolist()))
    assert got == [(0, 3), (1, 2), (5, 6)]
    assert pairs.num_frame_pairs == 2 and pairs.similarities.tolist() == [1.0, 1.0, 1.0]
    track_ids = torch.tensor([7, 8, 8, 9, 3, 4, 4])
    assert pair_precision_counts(pairs, track_ids) == (2, 3)
