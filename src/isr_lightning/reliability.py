"""Reliability of mined pairs: how much each positive pair should count in the loss.

The ISR paper's exact definition is not public (see ``docs/concepts.md``); these are the
candidate definitions the library offers and measures. A reliability function returns raw,
non-negative weights for the matched pairs of one frame pair. The loss divides them by their
sum over the whole global batch, so only ratios between pairs matter, and a definition that
is a softmax over the batch's pairs needs only its numerator here.

All functions are called without gradient.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor
from typing_extensions import override

__all__ = [
    "BidirectionalReliability",
    "MarginReliability",
    "PairSoftmaxReliability",
    "Reliability",
    "UniformReliability",
    "build_reliability",
]


class Reliability(ABC):
    """Base class of reliability functions."""

    @abstractmethod
    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """Weights of the matched pairs of one frame pair.

        Args:
            similarity: ``(n, m)`` cosine similarities between the crops of frame ``t`` (rows)
                and frame ``t + delta`` (columns).
            rows: ``(k,)`` long row index of each matched pair.
            cols: ``(k,)`` long column index of each matched pair.

        Returns:
            ``(k,)`` non-negative weights.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in vars(self).items())
        return f"{type(self).__name__}({args})"


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return float(temperature)


class UniformReliability(Reliability):
    """Every pair counts the same: the plain InfoNCE ablation."""

    @override
    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        return torch.ones(rows.shape[0], dtype=similarity.dtype, device=similarity.device)


class PairSoftmaxReliability(Reliability):
    """Softmax of the matched similarities over all pairs of the global batch.

    ``w_ij = exp(s_ij / T) / sum_pairs exp(s_kl / T)``: the batch normalisation of the loss
    supplies the denominator. Pairs that are more similar than the batch's other pairs
    dominate, whatever the content of their own frames.

    Args:
        temperature: softmax temperature ``T`` (smaller: sharper).
    """

    def __init__(self, temperature: float = 0.1) -> None:
        self.temperature = _check_temperature(temperature)

    @override
    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        # Shifted by the largest possible cosine so exp never overflows.
        return torch.exp((similarity[rows, cols] - 1.0) / self.temperature)


class BidirectionalReliability(Reliability):
    """Probability that the match holds in both directions within the frame pair.

    ``w_ij = P(j | i) * P(i | j)``, with ``P(j | i)`` a softmax over the row of ``i`` and
    ``P(i | j)`` a softmax over the column of ``j`` (temperature ``T``). A pair is reliable
    when each crop is clearly the other's best candidate. A frame with a single crop gives
    probability 1 on its side.

    Args:
        temperature: softmax temperature ``T``.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        self.temperature = _check_temperature(temperature)

    @override
    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        logits = similarity / self.temperature
        p_col_given_row = torch.softmax(logits, dim=1)[rows, cols]
        p_row_given_col = torch.softmax(logits, dim=0)[rows, cols]
        return p_col_given_row * p_row_given_col


class MarginReliability(Reliability):
    """Margin of the match over the best competitor, squashed to ``(0, 1)``.

    ``w_ij = sigmoid((s_ij - c_ij) / T)`` where ``c_ij`` is the largest similarity of ``i``
    to another column or of ``j`` to another row; ``c_ij = -1`` (the smallest cosine) when
    there is no competitor.

    Args:
        temperature: scale ``T`` of the margin.
    """

    def __init__(self, temperature: float = 0.05) -> None:
        self.temperature = _check_temperature(temperature)

    @override
    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        matched = similarity[rows, cols]
        row_others = similarity[rows].clone()
        row_others[torch.arange(rows.shape[0]), cols] = -math.inf
        col_others = similarity[:, cols].t().clone()
        col_others[torch.arange(rows.shape[0]), rows] = -math.inf
        competitor = torch.maximum(row_others.amax(dim=1), col_others.amax(dim=1))
        competitor = competitor.clamp(min=-1.0)
        return torch.sigmoid((matched - competitor) / self.temperature)


RELIABILITIES: dict[str, type[Reliability]] = {
    "uniform": UniformReliability,
    "pair_softmax": PairSoftmaxReliability,
    "bidirectional": BidirectionalReliability,
    "margin": MarginReliability,
}


def build_reliability(spec: str | Reliability) -> Reliability:
    """Return ``spec`` if it is a reliability function, else the default one of that name.

    Args:
        spec: a :class:`Reliability`, or one of ``uniform``, ``pair_softmax``,
            ``bidirectional``, ``margin``.
    """
    if isinstance(spec, Reliability):
        return spec
    if spec not in RELIABILITIES:
        raise ValueError(f"unknown reliability {spec!r}; choose one of {sorted(RELIABILITIES)}")
    return RELIABILITIES[spec]()
