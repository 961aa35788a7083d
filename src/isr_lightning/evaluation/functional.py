"""Pure math of the ReID protocol on one block of queries (no state, no I/O).

The protocol (``docs/evaluation.md``, after torchreid and fast-reid):

* a gallery item with the query's person id **and** camera is removed for that query;
* a query with no remaining gallery item of its id is *skipped*;
* the remaining gallery is ranked by distance, ties broken by gallery index (stable);
* CMC(k) = 1 if a correct match is in the top ``k``; AP is non-interpolated; INP is
  ``n_correct / rank_of_last_correct`` (fast-reid's mINP).

No full sort is needed: the rank of a correct match is 1 + the number of valid gallery items
that score strictly better, plus the tied ones with a smaller gallery index. For each query
the correct matches are few, so they are sorted and every gallery item is *bucketed* against
them with one :func:`torch.searchsorted`; a cumulative sum of the bucket counts gives the
ranks of all correct matches at once. Memory is ``O(block_queries x gallery)``.

All functions work on a *cost* block where lower is better (see :func:`cost_block`).
"""

from __future__ import annotations

import itertools
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

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

# Tie pairs are expanded against all thresholds of their row in blocks of this many elements,
# so heavily quantised features (many exact ties) stay memory-bounded too.
_TIE_BLOCK_ELEMENTS = 1 << 22
# At most this many selected (row, gallery) items per block (~50 bytes each, ~200 MB); a block
# that would select more is split into row groups.
_MAX_SELECTED = 1 << 22


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


