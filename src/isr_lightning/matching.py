"""Pair miners: which crops of frame ``t`` and frame ``t + delta`` show the same person.

ISR models instance association between two frames as a maximum-weight bipartite matching
on embedding similarity (:class:`HungarianMiner`, the default). The other miners are the
ablations a study of the method needs. A miner sees one frame pair at a time: a similarity
matrix between the ``n`` crops of frame ``t`` (rows) and the ``m`` crops of frame
``t + delta`` (columns).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy.optimize import linear_sum_assignment
from typing_extensions import override

__all__ = [
    "GreedyMiner",
    "HungarianMiner",
    "InstanceMiner",
    "MutualNearestMiner",
    "NearestMiner",
    "PairMiner",
    "build_miner",
]


class PairMiner(ABC):
    """Base class of pair miners.

    Subclasses implement :meth:`match`; the base class applies the optional similarity
    threshold.

    Args:
        min_similarity: drop matched pairs whose similarity is below this value
            (``None``: keep every match).
    """

    def __init__(self, min_similarity: float | None = None) -> None:
        if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1] (cosine), got {min_similarity}")
        self.min_similarity = min_similarity

    @abstractmethod
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Match rows to columns.

        Args:
            similarity: ``(n, m)`` similarities, ``n, m >= 1``.

        Returns:
            Row indices ``(k,)`` and column indices ``(k,)`` of the matched pairs.
        """

    def __call__(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Match, then apply the similarity threshold.

        Args:
            similarity: ``(n, m)`` similarities; either side may be empty.

        Returns:
            Row indices ``(k,)`` and column indices ``(k,)`` (int64) of the kept pairs.
        """
        if similarity.ndim != 2:
            raise ValueError(f"similarity must be 2-D, got shape {similarity.shape}")
        if similarity.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        rows, cols = self.match(similarity)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        if self.min_similarity is not None:
            keep = similarity[rows, cols] >= self.min_similarity
            rows, cols = rows[keep], cols[keep]
        return rows, cols

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_similarity={self.min_similarity})"


class HungarianMiner(PairMiner):
    """Maximum-weight bipartite matching (Hungarian algorithm), ISR's association.

    Returns the ``min(n, m)`` one-to-one pairs whose total similarity is the largest.
    """

    @override
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return linear_sum_assignment(similarity, maximize=True)


class MutualNearestMiner(PairMiner):
    """Mutual nearest neighbours: ``j`` is the best column of ``i`` and ``i`` the best row of ``j``.

    One-to-one; usually fewer pairs than the Hungarian matching.
    """

    @override
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best_col = similarity.argmax(axis=1)
        best_row = similarity.argmax(axis=0)
        rows = np.flatnonzero(best_row[best_col] == np.arange(similarity.shape[0]))
        return rows, best_col[rows]


class NearestMiner(PairMiner):
    """Every row paired with its nearest column; many rows may share a column.

    The nearest-neighbour pairing ablation of bipartite matching.
    """

    @override
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(similarity.shape[0]), similarity.argmax(axis=1)


class GreedyMiner(PairMiner):
    """One-to-one matching that repeatedly takes the most similar free row and column.

    Ties are taken in row-major order.
    """

    @override
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, m = similarity.shape
        order = np.argsort(-similarity, axis=None, kind="stable")
        row_free, col_free = np.ones(n, bool), np.ones(m, bool)
        rows, cols = [], []
        for flat in order:
            i, j = divmod(int(flat), m)
            if row_free[i] and col_free[j]:
                rows.append(i)
                cols.append(j)
                row_free[i] = col_free[j] = False
                if len(rows) == min(n, m):
                    break
        return np.array(rows), np.array(cols)


class InstanceMiner(PairMiner):
    """Crop ``k`` of side 0 with crop ``k`` of side 1: instance discrimination.

    Use with a data module in instance pairing mode, whose side 1 holds a second augmented
    view of every side-0 crop (what MoCo/SimCLR learn). The similarity is ignored.
    """

    @override
    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, m = similarity.shape
        if n != m:
            raise ValueError(
                f"instance pairing needs the same number of crops on both sides, got {n} and {m};"
                " use a data module in instance pairing mode"
            )
        return np.arange(n), np.arange(n)


MINERS: dict[str, type[PairMiner]] = {
    "hungarian": HungarianMiner,
    "mutual_nn": MutualNearestMiner,
    "nearest": NearestMiner,
    "greedy": GreedyMiner,
    "instance": InstanceMiner,
}


def build_miner(spec: str | PairMiner) -> PairMiner:
    """Return ``spec`` if it is a miner, else the default-configured miner of that name.

    Args:
        spec: a :class:`PairMiner`, or one of ``hungarian``, ``mutual_nn``, ``nearest``,
            ``greedy``, ``instance``.
    """
    if isinstance(spec, PairMiner):
        return spec
    if spec not in MINERS:
        raise ValueError(f"unknown pair miner {spec!r}; choose one of {sorted(MINERS)}")
    return MINERS[spec]()
