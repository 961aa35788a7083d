"""Evaluate query and gallery features under the ReID protocol, chunked and exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from isr_lightning.evaluation.functional import (
    QueryStats,
    SamePidIndex,
    check_finite,
    prepare_features,
    query_stats,
    summarize,
)
from isr_lightning.evaluation.protocol import ReIDProtocol
from isr_lightning.evaluation.rerank import rerank_blocks
from isr_lightning.evaluation.search import build_faiss_index, iter_cost_blocks

__all__ = ["JUNK_PID", "ReIDResult", "evaluate_reid"]

ArrayLike = Tensor | np.ndarray

#: Person id of junk gallery items (Market-1501's bad detections and body parts).
JUNK_PID = -1


@dataclass
class ReIDResult:
    """Metrics of one evaluation.

    Attributes:
        cmc: ``(max_rank,)`` float64 array; ``cmc[k - 1]`` is CMC(k).
        mAP: mean average precision over counted queries.
        mINP: mean inverse negative penalty over counted queries.
        n_query: number of query items given.
        n_gallery: number of gallery items given (junk included).
        n_skipped: queries without a correct match in another camera (not counted).
        metric: ``"cosine"`` or ``"euclidean"``.
        approximate: True when an approximate FAISS index was used (metrics truncated at
            ``k`` retrieved items); False for the exact protocol.
        index: the FAISS index string, or ``None`` for the exact torch path.
        n_junk: gallery items with person id ``-1`` that were ignored (0 when junk is kept
            as negatives).
        extra: free-form additions (``{"rerank": {"k1", "k2", "lambda"}}`` when re-ranked,
            ``{"k": k}`` for an approximate index).
    """

    cmc: np.ndarray
    mAP: float  # noqa: N815 - the field's name
    mINP: float  # noqa: N815 - the field's name
    n_query: int
    n_gallery: int
    n_skipped: int
    metric: str
    approximate: bool = False
    index: str | None = None
    n_junk: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def rank(self, k: int) -> float:
        """CMC(k) (1-based); ``nan`` when ``k`` exceeds the computed curve."""
        return float(self.cmc[k - 1]) if 1 <= k <= len(self.cmc) else float("nan")

    @property
    def rank1(self) -> float:
        """CMC(1)."""
        return self.rank(1)

    @property
    def rank5(self) -> float:
        """CMC(5)."""
        return self.rank(5)

    @property
    def rank10(self) -> float:
        """CMC(10)."""
        return self.rank(10)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: rank1, rank5, rank10, mAP, mINP, counts, metric, approximate."""
        out: dict[str, Any] = {
            "rank1": self.rank1,
            "rank5": self.rank5,
            "rank10": self.rank10,
            "mAP": self.mAP,
            "mINP": self.mINP,
            "n_query": self.n_query,
            "n_gallery": self.n_gallery,
            "n_skipped": self.n_skipped,
            "n_junk": self.n_junk,
            "metric": self.metric,
            "approximate": self.approximate,
        }
        if self.index is not None:
            out["index"] = self.index
        out.update(self.extra)
        return out


def _as_tensor(x: ArrayLike, name: str, dtype: torch.dtype | None = None) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if dtype is not None:
        t = t.to(dtype)
    return t


def _check_lengths(feats: Tensor, pids: Tensor, camids: Tensor, side: str) -> None:
    if pids.ndim != 1 or camids.ndim != 1:
        raise ValueError(f"{side} person ids and camera ids must be 1-D")
    if not (feats.shape[0] == pids.shape[0] == camids.shape[0]):
        raise ValueError(
            f"{side}: {feats.shape[0]} features but {pids.shape[0]} person ids and {camids.shape[0]} camera ids"
        )


