"""How many negatives rank before each correct match of a query: the protocol's hot loop.

The rank of a correct match is 1 + the number of correct matches before it + the number of
*negatives* (gallery items of another id) before it, where "before" means a lower cost, or
an equal cost and a smaller gallery index. :func:`negatives_before` counts those negatives
for every correct match of a block of queries, exactly, without sorting the gallery.

Two implementations give identical counts:

* CPU (numpy, one query at a time, single-threaded: no OpenMP waits on a busy machine): the
  correct matches of a row are sorted; the negatives scoring at most the third-worst one
  are bucketed against them with one ``searchsorted``; the two worst correct matches, which
  on poor features sit far deeper than the others, are counted with one comparison over the
  row each. On hard features (mINP 0.02) that buckets 4-6x fewer items than bucketing every
  negative down to the worst correct match.
* other devices (torch, the whole block at once): the negatives scoring at most their row's
  worst correct match are selected and bucketed with one ``searchsorted`` on exact integer
  keys ``(row, float bits)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

__all__ = ["negatives_before"]

# The torch path selects at most this many (row, gallery) items per pass (~50 bytes each,
# ~200 MB); a block of poor features that would select more is split into row groups.
_MAX_SELECTED = 1 << 22
# Tie pairs are expanded against the correct matches of their row in blocks of this many
# elements, so heavily quantised features (many exact ties) stay memory-bounded too.
_TIE_BLOCK_ELEMENTS = 1 << 22
# Implementation used for CPU blocks ("rows": numpy, per query; "block": torch). Tests switch
# it to check that both give the same counts.
CPU_IMPLEMENTATION = "rows"
# The CPU path counts the negatives before each of a row's DENSE_TAIL worst correct matches
# with one comparison over the row, and buckets the rest.
DENSE_TAIL = 2


def negatives_before(cost: Tensor, thr: Tensor, gidx: Tensor, n_pos: Tensor, same_idx: Tensor) -> Tensor:
    """Negatives ranking before each correct match, for every query of a block.

    Args:
        cost: ``(Q, G)`` float32 contiguous ranking costs, lower is better. Left unchanged
            (the CPU path masks the same-id items in place and restores them).
        thr: ``(Q, M)`` float32 costs of each row's correct matches, ascending by (cost,
            gallery index), padded with ``+inf`` after the first ``n_pos`` entries.
        gidx: ``(Q, M)`` int64 gallery indices in the order of ``thr``.
        n_pos: ``(Q,)`` int64 correct matches of each row.
        same_idx: ``(Q, M)`` int64 gallery indices of all same-id items of each row (correct
            matches and removed same-camera items); padding repeats one of them, or is any
            index in a row without correct match.

    Returns:
        ``(Q, M)`` int64: entry ``[q, j]`` for ``j < n_pos[q]`` is the number of negatives of
        row ``q`` that rank before its ``j``-th correct match; other entries are 0.
    """
    if cost.device.type == "cpu" and CPU_IMPLEMENTATION == "rows":
        counts = _rows_numpy(cost.detach().numpy(), thr.numpy(), gidx.numpy(), n_pos.numpy(), same_idx.numpy())
        return torch.from_numpy(counts)
    return _block_torch(cost, thr, gidx, n_pos, same_idx)


# -- CPU: numpy, one row at a time ---------------------------------------------------------


def _rows_numpy(
    cost: np.ndarray, thr: np.ndarray, gidx: np.ndarray, n_pos: np.ndarray, same_idx: np.ndarray
) -> np.ndarray:
    """:func:`negatives_before` on numpy arrays (same shapes), row by row."""
    better = np.zeros(thr.shape, dtype=np.int64)
    saved = np.take_along_axis(cost, same_idx, axis=1)
    np.put_along_axis(cost, same_idx, np.inf, axis=1)  # same-id items are not negatives
    try:
        for r in np.flatnonzero(n_pos).tolist():
            _row_numpy(cost[r], thr[r, : n_pos[r]], gidx[r, : n_pos[r]], better[r])
    finally:
        np.put_along_axis(cost, same_idx, saved, axis=1)
    return better


def _row_numpy(row: np.ndarray, thr: np.ndarray, gidx: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out[:n]`` for one row whose same-id items are ``+inf``.

    Args:
        row: ``(G,)`` float32 costs.
        thr: ``(n,)`` float32 costs of the correct matches, ascending (ties by index).
        gidx: ``(n,)`` their gallery indices.
        out: ``(M,)`` int64, written in place.
    """
    n = thr.shape[0]
    head = max(n - DENSE_TAIL, 0)  # correct matches whose negatives are bucketed
    if head:
        below = row <= thr[head - 1]
        values = row[below]
        slot = np.searchsorted(thr[:head], values)  # correct matches scoring below the item
        # cumsum: negatives scoring at most each correct match
        out[:head] = np.bincount(slot, minlength=head).cumsum()
        tied = thr[slot] == values
        if tied.any():
            cols = np.flatnonzero(below)[tied]
            _untie_row(out, thr[:head], gidx[:head], values[tied], slot[tied], cols)
    # The worst ones: negatives before each in (cost, index) order, by one pass over the row.
    for j in range(head, n):
        g = int(gidx[j])
        out[j] = np.count_nonzero(row[:g] <= thr[j]) + np.count_nonzero(row[g:] < thr[j])


