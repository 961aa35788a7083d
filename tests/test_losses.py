"""The reliability-weighted InfoNCE against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isr_lightning.losses import ReliabilityWeightedInfoNCE, reliability_weighted_info_nce


def reference_info_nce(emb: np.ndarray, pairs: list[tuple[int, int]], weights: list[float], tau: float) -> float:
    """Loop-by-loop float64 InfoNCE: both directions, every crop but the anchor in the denominator."""
    total, norm = 0.0, sum(weights)
    for (i, j), w in zip(pairs, weights):
        pair_loss = 0.0
        for a, p in ((i, j), (j, i)):
            denominator = sum(math.exp(emb[a] @ emb[k] / tau) for k in range(len(emb)) if k != a)
            pair_loss += -math.log(math.exp(emb[a] @ emb[p] / tau) / denominator)
        total += w * pair_loss / 2
    return total / norm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_weights_equal_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(11, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    pairs = [(0, 5), (1, 6), (2, 9), (3, 4)]
    loss = reliability_weighted_info_nce(
        torch.tensor(emb),
        torch.tensor([p[0] for p in pairs]),
        torch.tensor([p[1] for p in pairs]),
        torch.ones(len(pairs), dtype=torch.float64),
        temperature=0.2,
    )
    assert loss.item() == pytest.approx(reference_info_nce(emb, pairs, [1.0] * 4, 0.2), rel=1e-12)


def test_weighted_loss_equals_reference() -> None:
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(9, 5))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    pairs, weights = [(0, 4), (1, 7), (8, 2)], [0.2, 1.5, 0.7]
    loss = reliability_weighted_info_nce(
        torch.tensor(emb),
        torch.tensor([0, 1, 8]),
        torch.tensor([4, 7, 2]),
        torch.tensor(weights, dtype=torch.float64),
        0.1,
    )
    assert loss.item() == pytest.approx(reference_info_nce(emb, pairs, weights, 0.1), rel=1e-12)


def test_hand_computed_tiny_case() -> None:
    # Three unit vectors: 0 and 1 identical, 2 orthogonal. Pair (0, 1), tau = 1.
    # From 0: exp(1) / (exp(1) + exp(0)); from 1 the same. loss = -log(e / (e + 1)).
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    loss = reliability_weighted_info_nce(
        emb, torch.tensor([0]), torch.tensor([1]), torch.ones(1, dtype=torch.float64), 1.0
    )
    assert loss.item() == pytest.approx(-math.log(math.e / (math.e + 1.0)), rel=1e-12)


def test_doubling_one_weight_moves_gradient_as_formula_says() -> None:
    """L = sum_k w_k l_k / sum_k w_k, so dL/dx = sum_k (w_k / W) dl_k/dx."""
    torch.manual_seed(0)
    raw = torch.randn(8, 6, dtype=torch.float64)
    anchors, positives = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7])

    def grad_for(weights: torch.Tensor) -> torch.Tensor:
        x = raw.clone().requires_grad_(True)
        reliability_weighted_info_nce(F.normalize(x, dim=1), anchors, positives, weights, 0.3).backward()
        return x.grad

    per_pair = [grad_for(torch.eye(3, dtype=torch.float64)[k]) for k in range(3)]  # dl_k/dx
    weights = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)  # pair 1 doubled
    expected = sum(w * g for w, g in zip(weights / weights.sum(), per_pair))
    torch.testing.assert_close(grad_for(weights), expected, rtol=1e-10, atol=1e-12)
    # and the doubled pair's share of the gradient went from 1/3 to 1/2
    assert not torch.allclose(grad_for(torch.ones(3, dtype=torch.float64)), expected)


def test_no_pairs_gives_zero_loss_attached_to_graph() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    loss = reliability_weighted_info_nce(
        x, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0), 0.1
    )
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_module_validates_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        ReliabilityWeightedInfoNCE(temperature=0.0)
