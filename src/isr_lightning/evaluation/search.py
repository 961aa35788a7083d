"""Similarity search for ReID evaluation: exact cost blocks per query chunk, or a FAISS index.

Two ways to get the query-vs-gallery scores:

* ``backend="torch"`` (default, exact): one matrix product per query chunk, on the features'
  device (a GPU when the features are on one). This *is* the floor: the metrics only add a
  linear pass over each block.
* ``backend="faiss"`` (exact with the ``"Flat"`` index): a FAISS flat index (on a GPU when
  faiss-gpu and a GPU are present) searched with ``k`` = gallery size per chunk, the results
  scattered back into a block. Exact, but FAISS then fully sorts every row (what the protocol
  does not need), so it is slower than ``"torch"``; it is there to run every index type of
  FAISS through one code path.
* any other FAISS index (``index="IVF1024,Flat"``, ``"HNSW32"``, ...): **approximate**. Only the
  top ``k`` of each query are retrieved, so the metrics are truncated at ``k`` and the result is
  flagged ``approximate=True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from isr_lightning.evaluation.functional import DistanceMetric, cost_block

__all__ = ["Backend", "build_faiss_index", "faiss_gpu_available", "iter_cost_blocks"]

Backend = Literal["torch", "faiss"]


def _faiss():
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError("the FAISS backend needs faiss-cpu or faiss-gpu installed") from err
    return faiss


def faiss_gpu_available() -> bool:
    """Whether the installed FAISS has GPU support and sees at least one GPU."""
    faiss = _faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def build_faiss_index(
    gallery: Tensor,
    metric: DistanceMetric,
    index: str = "Flat",
    use_gpu: bool | None = None,
    nprobe: int | None = None,
):
    """Build (and train) a FAISS index over the gallery.

    Args:
        gallery: ``(G, D)`` float32 features from
            :func:`~isr_lightning.evaluation.functional.prepare_features`.
        metric: ``"cosine"`` (inner product on normalised features) or ``"euclidean"`` (L2).
        index: a :func:`faiss.index_factory` string; ``"Flat"`` is exact.
        use_gpu: move the index to GPU 0; ``None`` does so when faiss-gpu sees a GPU.
        nprobe: inverted lists probed by an IVF index (FAISS default when ``None``).

    Returns:
        The populated index.
    """
    faiss = _faiss()
    xb = np.ascontiguousarray(gallery.detach().cpu().numpy(), dtype=np.float32)
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    idx = faiss.index_factory(xb.shape[1], index, faiss_metric)
    if use_gpu is None:
        use_gpu = faiss_gpu_available()
    if use_gpu:
        idx = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, idx)
    if not idx.is_trained:
        idx.train(xb)
    idx.add(xb)
    if nprobe is not None:
        faiss.ParameterSpace().set_index_parameter(idx, "nprobe", nprobe)
    return idx


def iter_cost_blocks(
    query: Tensor,
    gallery: Tensor,
    metric: DistanceMetric,
    chunk_size: int = 512,
    backend: Backend = "torch",
    gallery_inv_norms: Tensor | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """Exact ranking costs (lower is better), one block of query rows at a time.

    Peak memory is ``chunk_size x G`` costs (plus the metric's per-block work), independent of
    the number of queries.

    Args:
        query: ``(Q, D)`` float32 prepared features.
        gallery: ``(G, D)`` float32 prepared features, on the same device.
        metric: ``"cosine"`` or ``"euclidean"``.
        chunk_size: query rows per block.
        backend: ``"torch"`` (matrix product) or ``"faiss"`` (flat index, full ``k``).
        gallery_inv_norms: cosine with an unnormalised gallery (torch backend): ``(G,)``
            inverse row norms, applied to each block (see
            :func:`~isr_lightning.evaluation.functional.cost_block`).

    Yields:
        ``(start, cost)``: the first query row of the block and its ``(rows, G)`` float32
        costs, on the features' device. With ``backend="torch"`` every block is written into
        the same buffer: a block is overwritten by the next one (copy it to keep it).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if backend == "torch":
        g_sq = gallery.pow(2).sum(1) if metric == "euclidean" else None
        rows = min(chunk_size, query.shape[0])
        buffer = torch.empty(rows * gallery.shape[0], dtype=torch.float32, device=query.device)
        for start in range(0, query.shape[0], chunk_size):
            q = query[start : start + chunk_size]
            out = buffer[: q.shape[0] * gallery.shape[0]].view(q.shape[0], gallery.shape[0])
            yield start, cost_block(q, gallery, metric, g_sq, gallery_inv_norms, out=out)
        return
    if backend != "faiss":
        raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
    faiss = _faiss()
    ng = gallery.shape[0]
    use_gpu = faiss_gpu_available()
    if use_gpu:
        res = faiss.StandardGpuResources()
        xb = np.ascontiguousarray(gallery.detach().cpu().numpy(), dtype=np.float32)
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    else:
        index = build_faiss_index(gallery, metric, "Flat", use_gpu=False)
    for start in range(0, query.shape[0], chunk_size):
        xq = np.ascontiguousarray(query[start : start + chunk_size].detach().cpu().numpy(), dtype=np.float32)
        if use_gpu:
            # GPU flat search caps k at 2048; the all-pairs kernel gives the full block.
            scores = faiss.pairwise_distance_gpu(res, xq, xb, metric=faiss_metric)
        else:
            dist, labels = index.search(xq, ng)
            scores = np.empty_like(dist)
            np.put_along_axis(scores, labels, dist, axis=1)
        block = torch.from_numpy(scores).to(query.device)
        if metric == "cosine":
            block.neg_()  # inner product -> cost
        else:  # squared L2 -> the same cost convention as cost_block (minus |q|^2)
            block.sub_(query[start : start + chunk_size].pow(2).sum(1, keepdim=True))
        yield start, block
