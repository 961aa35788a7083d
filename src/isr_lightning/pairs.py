"""Mining the positive pairs of a whole batch: a miner and a reliability per frame pair."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from isr_lightning.batch import frame_pair_groups
from isr_lightning.matching import PairMiner
from isr_lightning.reliability import Reliability

__all__ = ["MinedPairs", "mine_batch_pairs", "pair_precision_counts"]


@dataclass
class MinedPairs:
    """Positive pairs of a batch, as indices into the batch's crops.

    Attributes:
        anchors: ``(K,)`` long index of the frame-``t`` crop of each pair.
        positives: ``(K,)`` long index of the frame-``t + delta`` crop of each pair.
        weights: ``(K,)`` raw reliability weights (not yet normalised).
        similarities: ``(K,)`` cosine similarity of each pair at mining time.
        num_frame_pairs: number of frame pairs in the batch.
    """

    anchors: Tensor
    positives: Tensor
    weights: Tensor
    similarities: Tensor
    num_frame_pairs: int

    @property
    def num_pairs(self) -> int:
        """Number of mined pairs ``K``."""
        return int(self.anchors.shape[0])


@torch.no_grad()
def mine_batch_pairs(
    embeddings: Tensor,
    pair_index: Tensor,
    frame_side: Tensor,
    miner: PairMiner,
    reliability: Reliability,
) -> MinedPairs:
    """Associate the crops of the two frames of every frame pair and weigh each match.

    The similarity matrix is computed once for the batch on the embeddings' device, in
    float32 whatever the autocast state, then moved to the CPU in one transfer for the
    (sequential) matching.

    Args:
        embeddings: ``(N, D)`` L2-normalised embeddings (detached inside).
        pair_index: ``(N,)`` long frame pair of each crop.
        frame_side: ``(N,)`` long side (0 or 1) of each crop.
        miner: the association, e.g. :class:`~isr_lightning.matching.HungarianMiner`.
        reliability: the pair weighting, e.g. :class:`~isr_lightning.reliability.BidirectionalReliability`.

    Returns:
        The mined pairs, on the embeddings' device.
    """
    device = embeddings.device
    with torch.autocast(device.type, enabled=False):  # float32 under bf16/fp16 mixed precision too
        detached = embeddings.detach().float()
        similarity = (detached @ detached.t()).cpu()
    groups = frame_pair_groups(pair_index.cpu(), frame_side.cpu())
    anchors, positives, weights = [], [], []
    for idx_t, idx_t_delta in groups:
        block = similarity[idx_t][:, idx_t_delta]
        rows, cols = miner(block.numpy())
        if rows.size == 0:
            continue
        rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
        anchors.append(idx_t[rows_t])
        positives.append(idx_t_delta[cols_t])
        weights.append(reliability(block, rows_t, cols_t).float())
    if anchors:
        anchor_t, positive_t, weight_t = torch.cat(anchors), torch.cat(positives), torch.cat(weights)
    else:
        anchor_t = positive_t = torch.zeros(0, dtype=torch.long)
        weight_t = torch.zeros(0)
    return MinedPairs(
        anchors=anchor_t.to(device),
        positives=positive_t.to(device),
        weights=weight_t.to(device),
        similarities=similarity[anchor_t, positive_t].to(device),
        num_frame_pairs=len(groups),
    )


def pair_precision_counts(pairs: MinedPairs, track_ids: Tensor) -> tuple[int, int]:
    """Count the mined pairs that join the same person.

    A pair is correct when both crops carry the same ground-truth id ``>= 0``; a crop with id
    ``-1`` (a detection matching no ground-truth person) makes its pair wrong.

    Args:
        pairs: the mined pairs.
        track_ids: ``(N,)`` long ground-truth ids of the batch's crops.

    Returns:
        ``(correct, total)`` pair counts.
    """
    a, b = track_ids[pairs.anchors], track_ids[pairs.positives]
    correct = ((a == b) & (a >= 0)).sum()
    return int(correct.item()), pairs.num_pairs
