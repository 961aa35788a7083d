"""P x K sampler: batch composition, coverage, DDP split, reseeding and resume, checked on the plans."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from isr_lightning.finetune.sampler import PKSampler

P, K = 4, 3
# identity i has SIZES[i] images: several with fewer than K, one with many
SIZES = [1, 2, 3, 3, 4, 5, 6, 7, 9, 13, 2, 3, 25, 1, 8, 3, 4]
LABELS = [i for i, n in enumerate(SIZES) for _ in range(n)]


def _batches(sampler: PKSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    flat = list(sampler)
    assert len(flat) == len(sampler)
    return [flat[i : i + sampler.batch_size] for i in range(0, len(flat), sampler.batch_size)]


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_every_batch_has_p_identities_with_k_images(epoch: int) -> None:
    sampler = PKSampler(LABELS, P, K, seed=3)
    batches = _batches(sampler, epoch)
    assert len(batches) == sampler.num_batches > 0
    for batch in batches:
        per_identity = Counter(LABELS[i] for i in batch)
        assert len(per_identity) == P and set(per_identity.values()) == {K}
        for identity in per_identity:
            images = [i for i in batch if LABELS[i] == identity]
            if SIZES[identity] >= K:  # no repeated image unless the identity has fewer than K
                assert len(set(images)) == K
            else:  # then every one of its images is in the group
                assert set(images) == {i for i, label in enumerate(LABELS) if label == identity}


@pytest.mark.parametrize("seed", range(4))
def test_every_epoch_covers_every_identity(seed: int) -> None:
    sampler = PKSampler(LABELS, P, K, seed=seed)
    for epoch in range(3):
        seen = {LABELS[i] for batch in _batches(sampler, epoch) for i in batch}
        assert seen == set(range(len(SIZES)))


def test_groups_of_an_identity_are_disjoint_within_an_epoch() -> None:
    # each identity contributes n // K disjoint groups: n // K * K distinct images per epoch
    sampler = PKSampler(LABELS, P, K, seed=0)
    used = {i for batch in _batches(sampler, 0) for i in batch}
    for identity, size in enumerate(SIZES):
        distinct = sum(1 for i in used if LABELS[i] == identity)
        assert distinct >= max(size // K * K, size if size < K else 0), identity


@pytest.mark.parametrize("seed", range(3))
def test_two_ranks_disjoint_identities_per_step_and_equal_batch_counts(seed: int) -> None:
    ranks = [PKSampler(LABELS, P, K, num_replicas=2, rank=r, seed=seed) for r in range(2)]
    for epoch in range(2):
        per_rank = [_batches(s, epoch) for s in ranks]
        assert len(per_rank[0]) == len(per_rank[1]) == ranks[0].num_batches == ranks[1].num_batches
        for batch0, batch1 in zip(*per_rank, strict=True):
            ids0, ids1 = {LABELS[i] for i in batch0}, {LABELS[i] for i in batch1}
            assert len(ids0) == len(ids1) == P and not ids0 & ids1
        seen = {LABELS[i] for batches in per_rank for batch in batches for i in batch}
        assert seen == set(range(len(SIZES)))


def test_reseeded_per_epoch_and_deterministic() -> None:
    a, b = PKSampler(LABELS, P, K, seed=7), PKSampler(LABELS, P, K, seed=7)
    assert _batches(a, 0) == _batches(b, 0)
    assert _batches(a, 0) != _batches(a, 1)
    assert _batches(a, 0) != _batches(PKSampler(LABELS, P, K, seed=8), 0)


def test_resume_gives_the_same_next_batches() -> None:
    uninterrupted = _batches(PKSampler(LABELS, P, K, seed=1), 2)
    first = PKSampler(LABELS, P, K, seed=1)
    first.set_epoch(2)
    iterator = iter(first)
    for _ in range(3 * first.batch_size):
        next(iterator)
    state = first.state_dict()
    assert (state["epoch"], state["batches_done"]) == (2, 3)

    resumed = PKSampler(LABELS, P, K, seed=1)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(resumed) == len(first)  # the epoch keeps its length
    assert np.array_equal(rest, np.concatenate(uninterrupted[3:]))
    assert _batches(resumed, 3) == _batches(PKSampler(LABELS, P, K, seed=1), 3)  # later epochs whole


def test_too_few_identities_is_one_readable_error() -> None:
    with pytest.raises(ValueError, match="17 identities cannot fill a step of 2 rank") as error:
        PKSampler(LABELS, 9, K, num_replicas=2)
    assert "\n" not in str(error.value)
