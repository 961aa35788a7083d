"""Reliability functions against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from isr_lightning.reliability import (
    BidirectionalReliability,
    MarginReliability,
    PairSoftmaxReliability,
    UniformReliability,
    build_reliability,
)

S = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.7]], dtype=torch.float64)
ROWS, COLS = torch.tensor([0, 1]), torch.tensor([0, 1])


def test_uniform() -> None:
    assert UniformReliability()(S, ROWS, COLS).tolist() == [1.0, 1.0]


def test_bidirectional_by_hand() -> None:
    t = 0.5
    w = BidirectionalReliability(temperature=t)(S, ROWS, COLS)
    row0 = math.exp(0.9 / t) / sum(math.exp(v / t) for v in (0.9, 0.1, 0.0))
    col0 = math.exp(0.9 / t) / (math.exp(0.9 / t) + math.exp(0.2 / t))
    row1 = math.exp(0.8 / t) / sum(math.exp(v / t) for v in (0.2, 0.8, 0.7))
    col1 = math.exp(0.8 / t) / (math.exp(0.1 / t) + math.exp(0.8 / t))
    assert w.tolist() == pytest.approx([row0 * col0, row1 * col1], rel=1e-12)


def test_margin_by_hand() -> None:
    t = 0.1
    w = MarginReliability(temperature=t)(S, ROWS, COLS)
    # pair (0,0): competitors 0.1, 0.0 in row 0 and 0.2 in column 0 -> margin 0.7
    # pair (1,1): competitors 0.2, 0.7 in row 1 and 0.1 in column 1 -> margin 0.1
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert w.tolist() == pytest.approx([sigmoid(0.7 / t), sigmoid(0.1 / t)], rel=1e-12)
    lone = MarginReliability(temperature=t)(torch.tensor([[0.3]]), torch.tensor([0]), torch.tensor([0]))
    assert lone.item() == pytest.approx(sigmoid(1.3 / t))


def test_pair_softmax_normalised_over_batch_is_softmax() -> None:
    t = 0.2
    raw = PairSoftmaxReliability(temperature=t)(S, ROWS, COLS)
    expected = torch.softmax(S[ROWS, COLS] / t, dim=0)
    torch.testing.assert_close(raw / raw.sum(), expected)


def test_build_reliability_names_and_errors() -> None:
    assert isinstance(build_reliability("margin"), MarginReliability)
    with pytest.raises(ValueError, match="unknown reliability"):
        build_reliability("entropy")
    with pytest.raises(ValueError, match="temperature"):
        BidirectionalReliability(temperature=-1)
