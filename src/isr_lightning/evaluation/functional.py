"""Pure math of the ReID protocol on one block of queries (no state, no I/O).

The protocol (``docs/evaluation.md``, after torchreid and fast-reid):

* a gallery item with the query's person id **and** camera is removed for that query;
* a query with no remaining gallery item of its id is *skipped*;
* the remaining gallery is ranked by distance, ties broken by gallery index (stable);
* CMC(k) = 1 if a correct match is in the top ``k``; AP is non-interpolated; INP is
  ``n_correct / rank_of_last_correct`` (fast-reid's mINP).

No full sort is needed: the rank of a correct match is 1 + the number of valid gallery items
that score strictly better, plus the tied ones with a smaller gallery index
(:func:`~isr_lightning.evaluation._counting.negatives_before` counts them). Memory is
``O(block_queries x gallery)``.

All functions work on a *cost* block where lower is better (see :func:`cost_block`).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from isr_lightning.evaluation._counting import negatives_before

__all__ = [
    "DistanceMetric",
    "QueryStats",
    "SamePidIndex",
    "check_finite",
    "cost_block",
    "prepare_features",
    "query_stats",
    "summarize",
]

DistanceMetric = Literal["cosine", "euclidean"]


class QueryStats(NamedTuple):
    """Per-query results of the protocol for a block of ``Q`` queries.

    Attributes:
        first_rank: ``(Q,)`` int64 1-based rank of the first correct match (0 where skipped).
        ap: ``(Q,)`` float64 average precision (0 where skipped).
        inp: ``(Q,)`` float64 inverse negative penalty (0 where skipped).
        valid: ``(Q,)`` bool, False for skipped queries (no correct match left).
    """

    first_rank: Tensor
    ap: Tensor
    inp: Tensor
    valid: Tensor


def prepare_features(features: Tensor, metric: DistanceMetric) -> Tensor:
    """Cast features to float32 and L2-normalise them for the cosine metric.

    Args:
        features: ``(N, D)`` features.
        metric: ``"cosine"`` (features are L2-normalised) or ``"euclidean"`` (unchanged).

    Returns:
        ``(N, D)`` float32 contiguous features.

    Raises:
        ValueError: on an unknown metric, a wrong shape or non-finite values.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    features = features.float()
    check_finite(features)
    if metric == "cosine":
        features = F.normalize(features, dim=1)
    return features.contiguous()


def check_finite(features: Tensor) -> Tensor:
    """Raise if a row has a NaN or infinite value; return the ``(N,)`` L2 norms of the rows.

    The check goes through the row norms, so it allocates no ``(N, D)`` temporary.
    """
    norms = torch.linalg.vector_norm(features, dim=1)
    if not bool(torch.isfinite(norms).all()):
        raise ValueError("features contain NaN or infinite values")
    return norms


