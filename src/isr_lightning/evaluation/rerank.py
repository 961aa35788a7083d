"""k-reciprocal re-ranking, memory-bounded.

Zhong, Zheng, Cao and Li, *Re-ranking Person Re-identification with k-reciprocal Encoding*,
CVPR 2017. For all ``N = Q + G`` items (queries and gallery together), with ``d`` the squared euclidean
distance (on L2-normalised features for the cosine metric), each row divided by its maximum:

* ``N(p, k)``: ``p`` and its ``k`` nearest neighbours (``p`` first);
* ``R(p, k) = {g in N(p, k) : p in N(g, k)}`` (k-reciprocal neighbours, Eq. 3);
* ``R*(p) = R(p, k1)`` plus ``R(q, round(k1 / 2))`` for every ``q in R(p, k1)`` whose half set
  overlaps ``R(p, k1)`` in more than 2/3 of its items (Eq. 4);
* ``V[p, g] = exp(-d(p, g))`` for ``g in R*(p)``, else 0, each row normalised to sum 1
  (Eqs. 7-8);
* local query expansion ``V[p] <- mean of V[g] over g in N(p, k2 - 1)`` (the ``k2`` nearest,
  ``p`` included; Eq. 11);
* Jaccard distance ``d_J(p, g) = 1 - sum_j min(V[p, j], V[g, j]) / sum_j max(V[p, j], V[g, j])``
  (Eq. 10), ``j`` over all ``N`` items;
* final distance ``(1 - lambda) d_J + lambda d`` (Eq. 12), for queries against the gallery.

Where the paper leaves a choice open, this follows the authors' released evaluation (the
one torchreid and fast-reid ship): neighbours are searched among queries and gallery
together, each item is its own first neighbour, ``d`` is normalised by each row's maximum,
the rows of ``V`` sum to 1, and the 2/3 test is strict. Unlike that code, nothing of size
``N x N`` is ever held: neighbours come from one chunked pass of matrix products, ``V`` is
sparse (at most ``(k1 + 1)(round(k1 / 2) + 2)`` entries a row), and the Jaccard sums are
accumulated through an inverted index of ``V``'s columns, one block of queries at a time;
everything is float32 (the released code uses float16 for the Jaccard matrix).

Memory grows linearly with ``N``; time does not: the neighbour search is ``N^2 D``. Above
:attr:`KReciprocal.max_items` items it refuses, with a message, rather than run for hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["KReciprocal", "as_rerank", "rerank_blocks"]

# Rows of the N-wide distance blocks of the neighbour search: about this many floats a block.
_BLOCK_ELEMENTS = 1 << 24
# (query entry, gallery item) pairs expanded at once in the Jaccard sums (~16 bytes each).
_PAIR_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class KReciprocal:
    """Settings of k-reciprocal re-ranking (the paper's defaults for Market-1501).

    Args:
        k1: neighbours of the k-reciprocal sets.
        k2: neighbours averaged by the local query expansion (1 turns it off).
        lambda_value: weight of the original distance in the final one (0: Jaccard only).
        max_items: refuse above this many items (queries + gallery): the neighbour search
            takes time ``N^2 D``.

    Raises:
        ValueError: on an out-of-range value.
    """

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3
    max_items: int = 100_000

    def __post_init__(self) -> None:
        if self.k1 < 1 or self.k2 < 1:
            raise ValueError(f"k1 and k2 must be >= 1, got k1={self.k1}, k2={self.k2}")
        if not 0.0 <= self.lambda_value <= 1.0:
            raise ValueError(f"lambda_value must be in [0, 1], got {self.lambda_value}")
        if self.max_items < 2:
            raise ValueError(f"max_items must be >= 2, got {self.max_items}")

    def to_dict(self) -> dict[str, float]:
        """``{"k1", "k2", "lambda"}`` for a JSON report."""
        return {"k1": self.k1, "k2": self.k2, "lambda": self.lambda_value}

    def check_size(self, n_query: int, n_gallery: int) -> None:
        """Raise a ``ValueError`` saying why, when ``n_query + n_gallery`` exceeds ``max_items``."""
        n = n_query + n_gallery
        if n > self.max_items:
            raise ValueError(
                f"k-reciprocal re-ranking of {n_query:,} queries + {n_gallery:,} gallery = {n:,} items "
                f"exceeds max_items={self.max_items:,}: its neighbour search compares every item with "
                f"every other (time grows as N^2; memory stays about linear). Raise the limit "
                f"(KReciprocal(max_items=...), --rerank.max_items) if you can wait, or evaluate without "
                f"re-ranking."
            )


def as_rerank(value: KReciprocal | bool | None) -> KReciprocal | None:
    """``True`` -> the default :class:`KReciprocal`, ``False``/``None`` -> ``None`` (no re-ranking)."""
    if isinstance(value, KReciprocal) or value is None:
        return value
    if isinstance(value, bool):
        return KReciprocal() if value else None
    raise TypeError(f"rerank must be a bool or a KReciprocal, got {type(value).__name__}")


def rerank_blocks(
    query: Tensor, gallery: Tensor, config: KReciprocal, chunk_size: int = 512
) -> Iterator[tuple[int, Tensor]]:
    """Re-ranked query-gallery distances (lower is better), one block of query rows at a time.

    Args:
        query: ``(Q, D)`` float32 features, L2-normalised for the cosine metric (as
            :func:`~isr_lightning.evaluation.functional.prepare_features` gives them).
        gallery: ``(G, D)`` float32 features, prepared the same way, on the same device.
        config: the :class:`KReciprocal` settings.
        chunk_size: query rows per block.

    Yields:
        ``(start, dist)``: the first query row of the block and its ``(rows, G)`` float32
        final distances.

    Raises:
        ValueError: above ``config.max_items`` items.
    """
    nq, ng = query.shape[0], gallery.shape[0]
    config.check_size(nq, ng)
    x = torch.cat([query, gallery]).float()
    n = x.shape[0]
    sq = x.pow(2).sum(1)
    k1, k2 = min(config.k1, n - 1), min(config.k2, n)
    nn, row_max = _neighbours(x, sq, max(k1 + 1, k2))
    v = _expand(_encode(x, sq, row_max, nn, k1, min(round(config.k1 / 2), k1)), nn[:, :k2], n)
    by_column = _gallery_columns(v, nq)
    lam = config.lambda_value
    for start in range(0, nq, chunk_size):
        rows = torch.arange(start, min(start + chunk_size, nq), device=x.device)
        overlap = _jaccard_overlap(v, by_column, rows, ng)  # sum_j min(V[p, j], V[g, j])
        union = v.row_sums[rows].unsqueeze(1) + v.row_sums[nq:].unsqueeze(0) - overlap
        dist = _distances(x[rows], sq[rows], x[nq:], sq[nq:]).div_(row_max[rows].unsqueeze(1))
        yield start, dist.mul_(lam).add_((1.0 - overlap / union.clamp_min(1e-12)).mul_(1.0 - lam))


@dataclass
class _Sparse:
    """Rows of a sparse ``N x N`` matrix in CSR form (``ptr (N + 1,)``, ``col``, ``val``)."""

    ptr: Tensor
    col: Tensor
    val: Tensor

    @property
    def row_sums(self) -> Tensor:
        """``(N,)`` sum of each row."""
        rows = torch.repeat_interleave(torch.arange(self.ptr.numel() - 1, device=self.ptr.device), self.ptr.diff())
        return torch.zeros(self.ptr.numel() - 1, dtype=self.val.dtype, device=self.val.device).index_add_(
            0, rows, self.val
        )


def _distances(a: Tensor, a_sq: Tensor, b: Tensor, b_sq: Tensor) -> Tensor:
    """``(A, B)`` squared euclidean distances, clamped at 0."""
    return torch.addmm(b_sq.unsqueeze(0), a, b.t(), alpha=-2.0).add_(a_sq.unsqueeze(1)).clamp_min_(0.0)


def _neighbours(x: Tensor, sq: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Each item's ``k`` nearest items (itself first) and the largest distance of its row.

    Returns:
        ``(nn (N, k) int64, row_max (N,) float32)``.
    """
    n = x.shape[0]
    nn = torch.empty(n, k, dtype=torch.long, device=x.device)
    row_max = torch.empty(n, device=x.device)
    step = max(1, _BLOCK_ELEMENTS // n)
    for s in range(0, n, step):
        d = _distances(x[s : s + step], sq[s : s + step], x, sq)
        row_max[s : s + step] = d.max(1).values
        rows = torch.arange(d.shape[0], device=x.device)
        d[rows, rows + s] = -1.0  # each item is its own first neighbour
        nn[s : s + step] = torch.topk(d, k, dim=1, largest=False, sorted=True).indices
    return nn, row_max.clamp_min_(1e-12)


def _reciprocal(forward: Tensor, rows: Tensor) -> Tensor:
    """``(B, k)`` bool: ``forward[r, a]`` has ``r`` among its own ``k`` neighbours, for ``r in rows``."""
    return (forward[forward[rows]] == rows.view(-1, 1, 1)).any(-1)


def _encode(x: Tensor, sq: Tensor, row_max: Tensor, nn: Tensor, k1: int, kh: int) -> _Sparse:
    """The Gaussian-weighted, row-normalised encoding ``V`` of every item's ``R*`` (Eqs. 4, 7-8)."""
    n, device = x.shape[0], x.device
    full, half = nn[:, : k1 + 1], nn[:, : kh + 1]
    ptr = [torch.zeros(1, dtype=torch.long, device=device)]
    cols, vals = [], []
    step = max(1, _BLOCK_ELEMENTS // ((k1 + 1) * (kh + 1) * (k1 + 1)))
    for s in range(0, n, step):
        rows = torch.arange(s, min(s + step, n), device=device)
        members = torch.where(_reciprocal(full, rows), full[rows], n)  # R(p, k1); n = none
        cand = members.clamp_max(n - 1)
        half_sets = torch.where(_reciprocal(half, cand.view(-1)).view(*cand.shape, -1), half[cand], n)
        half_sets = torch.where((members < n).unsqueeze(-1), half_sets, n)  # R(q, k1/2), q in R(p, k1)
        shared = (half_sets.unsqueeze(-1) == members.view(-1, 1, 1, k1 + 1)).any(-1) & (half_sets < n)
        keep = 3 * shared.sum(-1) > 2 * (half_sets < n).sum(-1)  # overlap > 2/3 of the half set
        union = torch.cat([members, torch.where(keep.unsqueeze(-1), half_sets, n).flatten(1)], 1)
        union = torch.sort(union, dim=1).values
        first = torch.ones_like(union, dtype=torch.bool)
        first[:, 1:] = union[:, 1:] != union[:, :-1]
        present = first & (union < n)  # R*(p): sorted, unique
        row_of = rows.unsqueeze(1).expand_as(union)[present]
        col = union[present]
        dist = _pair_distances(x, sq, row_of, col) / row_max[row_of]
        weight = torch.exp(-dist)
        counts = present.sum(1)
        local = torch.repeat_interleave(torch.arange(rows.numel(), device=device), counts)
        total = torch.zeros(rows.numel(), device=device).index_add_(0, local, weight)
        vals.append(weight / total[local])
        cols.append(col)
        ptr.append(counts)
    counts = torch.cat(ptr)
    return _Sparse(counts.cumsum(0), torch.cat(cols), torch.cat(vals))


def _pair_distances(x: Tensor, sq: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Squared euclidean distances of the item pairs ``(a[i], b[i])``, in chunks."""
    out = torch.empty(a.numel(), device=x.device)
    step = max(1, _BLOCK_ELEMENTS // x.shape[1])
    for s in range(0, a.numel(), step):
        ai, bi = a[s : s + step], b[s : s + step]
        dot = (x[ai] * x[bi]).sum(1)
        out[s : s + step] = (sq[ai] + sq[bi] - 2.0 * dot).clamp_min_(0.0)
    return out


def _expand(v: _Sparse, neighbours: Tensor, n: int) -> _Sparse:
    """Local query expansion (Eq. 11): each row becomes the mean of its neighbours' rows.

    Args:
        v: the encoding ``V``.
        neighbours: ``(N, k2)`` int64, each row's ``k2`` nearest items (itself first).
        n: number of items.
    """
    k2, device = neighbours.shape[1], v.ptr.device
    if k2 == 1:
        return v
    ptr = [torch.zeros(1, dtype=torch.long, device=device)]
    cols, vals = [], []
    lengths = v.ptr.diff()
    step = max(1, _PAIR_ELEMENTS // max(1, k2 * int(lengths.max())))
    for s in range(0, n, step):
        nb = neighbours[s : s + step]  # (B, k2)
        seg = lengths[nb].flatten()
        which = torch.repeat_interleave(torch.arange(seg.numel(), device=device), seg)
        pos = v.ptr[nb.flatten()][which] + torch.arange(which.numel(), device=device) - (seg.cumsum(0) - seg)[which]
        key = torch.div(which, k2, rounding_mode="floor") * n + v.col[pos]  # (local row, column)
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        vals.append(torch.zeros(uniq.numel(), device=device).index_add_(0, inverse, v.val[pos]) / k2)
        cols.append(uniq % n)
        ptr.append(torch.bincount(torch.div(uniq, n, rounding_mode="floor"), minlength=nb.shape[0]))
    return _Sparse(torch.cat(ptr).cumsum(0), torch.cat(cols), torch.cat(vals))


def _gallery_columns(v: _Sparse, nq: int) -> _Sparse:
    """The inverted index the Jaccard sums walk: the gallery rows of ``v``, by column.

    Returns:
        ``ptr`` over the ``N`` columns; ``col`` holds gallery indices (row - ``nq``).
    """
    n = v.ptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n, device=v.ptr.device), v.ptr.diff())
    is_gallery = rows >= nq
    col, row, val = v.col[is_gallery], rows[is_gallery] - nq, v.val[is_gallery]
    order = torch.argsort(col, stable=True)
    counts = torch.bincount(col, minlength=n)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long, device=col.device), counts.cumsum(0)])
    return _Sparse(ptr, row[order], val[order])


def _jaccard_overlap(v: _Sparse, by_column: _Sparse, rows: Tensor, ng: int) -> Tensor:
    """``(B, G)`` float32 ``sum_j min(V[p, j], V[g, j])`` for the query rows ``rows``."""
    device = v.ptr.device
    out = torch.zeros(rows.numel() * ng, device=device)
    starts, lengths = v.ptr[rows], v.ptr[rows + 1] - v.ptr[rows]
    local = torch.repeat_interleave(torch.arange(rows.numel(), device=device), lengths)
    entry = starts[local] + torch.arange(local.numel(), device=device) - (lengths.cumsum(0) - lengths)[local]
    column, value = v.col[entry], v.val[entry]  # the query rows' entries (row local, column, value)
    fan = by_column.ptr[column + 1] - by_column.ptr[column]  # gallery items sharing each column
    # Expand entries into (entry, gallery item) pairs, about _PAIR_ELEMENTS at a time.
    ends = fan.cumsum(0)
    total = int(ends[-1]) if ends.numel() else 0
    cuts = torch.arange(_PAIR_ELEMENTS, max(total, _PAIR_ELEMENTS), _PAIR_ELEMENTS, device=device)
    bounds = [0, *torch.searchsorted(ends, cuts, right=True).tolist(), fan.numel()]
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        f = fan[lo:hi]
        which = torch.repeat_interleave(torch.arange(lo, hi, device=device), f)
        pos = by_column.ptr[column[which]] + torch.arange(which.numel(), device=device) - (f.cumsum(0) - f)[which - lo]
        contribution = torch.minimum(value[which], by_column.val[pos])
        out.index_add_(0, local[which] * ng + by_column.col[pos], contribution)
    return out.view(rows.numel(), ng)
