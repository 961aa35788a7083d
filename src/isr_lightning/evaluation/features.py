"""Embed ReID images with a model, and score a benchmark's query and gallery features.

What the ``evaluate`` command, the demo and the benchmark scripts share: any object with
``embed(images (B, 3, H, W)) -> (B, D)`` is a model here (an ``ISRModule``, a
``ReIDFineTuneModule``, a plain wrapper); :func:`embed_split` also reads its ``data_config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from isr_lightning.evaluation.batches import embed_batch, split_batch
from isr_lightning.evaluation.datasets import ReIDImageDataset, ReIDSplit, eval_transform
from isr_lightning.evaluation.engine import evaluate_reid

if TYPE_CHECKING:
    from isr_lightning.progress import Progress

__all__ = ["BENCHMARK_SCORES", "Features", "benchmark_scores", "embed_split", "extract_features"]

BENCHMARK_SCORES = ("rank1", "rank5", "rank10", "mAP", "mINP")
"""The scores :func:`benchmark_scores` returns."""


class Features(NamedTuple):
    """Embeddings of a set of images with their labels, in dataset order.

    Attributes:
        feats: ``(N, D)`` float32 embeddings on the CPU.
        pids: ``(N,)`` person ids.
        camids: ``(N,)`` 0-based camera ids.
    """

    feats: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor


@torch.no_grad()
def extract_features(
    model: Any,
    dataset: Dataset,
    batch_size: int = 128,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    flip: bool = False,
    progress: Progress | None = None,
) -> Features:
    """Embed a dataset with ``model.embed``.

    Args:
        model: any object with ``embed(images (B, 3, H, W)) -> (B, D)``.
        dataset: a :class:`~isr_lightning.evaluation.ReIDImageDataset` (or any dataset whose
            samples :func:`~isr_lightning.evaluation.batches.split_batch` reads).
        batch_size: images per batch.
        num_workers: loader workers.
        device: where the model runs.
        flip: average with the horizontally flipped images.
        progress: counts the embedded images.

    Returns:
        ``(feats (N, D) float32 on CPU, pids (N,), camids (N,))`` in dataset order.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, pids, cams = [], [], []
    for batch in loader:
        images, pid, cam, _ = split_batch(batch)
        feats.append(embed_batch(model, images.to(device), flip).cpu())
        pids.append(torch.as_tensor(pid))
        cams.append(torch.as_tensor(cam))
        if progress is not None:
            progress.advance(done=len(images), work=len(images))
    return Features(torch.cat(feats), torch.cat(pids), torch.cat(cams))


def embed_split(model: Any, split: ReIDSplit, batch_size: int = 128) -> tuple[Features, Features]:
    """Embed the query and gallery images of a benchmark, on the CPU.

    Images are resized and normalised as the model expects (:func:`eval_transform` of its
    ``data_config``).

    Args:
        model: any object with ``data_config`` and ``embed(images (B, 3, H, W)) -> (B, D)``,
            e.g. an ``ISRModule``.
        split: the benchmark.
        batch_size: images per batch.

    Returns:
        ``(query, gallery)`` features, ``(N_q, D)`` and ``(N_g, D)``.
    """
    transform = eval_transform(model.data_config)
    query = extract_features(model, ReIDImageDataset(split.query, transform), batch_size)
    gallery = extract_features(model, ReIDImageDataset(split.gallery, transform), batch_size)
    return query, gallery


def benchmark_scores(query: Features, gallery: Features) -> dict[str, float]:
    """Rank-1/5/10, mAP and mINP under the standard protocol (cosine similarity).

    Args:
        query: ``(N_q, D)`` query features.
        gallery: ``(N_g, D)`` gallery features.

    Returns:
        :data:`BENCHMARK_SCORES` -> value in ``[0, 1]``.
    """
    result = evaluate_reid(query.feats, gallery.feats, query.pids, gallery.pids, query.camids, gallery.camids)
    return {key: float(value) for key, value in result.to_dict().items() if key in BENCHMARK_SCORES}