def stable_sort(values: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.sort(values, dim=-1, stable=True)``, through numpy on CPU.

    On a CPU shared with other work, torch's parallel sort of a small tensor can wait
    milliseconds on its OpenMP threads; numpy's single-threaded sort does not.

    Args:
        values: ``(..., N)`` tensor.

    Returns:
        ``(sorted values, indices)``, both ``(..., N)``.
    """
    if values.device.type != "cpu":
        return torch.sort(values, dim=-1, stable=True)
    order = np.argsort(values.numpy(), axis=-1, kind="stable")
    return torch.from_numpy(np.take_along_axis(values.numpy(), order, axis=-1)), torch.from_numpy(order)


def cost_block(
    query: Tensor,
    gallery: Tensor,
    metric: DistanceMetric,
    gallery_sq_norms: Tensor | None = None,
    gallery_inv_norms: Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Ranking cost of every query-gallery pair, lower is better.

    * cosine: ``-q.g`` on L2-normalised features (the same order as fast-reid's ``1 - q.g``
      without the rounding of the subtraction);
    * euclidean: ``|g|^2 - 2 q.g`` (the squared distance minus the query's constant
      ``|q|^2``; the same order as torchreid's squared euclidean distance).

    Args:
        query: ``(Q, D)`` float32 features (from :func:`prepare_features`).
        gallery: ``(G, D)`` float32 features (from :func:`prepare_features`).
        metric: ``"cosine"`` or ``"euclidean"``.
        gallery_sq_norms: optional precomputed ``(G,)`` squared norms for euclidean.
        gallery_inv_norms: for cosine with an *unnormalised* gallery, the ``(G,)`` inverse
            norms of its rows: the block is scaled column-wise, so the gallery never needs a
            normalised copy.
        out: optional ``(Q, G)`` float32 tensor to write the block into (one buffer reused
            for every block saves allocating, and page-faulting, a new one each time).

    Returns:
        ``(Q, G)`` float32 costs (``out`` when given).
    """
    if metric == "cosine":
        block = torch.mm(query.neg(), gallery.t(), out=out)
        return block if gallery_inv_norms is None else block.mul_(gallery_inv_norms.unsqueeze(0))
    if gallery_sq_norms is None:
        gallery_sq_norms = gallery.pow(2).sum(1)
    return torch.addmm(gallery_sq_norms.unsqueeze(0), query, gallery.t(), alpha=-2.0, out=out)


class SamePidIndex:
    """Gallery items grouped by person id, to find each query's same-id items sparsely.

    Args:
        gallery_pids: ``(G,)`` int64 person ids of the gallery.
    """

    def __init__(self, gallery_pids: Tensor) -> None:
        gallery_pids = gallery_pids.long()
        # Stable: within one id the gallery indices stay ascending (needed for tie breaking).
        self.sorted_pids, self.order = stable_sort(gallery_pids)

    def lookup(self, query_pids: Tensor) -> tuple[Tensor, Tensor]:
        """Gallery indices with each query's person id.

        Args:
            query_pids: ``(Q,)`` int64 person ids.

        Returns:
            ``(idx, mask)``, both ``(Q, M)`` with ``M`` the largest count in the block:
            ``idx`` int64 ascending gallery indices (padding repeats the row's first one, or
            is 0 for a row without any), ``mask``
            bool, False on padding.
        """
        query_pids = query_pids.to(self.sorted_pids.device).long()
        lo = torch.searchsorted(self.sorted_pids, query_pids, right=False)
        hi = torch.searchsorted(self.sorted_pids, query_pids, right=True)
        counts = hi - lo
        m = int(counts.max()) if counts.numel() else 0
        ar = torch.arange(m, device=lo.device)
        mask = ar.unsqueeze(0) < counts.unsqueeze(1)
        pos = (lo.unsqueeze(1) + ar.unsqueeze(0)).clamp_max(max(self.order.numel() - 1, 0))
        idx = self.order[pos] if self.order.numel() else pos
        # Padding repeats the row's first same-id item (or 0 when the row has none).
        pad = idx[:, :1] if m else idx
        pad = torch.where(counts.unsqueeze(1) > 0, pad, torch.zeros_like(pad))
        return torch.where(mask, idx, pad), mask


def query_stats(
    cost: Tensor,
    query_pids: Tensor,
    query_camids: Tensor,
    gallery_pids: Tensor,
    gallery_camids: Tensor,
    same_pid_index: SamePidIndex | None = None,
) -> QueryStats:
    """Rank of the first correct match, AP and INP of every query of a block.

    Exact under the protocol, with ties broken by gallery index; no sort of the gallery. The
    block is left unchanged.

    Args:
        cost: ``(Q, G)`` float ranking costs, lower is better (see :func:`cost_block`).
        query_pids: ``(Q,)`` int person ids.
        query_camids: ``(Q,)`` int camera ids.
        gallery_pids: ``(G,)`` int person ids.
        gallery_camids: ``(G,)`` int camera ids.
        same_pid_index: optional :class:`SamePidIndex` of ``gallery_pids`` (reuse it across
            blocks).

    Returns:
        A :class:`QueryStats` for the ``Q`` queries.
    """
    device = cost.device
    nq = cost.shape[0]
    query_camids = query_camids.to(device).long()
    gallery_camids = gallery_camids.to(device).long()
    if same_pid_index is None:
        same_pid_index = SamePidIndex(gallery_pids.to(device))
    idx, same_mask = same_pid_index.lookup(query_pids.to(device))  # (Q, M)
    m = idx.shape[1]
    # Correct matches: same id, other camera. Same id and same camera: removed.
    positive = same_mask & (gallery_camids[idx] != query_camids.unsqueeze(1))
    n_pos = positive.sum(1)
    valid = n_pos > 0
    zeros_f = torch.zeros(nq, dtype=torch.float64, device=device)
    if m == 0 or not bool(valid.any()):
        return QueryStats(torch.zeros_like(n_pos), zeros_f, zeros_f.clone(), valid)
    cost = cost.float().contiguous()
    values = torch.where(positive, cost.gather(1, idx), torch.inf)
    # Same-id items come in ascending gallery index, so a stable sort breaks ties by index.
    thr, perm = stable_sort(values)
    better = negatives_before(cost, thr, idx.gather(1, perm), n_pos, idx).to(device)

    within = torch.arange(m, device=device).unsqueeze(0)  # (1, M) correct matches before
    is_pos = within < n_pos.unsqueeze(1)
    ranks = (better + within + 1).double()  # (Q, M) 1-based rank of each correct match
    ap = torch.where(is_pos, (within + 1) / ranks, 0.0).sum(1) / n_pos.clamp_min(1)
    last = ranks.gather(1, (n_pos - 1).clamp_min(0).unsqueeze(1))[:, 0]
    return QueryStats(
        torch.where(valid, ranks[:, 0].long(), 0),
        torch.where(valid, ap, zeros_f),
        torch.where(valid, n_pos / last, zeros_f),
        valid,
    )


def summarize(stats: QueryStats, max_rank: int) -> tuple[Tensor, float, float, int]:
    """Average per-query results over the counted (not skipped) queries.

    Args:
        stats: per-query results of all queries.
        max_rank: length of the CMC curve.

    Returns:
        ``(cmc, mAP, mINP, n_valid)``: ``cmc`` is a ``(max_rank,)`` float64 tensor whose entry
        ``k - 1`` is CMC(k).

    Raises:
        ValueError: if every query was skipped.
    """
    valid = stats.valid
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError(
            "every query was skipped: no query has a gallery item of its person id from another "
            "camera. A dataset without camera ids (all items on one camera) is the usual cause."
        )
    first = stats.first_rank[valid].cpu()
    ks = torch.arange(1, max_rank + 1)
    cmc = (first.unsqueeze(0) <= ks.unsqueeze(1)).double().mean(1)
    m_ap = float(stats.ap[valid].double().mean())
    m_inp = float(stats.inp[valid].double().mean())
    return cmc, m_ap, m_inp, n_valid
