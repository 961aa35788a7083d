"""Ablation row ``oracle_pairs``: ISR trained on the ground-truth association.

The synthetic corpus knows which detections of frames ``t`` and ``t + delta`` are one person;
training on exactly those pairs (uniform weights) bounds what any pair miner and reliability
can reach at the same budget. Benchmark code only: a real corpus has no such ids.
"""

from __future__ import annotations

import torch
from torch import Tensor

from isr_lightning.batch import FramePairBatch, frame_pair_groups
from isr_lightning.module import ISRModule


def ground_truth_pairs(track_ids: Tensor, pair_index: Tensor, frame_side: Tensor) -> tuple[Tensor, Tensor]:
    """``(anchors, positives)``: the crops of the two frames of a frame pair with one gt id ``>= 0``.

    Args:
        track_ids: ``(N,)`` long per-clip track id of each crop (``-1``: no person).
        pair_index: ``(N,)`` long frame pair of each crop.
        frame_side: ``(N,)`` long side (0 or 1) of each crop.

    Returns:
        Two ``(K,)`` long index tensors; each frame-``t`` crop has at most one positive.
    """
    anchors, positives = [], []
    for idx_t, idx_u in frame_pair_groups(pair_index, frame_side):
        same = (track_ids[idx_t][:, None] == track_ids[idx_u][None, :]) & (track_ids[idx_t][:, None] >= 0)
        has = same.any(dim=1)
        anchors.append(idx_t[has])
        positives.append(idx_u[same.float().argmax(dim=1)[has]])
    empty = torch.zeros(0, dtype=torch.long)
    return (torch.cat(anchors), torch.cat(positives)) if anchors else (empty, empty)


class GroundTruthPairsISR(ISRModule):
    """:class:`~isr_lightning.ISRModule` whose positives are the ground-truth pairs."""

    def training_step(self, batch: FramePairBatch, batch_idx: int) -> Tensor:
        """InfoNCE with uniform weights over the ground-truth pairs of the batch."""
        if batch.track_ids is None:
            raise ValueError("oracle_pairs needs ground-truth track ids (the synthetic corpus has them)")
        embeddings = self(batch.crops)
        ids = batch.track_ids.to(embeddings.device)
        anchors, positives = ground_truth_pairs(ids, batch.pair_index.to(ids.device), batch.frame_side.to(ids.device))
        weights = torch.ones(len(anchors), device=embeddings.device)
        loss = self.criterion(embeddings, anchors, positives, weights)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch.num_crops)
        return loss
