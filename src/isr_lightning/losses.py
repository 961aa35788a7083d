"""Reliability-weighted InfoNCE over the global batch.

For a mined positive pair ``(i, j)`` with weight ``w_ij`` and cosine similarities ``s``::

    l(i -> j) = -log( exp(s_ij / tau) / sum_{k != i} v_ik exp(s_ik / tau) )
    loss      = sum_pairs w_ij * (l(i -> j) + l(j -> i)) / 2  /  sum_pairs w_ij

``k`` runs over every crop of the global batch (all ranks) except the anchor itself, so the
other crops of the anchor's own frame, which are certainly other people, are negatives.
``v_ik`` is 1, except for a crop ``k`` of the anchor's own video at another time (another
frame pair): that crop may show the anchor's person, so it counts ``same_video_negatives``
(0 by default: left out of the denominator). With one clip per video in a batch (the usual
case of a large corpus) no crop is affected; with one long video it keeps every other
moment of the same people from being pushed apart.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from typing_extensions import override

from isr_lightning.distributed import (
    all_reduce_sum,
    gather_variable,
    gather_variable_with_grad,
    rank_and_world_size,
)

__all__ = ["ReliabilityWeightedInfoNCE", "reliability_weighted_info_nce"]


def _directional_loss(
    embeddings: Tensor, anchors: Tensor, positives: Tensor, temperature: float, log_weights: Tensor | None
) -> Tensor:
    logits = embeddings[anchors] @ embeddings.t() / temperature  # (K, N)
    if log_weights is not None:
        logits = logits + log_weights
    logits = logits.scatter(1, anchors[:, None], float("-inf"))
    positive_logits = logits.gather(1, positives[:, None]).squeeze(1)
    return torch.logsumexp(logits, dim=1) - positive_logits


def _same_video_log_weights(
    sources: Tensor, anchors: Tensor, positives: Tensor, weight: float, dtype: torch.dtype
) -> Tensor | None:
    """``(K, N)`` log-weights: ``log(weight)`` for the anchor's video at other times (never its positive), else 0."""
    if weight == 1.0:
        return None
    video, frame_pair = sources[:, 0], sources[:, 1]
    other_time = (video[None, :] == video[anchors, None]) & (frame_pair[None, :] != frame_pair[anchors, None])
    other_time[torch.arange(len(anchors), device=sources.device), positives] = False
    log_weight = float("-inf") if weight == 0.0 else math.log(weight)
    return torch.zeros(other_time.shape, dtype=dtype, device=sources.device).masked_fill(other_time, log_weight)


def reliability_weighted_info_nce(
    embeddings: Tensor,
    anchors: Tensor,
    positives: Tensor,
    weights: Tensor,
    temperature: float,
    weight_total: Tensor | float | None = None,
    sources: Tensor | None = None,
    same_video_negatives: float = 0.0,
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
        sources: optional ``(N, 2)`` long ``(video, frame pair)`` of every crop; ``None``:
            every other crop is a full negative.
        same_video_negatives: weight ``v`` in ``[0, 1]`` of a negative from the anchor's video
            and another frame pair (0: left out of the denominator; 1: an ordinary negative).

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
        forward_weights = backward_weights = None
        if sources is not None:
            forward_weights = _same_video_log_weights(sources, anchors, positives, same_video_negatives, dtype)
            backward_weights = _same_video_log_weights(sources, positives, anchors, same_video_negatives, dtype)
        pair_losses = 0.5 * (
            _directional_loss(embeddings, anchors, positives, temperature, forward_weights)
            + _directional_loss(embeddings, positives, anchors, temperature, backward_weights)
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
        same_video_negatives: weight in ``[0, 1]`` of a negative from the anchor's own video at
            another time (another frame pair), which may show the anchor's person: 0 (default)
            leaves it out of the denominator, 1 makes it an ordinary negative. Used when
            :meth:`forward` is given the crops' sources.
    """

    def __init__(self, temperature: float = 0.1, same_video_negatives: float = 0.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= same_video_negatives <= 1.0:
            raise ValueError(f"same_video_negatives must be in [0, 1], got {same_video_negatives}")
        self.temperature = float(temperature)
        self.same_video_negatives = float(same_video_negatives)

    def forward(
        self, embeddings: Tensor, anchors: Tensor, positives: Tensor, weights: Tensor, sources: Tensor | None = None
    ) -> Tensor:
        """Compute the loss of this rank's pairs.

        Args:
            embeddings: ``(N_r, D)`` L2-normalised embeddings of this rank's crops.
            anchors: ``(K_r,)`` long local index of the first crop of each pair.
            positives: ``(K_r,)`` long local index of the second crop of each pair.
            weights: ``(K_r,)`` non-negative pair weights.
            sources: optional ``(N_r, 2)`` long ``(video, frame pair)`` of each crop: the video's
                index in the corpus (the same on every rank) and the rank-local frame pair.

        Returns:
            Scalar loss whose DDP-averaged gradient is the global-batch gradient.
        """
        rank, world_size = rank_and_world_size()
        options = {"same_video_negatives": self.same_video_negatives}
        if world_size == 1:
            return reliability_weighted_info_nce(
                embeddings, anchors, positives, weights, self.temperature, sources=sources, **options
            )
        all_embeddings, offset = gather_variable_with_grad(embeddings)
        weight_total = all_reduce_sum(weights.detach().sum().float())
        if sources is not None:  # frame pairs are numbered per rank: make them unique across ranks
            sources = gather_variable(torch.stack([sources[:, 0], sources[:, 1] * world_size + rank], dim=1))
        loss = reliability_weighted_info_nce(
            all_embeddings,
            anchors + offset,
            positives + offset,
            weights,
            self.temperature,
            weight_total,
            sources=sources,
            **options,
        )
        # The gathered tensor must be in every rank's graph, or the backward all-reduce of a
        # rank without pairs would be skipped and the others would wait for it forever.
        return loss * world_size + all_embeddings.sum() * 0.0

    @override
    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, same_video_negatives={self.same_video_negatives}"