def evaluate_reid(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike,
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_camids: ArrayLike,
    gallery_camids: ArrayLike,
    protocol: ReIDProtocol | None = None,
    device: str | torch.device | None = None,
) -> ReIDResult:
    """CMC, mAP and mINP under the standard ReID protocol, with bounded memory.

    Queries are processed in chunks of ``protocol.chunk_size`` rows, so the working memory is
    about ``chunk_size x n_gallery x 5`` bytes (the float32 block and a mask) plus at most
    ~200 MB of selected items, whatever the number of queries. For cosine with the torch
    backend the gallery is not copied (each block is scaled by the inverse gallery norms
    instead). Ties in distance are broken by gallery index (stable), AP is accumulated in
    float64. Junk gallery items (person id ``-1``) rank nowhere unless the protocol says
    otherwise (:attr:`ReIDProtocol.ignore_junk`; the gallery is then copied without them).

    Args:
        query_feats: ``(Q, D)`` query features.
        gallery_feats: ``(G, D)`` gallery features.
        query_pids: ``(Q,)`` int person ids.
        gallery_pids: ``(G,)`` int person ids (id 0, distractors, are ordinary negatives).
        query_camids: ``(Q,)`` int camera ids.
        gallery_camids: ``(G,)`` int camera ids.
        protocol: the protocol's settings (``None``: :class:`ReIDProtocol` defaults).
        device: device of the computation (default: the query features' device; ``"cuda"``
            runs the torch backend on a GPU).

    Returns:
        A :class:`ReIDResult`.

    Raises:
        ValueError: on mismatched lengths, non-finite features, if every query is skipped, or
            when re-ranking more items than its ``max_items``.
    """
    protocol = protocol or ReIDProtocol()
    metric, chunk_size, backend = protocol.metric, protocol.chunk_size, protocol.backend
    reranking = protocol.reranking
    qf = _as_tensor(query_feats, "query_feats")
    gf = _as_tensor(gallery_feats, "gallery_feats")
    q_pids = _as_tensor(query_pids, "query_pids", torch.long).reshape(-1)
    g_pids = _as_tensor(gallery_pids, "gallery_pids", torch.long).reshape(-1)
    q_cams = _as_tensor(query_camids, "query_camids", torch.long).reshape(-1)
    g_cams = _as_tensor(gallery_camids, "gallery_camids", torch.long).reshape(-1)
    _check_lengths(qf, q_pids, q_cams, "query")
    _check_lengths(gf, g_pids, g_cams, "gallery")
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {tuple(qf.shape)} and {tuple(gf.shape)}")
    n_gallery = int(gf.shape[0])
    gf, g_pids, g_cams, n_junk = _drop_junk(gf, g_pids, g_cams) if protocol.ignore_junk else (gf, g_pids, g_cams, 0)
    if gf.shape[0] == 0:
        raise ValueError(
            "the gallery is empty" + (f" once its {n_junk} junk items (id -1) are ignored" if n_junk else "")
        )
    if reranking is not None:
        reranking.check_size(int(qf.shape[0]), int(gf.shape[0]))
    dev = torch.device(device) if device is not None else qf.device
    qf = prepare_features(qf.to(dev), metric)
    g_inv = None
    if backend == "torch" and metric == "cosine" and reranking is None:
        # No normalised copy of the (large) gallery: each block is scaled by 1 / |g| instead.
        gf = gf.to(dev).float()
        g_inv = check_finite(gf).clamp_min(1e-12).reciprocal()
    else:
        gf = prepare_features(gf.to(dev), metric)
    q_pids, g_pids, q_cams, g_cams = (t.to(dev) for t in (q_pids, g_pids, q_cams, g_cams))
    same_pid = SamePidIndex(g_pids)

    approximate = protocol.approximate
    if approximate:
        stats = _approximate_stats(qf, gf, q_pids, g_pids, q_cams, g_cams, protocol, same_pid)
    else:
        parts: list[QueryStats] = []
        if reranking is None:
            blocks = iter_cost_blocks(qf, gf, metric, chunk_size, backend, g_inv)
        else:
            blocks = rerank_blocks(qf, gf, reranking, chunk_size)
        for start, cost in blocks:
            end = start + cost.shape[0]
            parts.append(query_stats(cost, q_pids[start:end], q_cams[start:end], g_pids, g_cams, same_pid))
            del cost
        stats = _cat_stats(parts, dev)
    cmc, m_ap, m_inp, n_valid = summarize(stats, protocol.max_rank)
    return ReIDResult(
        cmc=cmc.numpy(),
        mAP=m_ap,
        mINP=m_inp,
        n_query=int(qf.shape[0]),
        n_gallery=n_gallery,
        n_skipped=int(qf.shape[0]) - n_valid,
        metric=metric,
        approximate=approximate,
        index=protocol.index if backend == "faiss" else None,
        n_junk=n_junk,
        extra={"k": protocol.k} if approximate else ({"rerank": reranking.to_dict()} if reranking else {}),
    )


