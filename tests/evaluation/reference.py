"""Direct implementation of the ReID protocol: full distance matrix + stable sort, per query.

Written independently of the library (no counting trick, no chunks), after the per-query loop
of torchreid's / fast-reid's Python evaluators, with stable tie breaking by gallery index.
Junk (gallery person id -1) is taken out of every query's ranking, as the official
Market-1501 evaluation does, unless ``ignore_junk=False``.
"""

from __future__ import annotations

import numpy as np


def distance_matrix(qf: np.ndarray, gf: np.ndarray, metric: str) -> np.ndarray:
    qf = qf.astype(np.float64)
    gf = gf.astype(np.float64)
    if metric == "cosine":
        qf = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        gf = gf / np.linalg.norm(gf, axis=1, keepdims=True)
        return 1.0 - qf @ gf.T
    return (qf**2).sum(1)[:, None] + (gf**2).sum(1)[None, :] - 2.0 * qf @ gf.T


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=10, ignore_junk=True):
    """Returns (cmc (max_rank,), mAP, mINP, n_valid) or raises ValueError if none valid."""
    nq = distmat.shape[0]
    order = np.argsort(distmat, axis=1, kind="stable")
    cmcs, aps, inps = [], [], []
    for i in range(nq):
        o = order[i]
        keep = ~((g_pids[o] == q_pids[i]) & (g_camids[o] == q_camids[i]))
        if ignore_junk:
            keep &= g_pids[o] != -1
        matches = (g_pids[o] == q_pids[i])[keep].astype(np.int64)
        if not matches.any():
            continue
        cmc = matches.cumsum()
        cmc[cmc > 1] = 1
        full = np.zeros(max_rank)
        n = min(max_rank, len(cmc))
        full[:n] = cmc[:n]
        full[n:] = cmc[-1]
        cmcs.append(full)
        hit_pos = np.nonzero(matches)[0]  # 0-based ranks of correct matches
        precisions = [(j + 1) / (p + 1) for j, p in enumerate(hit_pos)]
        aps.append(sum(precisions) / len(hit_pos))
        inps.append(len(hit_pos) / (hit_pos[-1] + 1))
    if not cmcs:
        raise ValueError("all queries skipped")
    return np.mean(cmcs, 0), float(np.mean(aps)), float(np.mean(inps)), len(cmcs)
