"""The AUC of the reliability benchmark against a hand count."""

from __future__ import annotations

import torch

from tests.benchmarks.helpers import load_benchmark

pairwise_auc = load_benchmark("reliability_quality").pairwise_auc


def test_pairwise_auc_counts_wins_and_half_ties():
    weights = torch.tensor([0.9, 0.2, 0.5, 0.5, 0.1])
    correct = torch.tensor([True, False, True, False, False])
    # true {0.9, 0.5} vs wrong {0.2, 0.5, 0.1}: 0.9 beats 3; 0.5 beats 0.2 and 0.1, ties 0.5
    assert pairwise_auc(weights, correct) == (3 + 2 + 0.5, 6)


def test_pairwise_auc_without_both_kinds_is_empty():
    assert pairwise_auc(torch.ones(3), torch.ones(3, dtype=torch.bool)) == (0.0, 0)
