"""Reliability-weighted InfoNCE over the global batch.

For a mined positive pair ``(i, j)`` with weight ``w_ij`` and cosine similarities ``s``::

    l(i -> j) = -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) )
    loss      = sum_pairs w_ij * (l(i -> j) + l(j -> i)) / 2  /  sum_pairs w_ij

``k`` runs over every crop of the global batch (all ranks) except the anchor itself, so the
other crops of the anchor's own frame, which are certainly other people, are negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from typing_extensions import override

from isr_lightning.distributed import all_reduce_sum, gather_variable_with_grad, rank_and_world_size

__all__ = ["ReliabilityWeightedInfoNCE", "reliability_weighted_info_nce"]


def _directional_loss(embeddings: Tensor, anchors: Tensor, positives: Tensor, temperature: float) -> Tensor:
    logits = embeddings[anchors] @ embeddings.t() / temperature  # (K, N)
    logits = logits.scatter(1, anchors[:, None], float("-inf"))
    positive_logits = logits.gather(1, positives[:, None]).squeeze(1)
    return torch.logsumexp(logits, dim=1) - positive_logits


def reliability_weighted_info_nce(
    embeddings: Tensor,
    anchors: Tensor,
    positives: Tensor,
    weights: Tensor,
    temperature: float,
    weight_total: Tensor | float | None = None,
) -> Tensor:
    """Symmetric reliability-weighted InfoNCE (the functional core, single process).

    Args:
        embeddings: ``(N, D)`` L2-normalised embeddings of every crop.
        anchors: ``(K,)`` long index of the first crop of each positive pair.
        positives: ``(K,)`` long index of the second crop of each positive pair.
        weights: ``(K,)`` non-negative pair weights (no gradient flows into them).
        temperature: softmax temperature ``tau``.
        weight_total: the normaliser ``sum w``; defaults to ``weights.sum()``. The distributed
            loss passes the sum over all ranks.

    Returns:
        Scalar loss, computed in float32 or the embeddings' wider dtype whatever the autocast
        state; 0 (still attached to ``embeddings``) when there are no pairs or the weights
        sum to 0.
    """
    dtype = torch.promote_types(embeddings.dtype, torch.float32)  # bf16/fp16 -> float32
    with torch.autocast(embeddings.device.type, enabled=False):
        embeddings = embeddings.to(dtype)
        weights = weights.detach().to(dtype)
        total = weights.sum() if weight_total is None else torch.as_tensor(weight_total).to(weights)
        if anchors.numel() == 0 or not total > 0:
            return embeddings.sum() * 0.0
        pair_losses = 0.5 * (
            _directional_loss(embeddings, anchors, positives, temperature)
            + _directional_loss(embeddings, positives, anchors, temperature)
        )
        return (weights * pair_losses).sum() / total


class ReliabilityWeightedInfoNCE(nn.Module):
    """Reliability-weighted InfoNCE, gathered over all ranks when distributed.

    Under ``torch.distributed`` the embeddings of every rank are gathered with an
    autograd-aware all-gather, each rank computes the loss of its own pairs against all
    crops, the weights are normalised by their global sum, and the result is scaled by the
    world size so that DDP's gradient averaging gives exactly the gradient of the loss on the
    concatenated global batch. In a single process it is :func:`reliability_weighted_info_nce`.

    Args:
        temperature: softmax temperature ``tau`` of the InfoNCE.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, embeddings: Tensor, anchors: Tensor, positives: Tensor, weights: Tensor) -> Tensor:
        """Compute the loss of this rank's pairs.

        Args:
            embeddings: ``(N_r, D)`` L2-normalised embeddings of this rank's crops.
            anchors: ``(K_r,)`` long local index of the first crop of each pair.
            positives: ``(K_r,)`` long local index of the second crop of each pair.
            weights: ``(K_r,)`` non-negative pair weights.

        Returns:
            Scalar loss whose DDP-averaged gradient is the global-batch gradient.
        """
        _, world_size = rank_and_world_size()
        if world_size == 1:
            return reliability_weighted_info_nce(embeddings, anchors, positives, weights, self.temperature)
        all_embeddings, offset = gather_variable_with_grad(embeddings)
        weight_total = all_reduce_sum(weights.detach().sum().float())
        loss = reliability_weighted_info_nce(
            all_embeddings, anchors + offset, positives + offset, weights, self.temperature, weight_total
        )
        # The gathered tensor must be in every rank's graph, or the backward all-reduce of a
        # rank without pairs would be skipped and the others would wait for it forever.
        return loss * world_size + all_embeddings.sum() * 0.0

    @override
    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
