"""k-reciprocal re-ranking written straight from the paper's equations, on full matrices.

Zhong et al., CVPR 2017, Eqs. 1-12, in float64 with sets and loops; no chunking, no sparse
structures. The conventions the paper leaves open are the ones the library documents:
neighbours among queries and gallery together, each item its own first neighbour (so
``N(p, k)`` has ``k + 1`` items), each row of ``d`` divided by its maximum, rows of ``V``
normalised to sum 1, the 2/3 test strict.
"""

from __future__ import annotations

import numpy as np


def rerank_reference(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lam: float, metric: str) -> np.ndarray:
    """``(Q, G)`` re-ranked distances."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    if metric == "cosine":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    n, nq = len(x), len(qf)
    sq = (x**2).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    d /= d.max(axis=1, keepdims=True)
    ranked = d.copy()
    np.fill_diagonal(ranked, -1.0)  # each item is its own first neighbour
    order = np.argsort(ranked, axis=1, kind="stable")

    def nearest(p: int, k: int) -> list[int]:  # N(p, k), Eq. 1 (with p itself)
        return list(order[p, : k + 1])

    def reciprocal(p: int, k: int) -> set[int]:  # R(p, k), Eq. 3
        return {g for g in nearest(p, k) if p in nearest(g, k)}

    v = np.zeros((n, n))
    for p in range(n):
        r = reciprocal(p, k1)
        expanded = set(r)
        for q in r:  # Eq. 4
            half = reciprocal(q, round(k1 / 2))
            if len(half & r) > 2 / 3 * len(half):
                expanded |= half
        members = sorted(expanded)
        v[p, members] = np.exp(-d[p, members])  # Eq. 7
        v[p] /= v[p].sum()
    v = np.stack([v[nearest(p, k2 - 1)].mean(0) for p in range(n)])  # Eq. 11
    jaccard = np.zeros((nq, n - nq))
    for p in range(nq):  # Eq. 10
        for g in range(nq, n):
            jaccard[p, g - nq] = 1 - np.minimum(v[p], v[g]).sum() / np.maximum(v[p], v[g]).sum()
    return (1 - lam) * jaccard + lam * d[:nq, nq:]  # Eq. 12