def cost_block(
    query: Tensor,
    gallery: Tensor,
    metric: DistanceMetric,
    gallery_sq_norms: Tensor | None = None,
    gallery_inv_norms: Tensor | None = None,
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

    Returns:
        ``(Q, G)`` float32 costs.
    """
    if metric == "cosine":
        block = torch.mm(query.neg(), gallery.t())
        return block if gallery_inv_norms is None else block.mul_(gallery_inv_norms.unsqueeze(0))
    if gallery_sq_norms is None:
        gallery_sq_norms = gallery.pow(2).sum(1)
    return torch.addmm(gallery_sq_norms.unsqueeze(0), query, gallery.t(), alpha=-2.0)


class SamePidIndex:
    """Gallery items grouped by person id, to find each query's same-id items sparsely.

    Args:
        gallery_pids: ``(G,)`` int64 person ids of the gallery.
    """

    def __init__(self, gallery_pids: Tensor) -> None:
        gallery_pids = gallery_pids.long()
        # Stable: within one id the gallery indices stay ascending (needed for tie breaking).
        self.sorted_pids, self.order = torch.sort(gallery_pids, stable=True)

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

    Exact under the protocol, with ties broken by gallery index; no sort of the gallery.

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
    nq, ng = cost.shape
    query_pids = query_pids.to(device).long()
    query_camids = query_camids.to(device).long()
    gallery_pids = gallery_pids.to(device).long()
    gallery_camids = gallery_camids.to(device).long()
    if same_pid_index is None:
        same_pid_index = SamePidIndex(gallery_pids)
    idx, same_mask = same_pid_index.lookup(query_pids)
    m = idx.shape[1]
    zeros_f = torch.zeros(nq, dtype=torch.float64, device=device)
    if m == 0 or nq == 0:
        return QueryStats(
            torch.zeros(nq, dtype=torch.long, device=device),
            zeros_f,
            zeros_f.clone(),
            torch.zeros(nq, dtype=torch.bool, device=device),
        )

    # Correct matches: same id, other camera. Same id and same camera: removed.
    positive = same_mask & (gallery_camids[idx] != query_camids.unsqueeze(1))
    n_pos = positive.sum(1)
    valid = n_pos > 0
    cost = cost.float().contiguous()
    values = cost.gather(1, idx)  # (Q, M)
    inf = torch.tensor(float("inf"), dtype=cost.dtype, device=device)
    # Positives are in ascending gallery index, so a stable sort breaks ties by index.
    thr_sorted, perm = torch.sort(torch.where(positive, values, inf), dim=1, stable=True)
    ar = torch.arange(m, device=device)
    is_pos = ar.unsqueeze(0) < n_pos.unsqueeze(1)  # (Q, M) sorted slots holding a positive
    pos_row = torch.arange(nq, device=device).unsqueeze(1).expand(nq, m)[is_pos]  # (P,)
    pos_val = thr_sorted[is_pos]  # (P,) row-major: sorted by (row, cost, gallery index)
    pos_gidx = idx.gather(1, perm)[is_pos]  # (P,)
    n_total = pos_val.numel()
    row_start = n_pos.cumsum(0) - n_pos  # (Q,) first flat slot of each row
    pos_keys = _sort_keys(pos_row, pos_val)  # (P,) ascending int64

    # Only gallery items scoring at most the worst positive's cost can rank before a positive;
    # for reasonable features they are a small fraction of the block.
    worst = torch.where(valid, thr_sorted.gather(1, (n_pos - 1).clamp_min(0).unsqueeze(1))[:, 0], -inf)
    # Same-id items (correct matches and removed ones) are masked out of the dense pass by a
    # temporary +inf, restored right after, so the caller's block is left unchanged.
    has_same = same_mask.any(1, keepdim=True)  # rows whose padding points to a same-id item
    cost.scatter_(1, idx, torch.where(has_same, inf, values))
    try:
        selected = cost <= worst.unsqueeze(1)
        # count_nonzero over the whole block is fast; a per-row sum of bools is not.
        too_many = nq > 1 and int(torch.count_nonzero(selected)) > _MAX_SELECTED
        row_counts = selected.view(torch.uint8).sum(1, dtype=torch.int64) if too_many else None
        flat = None if too_many else torch.nonzero(selected.view(-1)).squeeze(1)
        del selected
    finally:
        cost.scatter_(1, idx, values)
    if flat is None:
        # Poor features put correct matches deep in the ranking: split the block into row
        # groups of at most _MAX_SELECTED selected items, so memory stays bounded.
        group = torch.div(row_counts.cumsum(0) - 1, _MAX_SELECTED, rounding_mode="floor")
        bounds = [0, *(torch.nonzero(group[1:] != group[:-1]).squeeze(1) + 1).tolist(), nq]
        parts = [
            query_stats(
                cost[lo:hi],
                query_pids[lo:hi],
                query_camids[lo:hi],
                gallery_pids,
                gallery_camids,
                same_pid_index,
            )
            for lo, hi in itertools.pairwise(bounds)
            if hi > lo
        ]
        return QueryStats(*(torch.cat(list(x)) for x in zip(*parts, strict=True)))
    vals = cost.view(-1)[flat]
    rows = torch.div(flat, ng, rounding_mode="floor")
    cols = flat - rows * ng
    keys = _sort_keys(rows, vals)
    right = torch.searchsorted(pos_keys, keys, right=True)  # flat slot after the last <= key
    bucket = right - row_start[rows]  # positives of the row with cost <= item's cost
    # The item ranks before the row's positives at sorted positions >= bucket.
    inside = bucket < n_pos[rows]
    hist = torch.bincount(right[inside], minlength=n_total)
    csum = hist.cumsum(0)
    better = csum - (csum - hist)[row_start[pos_row]]  # inclusive segmented cumsum per row

    # Exact ties with a positive: a negative with a smaller gallery index ranks before it.
    tied = (bucket > 0) & (pos_keys[(right - 1).clamp_min(0)] == keys)
    if bool(tied.any()):
        t_keys, t_cols, t_right = keys[tied], cols[tied], right[tied]
        t_left = torch.searchsorted(pos_keys, t_keys, right=False)
        lengths = t_right - t_left
        step = max(1, _TIE_BLOCK_ELEMENTS // max(1, int(lengths.max())))
        for s in range(0, lengths.numel(), step):
            ln = lengths[s : s + step]
            rep = torch.repeat_interleave(torch.arange(ln.numel(), device=device), ln)
            offs = torch.arange(rep.numel(), device=device) - (ln.cumsum(0) - ln)[rep]
            slot = t_left[s : s + step][rep] + offs
            hit = pos_gidx[slot] > t_cols[s : s + step][rep]
            better.index_add_(0, slot[hit], torch.ones_like(slot[hit]))

    within = torch.arange(n_total, device=device) - row_start[pos_row]  # 0-based among positives
    ranks = (better + within + 1).double()  # (P,) 1-based rank of each positive
    zeros_f = torch.zeros(nq, dtype=torch.float64, device=device)
    ap = zeros_f.clone().index_add_(0, pos_row, (within + 1).double() / ranks)
    ap = ap / n_pos.double().clamp_min(1.0)
    safe_start = row_start.clamp_max(max(n_total - 1, 0))
    if n_total:
        last = ranks[(row_start + n_pos - 1).clamp(0, n_total - 1)]
        first_rank = torch.where(valid, ranks[safe_start].long(), torch.zeros_like(n_pos))
        inp = torch.where(valid, n_pos.double() / last, zeros_f)
    else:
        first_rank = torch.zeros_like(n_pos)
        inp = zeros_f.clone()
    ap = torch.where(valid, ap, zeros_f)
    return QueryStats(first_rank, ap, inp, valid)


def _sort_keys(rows: Tensor, values: Tensor) -> Tensor:
    """int64 keys ordered like ``(row, value)`` for float32 values (exact, ties preserved).

    Args:
        rows: ``(N,)`` int64 non-negative row numbers.
        values: ``(N,)`` float32 finite values.

    Returns:
        ``(N,)`` int64 keys: ``key_a < key_b`` iff ``(row_a, value_a) < (row_b, value_b)``.
    """
    bits = (values.float() + 0.0).view(torch.int32).long()  # + 0.0 maps -0.0 to +0.0
    # IEEE order trick: negative floats have all magnitude bits flipped.
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)  # in [0, 2^32)
    return (rows.long() << 32) | ordered


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
