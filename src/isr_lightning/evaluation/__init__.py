"""ReID evaluation: exact protocol, chunked and memory-bounded, FAISS-backed, for Lightning.

Public API (imported lazily, so ``evaluate_reid`` does not pull in Lightning):

* :class:`ReIDProtocol`: the protocol's settings (metric, CMC length, junk, re-ranking, chunks,
  backend), declared once and taken by everything below.
* :func:`evaluate_reid` / :class:`ReIDResult`: evaluate query and gallery features.
* :class:`ReIDMetric`: the same as a DDP-correct :class:`torchmetrics.Metric`.
* :class:`KReciprocal`: k-reciprocal re-ranking settings (``ReIDProtocol(rerank=...)``).
* :class:`ReIDEvaluationCallback`: evaluate during ``validate``/``fit`` and log the results.
* :func:`load_reid_dataset` (Market-1501, MSMT17, CUHK03-NP, Market-layout folders),
  :class:`ReIDImageDataset`, :func:`eval_transform`.
* :mod:`~isr_lightning.evaluation.functional`: the per-block math.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isr_lightning._lazy import lazy_exports

_EXPORTS = {
    "ReIDBenchmarkEvaluation": "callback",
    "ReIDEvaluationCallback": "callback",
    "DATASETS": "datasets",
    "ReIDImageDataset": "datasets",
    "ReIDItem": "datasets",
    "ReIDSplit": "datasets",
    "eval_transform": "datasets",
    "load_cuhk03_np": "datasets",
    "load_market1501": "datasets",
    "load_market_layout": "datasets",
    "load_msmt17": "datasets",
    "load_reid_dataset": "datasets",
    "ReIDResult": "engine",
    "evaluate_reid": "engine",
    "ReIDMetric": "metric",
    "ReIDProtocol": "protocol",
    "KReciprocal": "rerank",
    "build_faiss_index": "search",
    "faiss_gpu_available": "search",
    "ranked_lists": "visualize",
    "render_ranked_lists": "visualize",
}

__all__ = [
    "DATASETS",
    "KReciprocal",
    "ReIDBenchmarkEvaluation",
    "ReIDEvaluationCallback",
    "ReIDImageDataset",
    "ReIDItem",
    "ReIDMetric",
    "ReIDProtocol",
    "ReIDResult",
    "ReIDSplit",
    "build_faiss_index",
    "eval_transform",
    "evaluate_reid",
    "faiss_gpu_available",
    "load_cuhk03_np",
    "load_market1501",
    "load_market_layout",
    "load_msmt17",
    "load_reid_dataset",
    "ranked_lists",
    "render_ranked_lists",
]

if TYPE_CHECKING:
    from isr_lightning.evaluation.callback import ReIDBenchmarkEvaluation, ReIDEvaluationCallback
    from isr_lightning.evaluation.datasets import (
        DATASETS,
        ReIDImageDataset,
        ReIDItem,
        ReIDSplit,
        eval_transform,
        load_cuhk03_np,
        load_market1501,
        load_market_layout,
        load_msmt17,
        load_reid_dataset,
    )
    from isr_lightning.evaluation.engine import ReIDResult, evaluate_reid
    from isr_lightning.evaluation.metric import ReIDMetric
    from isr_lightning.evaluation.protocol import ReIDProtocol
    from isr_lightning.evaluation.rerank import KReciprocal
    from isr_lightning.evaluation.search import build_faiss_index, faiss_gpu_available
    from isr_lightning.evaluation.visualize import ranked_lists, render_ranked_lists


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
