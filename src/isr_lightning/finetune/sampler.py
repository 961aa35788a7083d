"""P x K identity sampler: every batch holds P identities with K images each, DDP-aware and resumable.

The batch-hard triplet loss needs positives in the batch, so ReID training draws batches of
``P`` identities with ``K`` images each (``P x K``; 16 x 4 in the field's baselines).

One epoch is planned at once, identically on every rank, from ``(seed, epoch)``:

1. each identity's images are shuffled and cut into groups of ``K`` (the remainder waits for
   another epoch); an identity with fewer than ``K`` images gets one group of all its images
   filled up by drawing among them again (the only sampling with replacement);
2. the epoch has ``S = ceil(groups / (world_size * P))`` steps; each step takes one group from
   each of ``world_size * P`` distinct identities, always those with the most groups left
   (ties broken at random), so every identity is used in every epoch (an identity keeps at most
   ``S`` groups); when fewer identities have groups left, random other identities fill the step
   with a fresh group each;
3. the steps are shuffled, and rank ``r`` takes identities ``r * P`` to ``(r + 1) * P - 1`` of
   each step: within a step the ranks hold disjoint identities, and every rank has ``S`` batches.

It is a :class:`~torch.utils.data.DistributedSampler`, so Lightning uses it as it is under DDP
instead of replacing it, and calls :meth:`set_epoch` before every epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DistributedSampler

__all__ = ["PKSampler", "plan_epoch"]

log = logging.getLogger(__name__)


def _group(rng: np.random.Generator, members: np.ndarray, k: int) -> np.ndarray:
    """Shuffled groups ``(G, K)`` of ``members``; fewer than ``K`` members: one group, filled up."""
    if len(members) < k:
        extra = rng.choice(members, size=k - len(members), replace=True)
        return rng.permutation(np.concatenate([members, extra]))[None, :]
    shuffled = rng.permutation(members)
    num_groups = len(members) // k
    return shuffled[: num_groups * k].reshape(num_groups, k)


def _fresh_group(rng: np.random.Generator, members: np.ndarray, k: int) -> np.ndarray:
    """One random group of ``K`` images of an identity whose groups are used up."""
    return rng.choice(members, size=k, replace=len(members) < k)


def _check_identities(num_identities: int, ids_per_batch: int, world_size: int) -> int:
    """Identities per step (``world_size * P``); raises when the dataset has fewer."""
    slots = world_size * ids_per_batch
    if num_identities < slots:
        raise ValueError(
            f"{num_identities} identities cannot fill a step of {world_size} rank(s) x ids_per_batch={ids_per_batch}"
            " distinct identities: lower ids_per_batch"
        )
    return slots


def plan_epoch(
    members: Sequence[np.ndarray], ids_per_batch: int, images_per_id: int, world_size: int, seed: int, epoch: int
) -> np.ndarray:
    """The dataset indices of every batch of one epoch, for all ranks.

    Args:
        members: for each identity, the dataset indices of its images (non-empty).
        ids_per_batch: ``P``, identities per batch and rank.
        images_per_id: ``K``, images per identity.
        world_size: number of ranks.
        seed: sampling seed.
        epoch: epoch number (the plan is a function of ``seed`` and ``epoch``).

    Returns:
        ``(S, world_size, P * K)`` int64: step ``s``, rank ``r`` reads ``plan[s, r]``, grouped
        by identity (``K`` consecutive indices each).

    Raises:
        ValueError: fewer identities than ``world_size * P``.
    """
    slots = _check_identities(len(members), ids_per_batch, world_size)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
    groups = [_group(rng, np.asarray(m, dtype=np.int64), images_per_id) for m in members]
    num_steps = math.ceil(sum(len(g) for g in groups) / slots)
    remaining = np.array([min(len(g), num_steps) for g in groups])
    used = np.zeros(len(groups), dtype=np.int64)
    plan = np.empty((num_steps, slots, images_per_id), dtype=np.int64)
    for step in range(num_steps):
        # the identities with the most groups left, ties at random
        order = np.lexsort((rng.random(len(groups)), -remaining))
        chosen = order[:slots]
        chosen = chosen[rng.permutation(slots)]
        for slot, identity in enumerate(chosen):
            if remaining[identity] > 0:
                plan[step, slot] = groups[identity][used[identity]]
                used[identity] += 1
                remaining[identity] -= 1
            else:
                plan[step, slot] = _fresh_group(rng, np.asarray(members[identity], dtype=np.int64), images_per_id)
    plan = plan[rng.permutation(num_steps)]
    return plan.reshape(num_steps, world_size, ids_per_batch * images_per_id)


class PKSampler(DistributedSampler):
    """Dataset indices for batches of ``P`` identities x ``K`` images on one rank (see the module doc).

    Use with ``DataLoader(dataset, batch_size=P * K, sampler=sampler, drop_last=True)``.

    Resumable: :meth:`state_dict` records the epoch and the batches this rank has produced in it;
    after :meth:`load_state_dict` the next iteration of that epoch starts at the following batch.

    Args:
        labels: ``(N,)`` identity label of each dataset item.
        ids_per_batch: ``P``.
        images_per_id: ``K``.
        num_replicas: world size.
        rank: this rank.
        seed: sampling seed, the same on every rank.

    Raises:
        ValueError: ``P`` or ``K`` below 1 (``P`` below 2: a batch without negatives), a
            rank outside the world, or fewer identities than ``num_replicas * P``.
    """

    def __init__(
        self,
        labels: Sequence[int],
        ids_per_batch: int,
        images_per_id: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        if ids_per_batch < 2:
            raise ValueError(f"ids_per_batch must be >= 2 (a batch needs other identities), got {ids_per_batch}")
        if images_per_id < 1:
            raise ValueError(f"images_per_id must be >= 1, got {images_per_id}")
        super().__init__(range(len(labels)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        label_array = np.asarray(labels, dtype=np.int64)
        order = np.argsort(label_array, kind="stable")
        _, starts = np.unique(label_array[order], return_index=True)
        self.members = np.split(order, starts[1:]) if len(order) else []
        self.ids_per_batch = ids_per_batch
        self.images_per_id = images_per_id
        self.batch_size = ids_per_batch * images_per_id
        slots = _check_identities(len(self.members), ids_per_batch, num_replicas)
        groups = sum(max(1, len(m) // images_per_id) for m in self.members)
        self.num_batches = math.ceil(groups / slots)
        self.batches_done = 0
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        """Indices per epoch on this rank (``num_batches * P * K``), also in a resumed epoch."""
        return self.num_batches * self.batch_size

    def batches(self, epoch: int | None = None) -> np.ndarray:
        """``(S, P * K)`` dataset indices of this rank's batches in ``epoch`` (default: the current one)."""
        plan = plan_epoch(
            self.members,
            self.ids_per_batch,
            self.images_per_id,
            self.num_replicas,
            self.seed,
            self.epoch if epoch is None else epoch,
        )
        return plan[:, self.rank]

    def __iter__(self) -> Iterator[int]:
        start = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            start = self._resume[1]
        self._resume = None
        self.batches_done = start
        for batch in self.batches()[start:]:
            self.batches_done += 1
            yield from batch.tolist()

    def state_dict(self) -> dict[str, int]:
        """``epoch``, ``batches_done`` (batches of that epoch already produced on this rank) and the settings."""
        return {
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "seed": self.seed,
            "ids_per_batch": self.ids_per_batch,
            "images_per_id": self.images_per_id,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at batch ``batches_done`` of ``epoch`` (applies to the next iteration of that epoch).

        Other settings than the saved ones are allowed, with a warning: the batches after the
        resume point then differ from the interrupted run's.
        """
        for key in ("seed", "ids_per_batch", "images_per_id", "num_replicas"):
            if key in state and state[key] != getattr(self, key):
                log.warning(
                    "resuming with %s=%s (saved %s): other batches than the first run's",
                    key,
                    getattr(self, key),
                    state[key],
                )
        self.set_epoch(int(state["epoch"]))
        self.batches_done = int(state["batches_done"])
        self._resume = (self.epoch, self.batches_done)
