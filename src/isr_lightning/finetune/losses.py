"""Losses of the supervised ReID baseline: label-smoothed identity cross-entropy and batch-hard triplet.

Both follow the "bag of tricks" baseline (Luo et al., CVPR-W 2019; the field's default for
fine-tuning): the identity loss is a cross-entropy against ``(1 - eps) * one_hot + eps / C``
targets (Szegedy et al., 2016), and the metric loss is the batch-hard triplet loss (Hermans
et al., 2017): for every anchor, its farthest positive and its nearest negative in the batch,
compared with a hinge at ``margin`` or with the soft margin ``log(1 + exp(d_ap - d_an))``.

Both are computed in float32 (float64 inputs stay float64) whatever the autocast state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typing_extensions import override

from isr_lightning.distributed import all_reduce_sum, gather_variable, gather_variable_with_grad, rank_and_world_size

__all__ = [
    "BatchHardTripletLoss",
    "LabelSmoothingCrossEntropy",
    "batch_hard_triplet_terms",
    "label_smoothing_cross_entropy",
]


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32, or float64 if it is float64 already."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def label_smoothing_cross_entropy(logits: Tensor, targets: Tensor, epsilon: float) -> Tensor:
    """Mean cross-entropy against label-smoothed targets.

    Args:
        logits: ``(B, C)`` class scores.
        targets: ``(B,)`` long class indices in ``[0, C)``.
        epsilon: smoothing: the target puts ``1 - epsilon + epsilon / C`` on the true class
            and ``epsilon / C`` on every other class.

    Returns:
        Scalar loss, float32 (float64 for float64 logits).
    """
    with torch.autocast(logits.device.type, enabled=False):
        log_probs = _at_least_float32(logits).log_softmax(dim=1)
        true_class = log_probs.gather(1, targets[:, None].long()).squeeze(1)
        per_sample = -(1.0 - epsilon) * true_class - epsilon * log_probs.mean(dim=1)
        return per_sample.mean()


class LabelSmoothingCrossEntropy(nn.Module):
    """Identity loss of the ReID baseline: cross-entropy with label smoothing.

    Args:
        epsilon: smoothing in ``[0, 1)``; 0.1 in the field's baselines, 0 is plain cross-entropy.
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Loss of ``(B, C)`` logits against ``(B,)`` targets (scalar)."""
        return label_smoothing_cross_entropy(logits, targets, self.epsilon)

    @override
    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"


def _pairwise_distances(anchors: Tensor, others: Tensor) -> Tensor:
    """Euclidean distances ``(A, N)``; the square root is taken of a value clamped above 0."""
    squared = (
        anchors.pow(2).sum(1, keepdim=True) + others.pow(2).sum(1)[None, :] - 2.0 * anchors @ others.t()
    ).clamp_min(1e-12)
    return squared.sqrt()


def batch_hard_triplet_terms(
    anchor_features: Tensor,
    anchor_labels: Tensor,
    anchor_rows: Tensor,
    features: Tensor,
    labels: Tensor,
    margin: float | None,
) -> tuple[Tensor, Tensor]:
    """Batch-hard triplet loss of each anchor against a batch (the functional core).

    For anchor ``a``: ``d_ap`` is its largest distance to another row with its label,
    ``d_an`` its smallest distance to a row with another label (Euclidean). The term is
    ``max(0, d_ap - d_an + margin)``, or ``log(1 + exp(d_ap - d_an))`` when ``margin`` is
    ``None`` (soft margin). An anchor without another row of its label, or without a row of
    another label, has no term.

    Args:
        anchor_features: ``(A, D)`` features of the anchors.
        anchor_labels: ``(A,)`` identity labels of the anchors.
        anchor_rows: ``(A,)`` row of each anchor in ``features`` (excluded from its positives).
        features: ``(N, D)`` features of the batch.
        labels: ``(N,)`` identity labels of the batch.
        margin: hinge margin, or ``None`` for the soft margin.

    Returns:
        ``(terms (A,), valid (A,) bool)``: the loss of each anchor (0 where not valid), in float32
        (float64 for float64 features).
    """
    with torch.autocast(features.device.type, enabled=False):
        distances = _pairwise_distances(_at_least_float32(anchor_features), _at_least_float32(features))  # (A, N)
        same = anchor_labels[:, None] == labels[None, :]
        itself = torch.zeros_like(same)
        itself[torch.arange(len(anchor_rows), device=same.device), anchor_rows] = True
        positive = same & ~itself
        negative = ~same
        valid = positive.any(1) & negative.any(1)
        hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(1)
        hardest_negative = distances.masked_fill(~negative, float("inf")).amin(1)
        gap = torch.where(valid, hardest_positive - hardest_negative, torch.zeros_like(hardest_positive))
        terms = F.softplus(gap) if margin is None else F.relu(gap + margin)
        return torch.where(valid, terms, torch.zeros_like(terms)), valid


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss with a margin or a soft margin, over the global batch under DDP.

    Every rank's features are gathered with an autograd-aware all-gather, so each anchor's
    hardest positive and negative are searched among all ranks' rows; each rank computes the
    terms of its own anchors, divides by the number of valid anchors of all ranks and scales
    by the world size, so that DDP's gradient averaging gives exactly the gradient of the mean
    over the concatenated batch. In a single process it is the plain mean over valid anchors.

    Args:
        margin: hinge margin (0.3 in the ResNet-50 baseline), or ``None`` for the soft margin
            ``log(1 + exp(d_ap - d_an))`` (used by the transformer baselines).
    """

    def __init__(self, margin: float | None = 0.3) -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise ValueError(f"triplet margin must be >= 0 or None (soft margin), got {margin}")
        self.margin = None if margin is None else float(margin)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Loss of this rank's anchors.

        Args:
            features: ``(N_r, D)`` features of this rank's images (not normalised).
            labels: ``(N_r,)`` identity labels.

        Returns:
            Scalar float32 loss (0, still attached to ``features``, without a valid anchor).
        """
        _, world_size = rank_and_world_size()
        all_features, offset = gather_variable_with_grad(features)
        all_labels = gather_variable(labels)
        rows = torch.arange(features.shape[0], device=features.device) + offset
        terms, valid = batch_hard_triplet_terms(features, labels, rows, all_features, all_labels, self.margin)
        num_valid = all_reduce_sum(valid.sum().float())
        # the gathered features stay in every rank's graph, or a rank without a valid anchor
        # would skip the backward all-reduce that the others wait for
        keep_graph = all_features.sum() * 0.0
        if not num_valid > 0:
            return terms.sum() + keep_graph
        return terms.sum() / num_valid * world_size + keep_graph

    @override
    def extra_repr(self) -> str:
        return "soft margin" if self.margin is None else f"margin={self.margin}"
