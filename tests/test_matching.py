"""Pair miners against brute force and their defining properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from isr_lightning.matching import (
    GreedyMiner,
    HungarianMiner,
    InstanceMiner,
    MutualNearestMiner,
    NearestMiner,
    build_miner,
)


def brute_force_best_total(similarity: np.ndarray) -> float:
    """Largest total similarity over every one-to-one assignment of min(n, m) pairs."""
    n, m = similarity.shape
    if n <= m:
        return max(sum(similarity[i, cols[i]] for i in range(n)) for cols in itertools.permutations(range(m), n))
    return brute_force_best_total(similarity.T)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7)])
@pytest.mark.parametrize("seed", range(4))
def test_hungarian_equals_brute_force(shape: tuple[int, int], seed: int) -> None:
    similarity = np.random.default_rng(seed).uniform(-1, 1, size=shape)
    rows, cols = HungarianMiner()(similarity)
    assert len(rows) == min(shape)
    assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
    assert similarity[rows, cols].sum() == pytest.approx(brute_force_best_total(similarity), abs=1e-12)


def test_hungarian_beats_greedy_where_greedy_is_suboptimal() -> None:
    # Greedy takes (0, 0) = 0.9 and is left with (1, 1) = 0.0; the optimum is 0.8 + 0.8.
    similarity = np.array([[0.9, 0.8], [0.8, 0.0]])
    rows, cols = HungarianMiner()(similarity)
    assert similarity[rows, cols].sum() == pytest.approx(1.6)
    rows, cols = GreedyMiner()(similarity)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("seed", range(5))
def test_mutual_nearest_pairs_are_each_others_best(seed: int) -> None:
    similarity = np.random.default_rng(seed).uniform(-1, 1, size=(6, 5))
    rows, cols = MutualNearestMiner()(similarity)
    expected = {
        (i, j) for i in range(6) for j in range(5) if similarity[i].argmax() == j and similarity[:, j].argmax() == i
    }
    assert set(zip(rows.tolist(), cols.tolist())) == expected


def test_nearest_pairs_every_row_with_its_argmax() -> None:
    similarity = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3]])
    rows, cols = NearestMiner()(similarity)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 1, 0]


@pytest.mark.parametrize("seed", range(5))
def test_greedy_picks_in_descending_order(seed: int) -> None:
    similarity = np.random.default_rng(seed).uniform(-1, 1, size=(5, 7))
    rows, cols = GreedyMiner()(similarity)
    # Reference: repeatedly take the global maximum and delete its row and column.
    s, expected = similarity.copy(), set()
    for _ in range(5):
        i, j = np.unravel_index(np.argmax(s), s.shape)
        expected.add((int(i), int(j)))
        s[i, :], s[:, j] = -np.inf, -np.inf
    assert set(zip(rows.tolist(), cols.tolist())) == expected


def test_min_similarity_drops_weak_matches() -> None:
    similarity = np.array([[0.9, 0.1], [0.2, 0.3]])
    rows, cols = HungarianMiner(min_similarity=0.5)(similarity)
    assert rows.tolist() == [0] and cols.tolist() == [0]


def test_instance_miner_pairs_views_in_order_and_checks_counts() -> None:
    rows, cols = InstanceMiner()(np.zeros((3, 3)))
    assert rows.tolist() == cols.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="same number of crops"):
        InstanceMiner()(np.zeros((3, 2)))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_empty_frames_give_no_pairs(shape: tuple[int, int]) -> None:
    rows, cols = HungarianMiner()(np.zeros(shape))
    assert rows.size == cols.size == 0


def test_build_miner_names_and_errors() -> None:
    assert isinstance(build_miner("hungarian"), HungarianMiner)
    miner = GreedyMiner(min_similarity=0.2)
    assert build_miner(miner) is miner
    with pytest.raises(ValueError, match="unknown pair miner"):
        build_miner("sinkhorn")
    with pytest.raises(ValueError, match="min_similarity"):
        HungarianMiner(min_similarity=2.0)
