"""The batch contract between data modules and :class:`~isr_lightning.ISRModule`.

A training batch holds ``P`` frame pairs (frame ``t`` and frame ``t + delta`` of one clip)
with a variable number of person crops in each frame, flattened into one crop tensor plus
index tensors that say which frame pair and which frame of the pair every crop comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

__all__ = ["FramePairBatch", "frame_pair_groups"]


@dataclass
class FramePairBatch:
    """Crops of ``P`` frame pairs, flattened to ``N`` crops.

    Lightning moves dataclass batches to the device field by field, so this class is the
    batch type of every training data module of the library.

    Attributes:
        crops: ``(N, 3, H, W)`` float images, normalised for the model.
        pair_index: ``(N,)`` long in ``[0, P)``: the frame pair each crop belongs to.
        frame_side: ``(N,)`` long in ``{0, 1}``: 0 for frame ``t``, 1 for frame ``t + delta``.
            In instance-discrimination mode side 1 holds a second augmented view of the side-0
            crops, in the same order.
        track_ids: optional ``(N,)`` long ground-truth identities (``-1`` where unknown, e.g.
            a false-positive detection). Diagnostics only: never used by the loss.
        boxes: optional ``(N, 4)`` float ``(x1, y1, x2, y2)`` boxes in source-frame pixels.
        clip_index: optional ``(P,)`` long index of each pair's clip in the corpus.
        video_index: optional ``(P,)`` long index of each pair's video in the corpus (the same
            on every rank). Clips cut from one video share it: their people may be the same,
            so the loss does not count them as each other's negatives
            (:class:`~isr_lightning.losses.ReliabilityWeightedInfoNCE`).
        frame_ids: optional ``(P, 2)`` long frame numbers of the two frames of each pair.
        skipped: optional counts of items the loader skipped while producing this batch, by
            reason (for example ``{"unreadable_video": 1}``); the module logs running totals.
    """

    crops: Tensor
    pair_index: Tensor
    frame_side: Tensor
    track_ids: Tensor | None = None
    boxes: Tensor | None = None
    clip_index: Tensor | None = None
    video_index: Tensor | None = None
    frame_ids: Tensor | None = None
    skipped: dict[str, int] | None = None

    def __post_init__(self) -> None:
        n = self.crops.shape[0]
        if self.crops.ndim != 4:
            raise ValueError(f"crops must be (N, C, H, W), got shape {tuple(self.crops.shape)}")
        for name in ("pair_index", "frame_side", "track_ids", "boxes"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"{name} has {value.shape[0]} rows but there are {n} crops")

    def crop_sources(self) -> Tensor | None:
        """``(N, 2)`` long ``(video, frame pair)`` of every crop, or ``None`` without ``video_index``."""
        if self.video_index is None:
            return None
        return torch.stack([self.video_index[self.pair_index], self.pair_index], dim=1)

    @property
    def num_crops(self) -> int:
        """Number of crops ``N``."""
        return int(self.crops.shape[0])

    @property
    def num_pairs(self) -> int:
        """Number of frame pairs ``P`` (0 for an empty batch)."""
        return int(self.pair_index.max().item()) + 1 if self.pair_index.numel() else 0

    def __len__(self) -> int:
        return self.num_crops

    def to(self, device: torch.device | str) -> FramePairBatch:
        """Return a copy with every tensor on ``device``."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = value.to(device) if isinstance(value, Tensor) else value
        return FramePairBatch(**values)


def frame_pair_groups(pair_index: Tensor, frame_side: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Split crop indices by frame pair and side.

    Args:
        pair_index: ``(N,)`` long frame-pair index of each crop.
        frame_side: ``(N,)`` long side (0 or 1) of each crop.

    Returns:
        For every frame pair ``p`` in ``0..P-1``, the tuple ``(idx_t, idx_t_delta)`` of crop
        indices (long, ascending) of its two frames. Pairs with no crops give empty tensors.
    """
    order = torch.argsort(pair_index * 2 + frame_side, stable=True)
    keys = (pair_index * 2 + frame_side)[order]
    num_pairs = int(pair_index.max().item()) + 1 if pair_index.numel() else 0
    counts = torch.bincount(keys, minlength=2 * num_pairs).tolist()
    chunks = torch.split(order, counts)
    return [(chunks[2 * p], chunks[2 * p + 1]) for p in range(num_pairs)]