def _untie_row(
    out: np.ndarray, thr: np.ndarray, gidx: np.ndarray, values: np.ndarray, slot: np.ndarray, cols: np.ndarray
) -> None:
    """Uncount tied negatives that rank after a correct match (larger gallery index).

    A negative tied with correct matches was counted before each of them; the matches with
    its cost sit at ``[slot, end)`` in ascending gallery index, and those with a smaller index
    than the negative rank before it.
    """
    lengths = np.searchsorted(thr, values, side="right") - slot
    rep = np.repeat(np.arange(lengths.size), lengths)
    pair_slot = slot[rep] + np.arange(rep.size) - (lengths.cumsum() - lengths)[rep]
    after = pair_slot[gidx[pair_slot] < cols[rep]]
    out[: thr.shape[0]] -= np.bincount(after, minlength=thr.shape[0])


# -- other devices: torch, the whole block ---------------------------------------------------


def _block_torch(cost: Tensor, thr: Tensor, gidx: Tensor, n_pos: Tensor, same_idx: Tensor) -> Tensor:
    """:func:`negatives_before` for a block, vectorised over rows (for GPUs)."""
    device = cost.device
    nq, ng = cost.shape
    m = thr.shape[1]
    is_pos = torch.arange(m, device=device).unsqueeze(0) < n_pos.unsqueeze(1)  # (Q, M)
    better = torch.zeros(nq, m, dtype=torch.long, device=device)
    pos_row = torch.arange(nq, device=device).unsqueeze(1).expand(nq, m)[is_pos]  # (P,)
    pos_keys = _sort_keys(pos_row, thr[is_pos])  # (P,) ascending: rows, then (cost, index)
    pos_gidx = gidx[is_pos]
    n_total = pos_keys.numel()
    if n_total == 0:
        return better
    row_start = n_pos.cumsum(0) - n_pos  # (Q,) first flat slot of each row
    worst = torch.where(n_pos > 0, thr.gather(1, (n_pos - 1).clamp_min(0).unsqueeze(1))[:, 0], -torch.inf)
    selected = cost <= worst.unsqueeze(1)  # only these can rank before a correct match
    selected.scatter_(1, same_idx, False)  # same-id items are not negatives
    if nq > 1 and int(torch.count_nonzero(selected)) > _MAX_SELECTED:
        return _split_rows(selected.sum(1), cost, thr, gidx, n_pos, same_idx)
    flat = torch.nonzero(selected.view(-1)).squeeze(1)  # (S,) row-major
    del selected
    counts = torch.searchsorted(flat, torch.arange(nq + 1, device=device) * ng).diff()
    row_base = torch.repeat_interleave(torch.arange(nq, device=device) << 32, counts, output_size=flat.numel())
    keys = row_base + _ordered_bits(cost.view(-1).take(flat))  # (S,) same order as pos_keys
    # First correct match of the row not scoring strictly better than the item (always in the
    # item's row: the item scores at most the row's worst).
    slot = torch.searchsorted(pos_keys, keys)
    hist = torch.bincount(slot, minlength=n_total)
    csum = hist.cumsum(0)
    flat_better = csum - (csum - hist)[row_start[pos_row]]  # cumulative within each row
    tied = pos_keys[slot] == keys
    if bool(tied.any()):
        t_cols = flat[tied] - (row_base[tied] >> 32) * ng
        _untie_flat(flat_better, pos_keys, pos_gidx, keys[tied], slot[tied], t_cols)
    better[is_pos] = flat_better
    return better


