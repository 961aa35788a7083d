"""The reliability-weighted InfoNCE against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isr_lightning.losses import ReliabilityWeightedInfoNCE, reliability_weighted_info_nce


def reference_info_nce(
    emb: np.ndarray,
    pairs: list[tuple[int, int]],
    weights: list[float],
    tau: float,
    sources: list[tuple[int, int]] | None = None,
    same_video: float = 1.0,
) -> float:
    """Loop-by-loop float64 InfoNCE: both directions, every crop but the anchor in the denominator.

    With ``sources`` ((video, frame pair) per crop), a crop of the anchor's video and another
    frame pair counts ``same_video`` times in the denominator.
    """

    def v(a: int, k: int, p: int) -> float:
        if sources is None or k == p:  # the positive itself always counts
            return 1.0
        same = sources[a][0] == sources[k][0] and sources[a][1] != sources[k][1]
        return same_video if same else 1.0

    total, norm = 0.0, sum(weights)
    for (i, j), w in zip(pairs, weights):
        pair_loss = 0.0
        for a, p in ((i, j), (j, i)):
            denominator = sum(v(a, k, p) * math.exp(emb[a] @ emb[k] / tau) for k in range(len(emb)) if k != a)
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


# 12 crops of 4 frame pairs; pairs 0 and 2 come from video 0 (other times), 1 and 3 from videos 1 and 2.
SOURCES = [(0, 0)] * 3 + [(1, 1)] * 3 + [(0, 2)] * 3 + [(2, 3)] * 3
SOURCE_PAIRS = [(0, 1), (3, 4), (6, 8), (9, 11), (2, 7)]  # the last one joins two times of video 0


@pytest.mark.parametrize("same_video", [0.0, 0.25, 1.0])
def test_same_video_negatives_are_weighted_as_the_reference(same_video: float) -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(12, 6))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    weights = [1.0, 0.5, 2.0, 1.0, 0.75]
    loss = reliability_weighted_info_nce(
        torch.tensor(emb),
        torch.tensor([p[0] for p in SOURCE_PAIRS]),
        torch.tensor([p[1] for p in SOURCE_PAIRS]),
        torch.tensor(weights, dtype=torch.float64),
        0.2,
        sources=torch.tensor(SOURCES),
        same_video_negatives=same_video,
    )
    expected = reference_info_nce(emb, SOURCE_PAIRS, weights, 0.2, SOURCES, same_video)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    if same_video == 1.0:  # an ordinary negative: the plain loss
        assert loss.item() == pytest.approx(reference_info_nce(emb, SOURCE_PAIRS, weights, 0.2), rel=1e-12)


def test_dropping_same_video_negatives_changes_only_anchors_that_have_them() -> None:
    rng = np.random.default_rng(4)
    emb = torch.tensor(rng.normal(size=(12, 6)))
    emb = F.normalize(emb, dim=1)
    one = torch.ones(1, dtype=torch.float64)
    for anchor, positive in SOURCE_PAIRS:
        args = (emb, torch.tensor([anchor]), torch.tensor([positive]), one, 0.2)
        plain = reliability_weighted_info_nce(*args)
        dropped = reliability_weighted_info_nce(*args, sources=torch.tensor(SOURCES), same_video_negatives=0.0)
        if SOURCES[anchor][0] in (1, 2):  # videos seen once in the batch: nothing to drop
            assert dropped.item() == pytest.approx(plain.item(), rel=1e-12)
        else:  # fewer terms in the denominator: a smaller loss
            assert dropped.item() < plain.item()


def test_same_video_negatives_must_be_a_weight() -> None:
    with pytest.raises(ValueError, match="same_video_negatives"):
        ReliabilityWeightedInfoNCE(0.1, same_video_negatives=1.5)
