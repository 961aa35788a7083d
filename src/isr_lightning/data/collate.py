"""Frame-pair samples and their collation into :class:`~isr_lightning.batch.FramePairBatch`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from isr_lightning.batch import FramePairBatch

__all__ = ["FramePairSample", "collate_frame_pairs"]


@dataclass
class FramePairSample:
    """The crops of one frame pair.

    Attributes:
        crops: ``((Ka, 3, H, W), (Kb, 3, H, W))`` crops of frame ``t`` and ``t + delta``
            (in instance mode, two augmented views of the same ``Ka == Kb`` crops).
        boxes: ``((Ka, 4), (Kb, 4))`` float ``(x1, y1, x2, y2)`` boxes in frame pixels.
        track_ids: ``((Ka,), (Kb,))`` long ground-truth ids, ``-1`` when unknown.
        clip_index: index of the clip in the corpus.
        frame_ids: the two MOT frame numbers (1-based).
        video_index: index of the clip's video in the corpus (clips cut from one video share it).
    """

    crops: tuple[Tensor, Tensor]
    boxes: tuple[Tensor, Tensor]
    track_ids: tuple[Tensor, Tensor]
    clip_index: int
    frame_ids: tuple[int, int]
    video_index: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def num_crops(self) -> int:
        """``Ka + Kb``."""
        return int(self.crops[0].shape[0] + self.crops[1].shape[0])


def collate_frame_pairs(
    samples: Sequence[FramePairSample],
    max_crops_per_batch: int | None = None,
    skipped: Mapping[str, int] | None = None,
) -> FramePairBatch:
    """Flatten frame pairs with different crop counts into one batch.

    Crops are ordered pair by pair, side 0 before side 1. Pairs that would push the total
    past ``max_crops_per_batch`` are dropped (counted as ``crop_cap`` in ``skipped``); the
    first pair is always kept.

    Args:
        samples: ``P`` frame pairs.
        max_crops_per_batch: cap on ``N``; ``None`` for no cap.
        skipped: skip counts to report with the batch (added to the samples' own).

    Returns:
        A :class:`FramePairBatch` with ``crops (N, 3, H, W)``, ``pair_index (N,)``,
        ``frame_side (N,)``, ``track_ids (N,)``, ``boxes (N, 4)``, ``clip_index (P,)``,
        ``video_index (P,)``, ``frame_ids (P, 2)`` and ``skipped``.
    """
    counts: Counter[str] = Counter(skipped or {})
    kept: list[FramePairSample] = []
    total = 0
    for s in samples:
        counts.update(s.skipped)
        if kept and max_crops_per_batch is not None and total + s.num_crops > max_crops_per_batch:
            counts["crop_cap"] += 1
            continue
        kept.append(s)
        total += s.num_crops
    crops, pair_index, side, tids, boxes = [], [], [], [], []
    for p, s in enumerate(kept):
        for k in (0, 1):
            n = s.crops[k].shape[0]
            crops.append(s.crops[k])
            pair_index.append(torch.full((n,), p, dtype=torch.long))
            side.append(torch.full((n,), k, dtype=torch.long))
            tids.append(s.track_ids[k].long())
            boxes.append(s.boxes[k].float())
    if not kept:
        raise ValueError("collate_frame_pairs needs at least one sample")
    return FramePairBatch(
        crops=torch.cat(crops),
        pair_index=torch.cat(pair_index),
        frame_side=torch.cat(side),
        track_ids=torch.cat(tids),
        boxes=torch.cat(boxes).reshape(-1, 4),
        clip_index=torch.tensor([s.clip_index for s in kept], dtype=torch.long),
        video_index=torch.tensor([s.video_index for s in kept], dtype=torch.long),
        frame_ids=torch.tensor([list(s.frame_ids) for s in kept], dtype=torch.long).reshape(-1, 2),
        skipped={k: int(v) for k, v in counts.items() if v},
    )