def _split_rows(row_counts: Tensor, cost: Tensor, thr: Tensor, gidx: Tensor, n_pos: Tensor, same_idx: Tensor) -> Tensor:
    """:func:`_block_torch` on row groups of at most ``_MAX_SELECTED`` selected items each."""
    group = torch.div(row_counts.cumsum(0) - 1, _MAX_SELECTED, rounding_mode="floor")
    bounds = [0, *(torch.nonzero(group[1:] != group[:-1]).squeeze(1) + 1).tolist(), cost.shape[0]]
    parts = [
        _block_torch(cost[lo:hi], thr[lo:hi], gidx[lo:hi], n_pos[lo:hi], same_idx[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
        if hi > lo
    ]
    return torch.cat(parts)


def _untie_flat(
    better: Tensor, pos_keys: Tensor, pos_gidx: Tensor, t_keys: Tensor, t_slot: Tensor, t_cols: Tensor
) -> None:
    """:func:`_untie_row` for the flat correct matches of a block (in place, in chunks)."""
    lengths = torch.searchsorted(pos_keys, t_keys, right=True) - t_slot
    step = max(1, _TIE_BLOCK_ELEMENTS // max(1, int(lengths.max())))
    for s in range(0, lengths.numel(), step):
        ln = lengths[s : s + step]
        rep = torch.repeat_interleave(torch.arange(ln.numel(), device=ln.device), ln)
        pair_slot = t_slot[s : s + step][rep] + torch.arange(rep.numel(), device=ln.device) - (ln.cumsum(0) - ln)[rep]
        after = pair_slot[pos_gidx[pair_slot] < t_cols[s : s + step][rep]]
        better.index_add_(0, after, torch.full_like(after, -1))


def _ordered_bits(values: Tensor) -> Tensor:
    """int32 numbers ordered like the float32 ``values`` (exact; ``-0.0`` equals ``0.0``).

    Args:
        values: ``(N,)`` float32 values, no NaN.

    Returns:
        ``(N,)`` int32: ``out_a < out_b`` iff ``values_a < values_b``.
    """
    bits = (values.float() + 0.0).view(torch.int32)  # + 0.0 maps -0.0 to +0.0
    # IEEE order: a negative float's other bits grow with its magnitude; flip them.
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _sort_keys(rows: Tensor, values: Tensor) -> Tensor:
    """int64 keys ordered like ``(row, value)`` for float32 values (exact, ties preserved).

    Args:
        rows: ``(N,)`` int64 non-negative row numbers.
        values: ``(N,)`` float32 values, no NaN.

    Returns:
        ``(N,)`` int64 keys: ``key_a < key_b`` iff ``(row_a, value_a) < (row_b, value_b)``.
    """
    return (rows.long() << 32) + _ordered_bits(values)