def _drop_junk(feats: Tensor, pids: Tensor, camids: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """The gallery without its junk items (person id :data:`JUNK_PID`), in the same order.

    Returns:
        ``(feats, pids, camids, n_junk)``; the inputs themselves when there is no junk.
    """
    keep = pids != JUNK_PID
    n_junk = int(keep.numel() - keep.sum())
    if n_junk == 0:
        return feats, pids, camids, 0
    return feats[keep], pids[keep], camids[keep], n_junk


def _cat_stats(parts: list[QueryStats], device: torch.device) -> QueryStats:
    if not parts:
        empty = torch.zeros(0, device=device)
        return QueryStats(empty.long(), empty.double(), empty.double(), empty.bool())
    return QueryStats(*(torch.cat(list(x)) for x in zip(*parts, strict=True)))


def _approximate_stats(
    qf: Tensor,
    gf: Tensor,
    q_pids: Tensor,
    g_pids: Tensor,
    q_cams: Tensor,
    g_cams: Tensor,
    protocol: ReIDProtocol,
    same_pid: SamePidIndex,
) -> QueryStats:
    """Per-query stats from the top ``k`` of an (approximate) FAISS index.

    A correct match that is not retrieved contributes precision 0 to AP (AP truncated at
    ``k``, with all correct matches in the denominator); INP is 0 unless every correct match
    was retrieved; a query with no retrieved match has first rank ``G + 1`` (a CMC miss).
    """
    ng = gf.shape[0]
    k, chunk_size = min(protocol.k, ng), protocol.chunk_size
    faiss_index = build_faiss_index(gf, protocol.metric, protocol.index, nprobe=protocol.nprobe)
    parts: list[QueryStats] = []
    for start in range(0, qf.shape[0], chunk_size):
        xq = np.ascontiguousarray(qf[start : start + chunk_size].cpu().numpy(), np.float32)
        _, labels = faiss_index.search(xq, k)
        lab = torch.from_numpy(labels).to(qf.device)
        qp, qc = q_pids[start : start + len(xq)], q_cams[start : start + len(xq)]
        found = lab >= 0
        lab0 = lab.clamp_min(0)
        same = found & (g_pids[lab0] == qp.unsqueeze(1))
        junk = same & (g_cams[lab0] == qc.unsqueeze(1))
        kept = found & ~junk
        hit = same & ~junk
        rank = kept.long().cumsum(1).double()  # 1-based rank among kept items
        idx, mask = same_pid.lookup(qp)
        n_pos = (mask & (g_cams[idx] != qc.unsqueeze(1))).sum(1)
        valid = n_pos > 0
        n_hit_cum = hit.long().cumsum(1).double()
        prec = torch.where(hit, n_hit_cum / rank, torch.zeros_like(rank))
        ap = prec.sum(1) / n_pos.double().clamp_min(1)
        n_hit = hit.sum(1)
        big = torch.full_like(rank, float(ng + 1))
        first = torch.where(hit, rank, big).min(1).values.long()
        last = torch.where(hit, rank, torch.zeros_like(rank)).max(1).values
        inp = torch.where((n_hit == n_pos) & valid, n_pos.double() / last.clamp_min(1), torch.zeros_like(last))
        zeros = torch.zeros_like(ap)
        parts.append(
            QueryStats(
                torch.where(valid, first, torch.zeros_like(first)),
                torch.where(valid, ap, zeros),
                torch.where(valid, inp, zeros),
                valid,
            )
        )
    return _cat_stats(parts, qf.device)
