"""Reading ReID batches and embedding them: what the callback and ``evaluate`` share.

Kept apart from :mod:`~isr_lightning.evaluation.callback` so that the commands do not import
Lightning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["embed_batch", "split_batch"]


def split_batch(batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``(images, pids, camids, indexes or None)`` from a dict or tuple batch.

    Dict batches use the keys ``image``, ``pid``, ``camid`` and optionally ``index`` (what
    :class:`~isr_lightning.evaluation.ReIDImageDataset` yields); tuples are
    ``(images, pids, camids[, indexes])``.
    """
    if isinstance(batch, dict):
        return batch["image"], batch["pid"], batch["camid"], batch.get("index")
    if isinstance(batch, (tuple, list)) and len(batch) in (3, 4):
        return batch[0], batch[1], batch[2], (batch[3] if len(batch) == 4 else None)
    raise TypeError(
        "ReID batches must be dicts with keys image, pid, camid[, index] or tuples "
        f"(images, pids, camids[, indexes]); got {type(batch).__name__}"
    )


@torch.no_grad()
def embed_batch(model: Any, images: Tensor, flip: bool = False) -> Tensor:
    """Embeddings of a batch, optionally averaged with the horizontally flipped images.

    Args:
        model: any object with ``embed(images (B, 3, H, W)) -> (B, D)``.
        images: ``(B, 3, H, W)`` normalised images.
        flip: add the embedding of the flipped images (test-time flip averaging); the mean is
            returned (renormalised by the cosine metric downstream).

    Returns:
        ``(B, D)`` float embeddings.
    """
    emb = model.embed(images).float()
    if flip:
        emb = (emb + model.embed(torch.flip(images, dims=[3])).float()) / 2
    return emb
