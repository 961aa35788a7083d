"""Generated frame-pair batches for tests and benchmarks: people as coloured band patterns seen twice.

No video, no decoding: each identity is a fixed random pattern of coloured horizontal bands,
and both frames of a pair show mostly the same people with noise and a small shift. Use it to
test a subclass of :class:`~isr_lightning.ISRModule` in seconds.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from isr_lightning.batch import FramePairBatch


def _person_image(pattern: torch.Tensor, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(3, H, W) image: horizontal bands of the pattern's colours, shifted and noisy."""
    bands = pattern.shape[0]
    rows = (torch.arange(height) * bands // height).clamp(max=bands - 1)
    image = pattern[rows].t()[:, :, None].expand(3, height, width).clone()
    shift = int(torch.randint(-2, 3, (1,), generator=generator))
    image = torch.roll(image, shifts=shift, dims=1)
    return image + 0.3 * torch.randn(image.shape, generator=generator)


def make_frame_pair_batch(
    num_pairs: int,
    crops_per_frame: tuple[int, int] = (2, 5),
    image_size: tuple[int, int] = (32, 16),
    num_identities: int = 40,
    seed: int = 0,
) -> FramePairBatch:
    """A batch of frame pairs; each frame shows a random subset of identities.

    Identity ``k`` has a fixed random band pattern; both frames of a pair share most people,
    with one person possibly leaving and one arriving, like consecutive video frames.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(num_identities, 6, 3, generator=torch.Generator().manual_seed(1234))
    crops, pair_index, frame_side, track_ids = [], [], [], []
    low, high = crops_per_frame
    for p in range(num_pairs):
        n = int(torch.randint(low, high + 1, (1,), generator=generator))
        people = torch.randperm(num_identities, generator=generator)[: n + 1].tolist()
        frames = (people[:n], people[1 : n + 1] if n > 1 and p % 2 else people[:n])
        for side, ids in enumerate(frames):
            for person in ids:
                crops.append(_person_image(patterns[person], *image_size, generator))
                pair_index.append(p)
                frame_side.append(side)
                track_ids.append(person)
    return FramePairBatch(
        crops=torch.stack(crops),
        pair_index=torch.tensor(pair_index),
        frame_side=torch.tensor(frame_side),
        track_ids=torch.tensor(track_ids),
    )


def concat_batches(batches: list[FramePairBatch]) -> FramePairBatch:
    """Concatenate batches into one, renumbering frame pairs."""
    offsets, crops, pair_index, frame_side, track_ids = 0, [], [], [], []
    for batch in batches:
        crops.append(batch.crops)
        pair_index.append(batch.pair_index + offsets)
        frame_side.append(batch.frame_side)
        track_ids.append(batch.track_ids)
        offsets += batch.num_pairs
    return FramePairBatch(
        crops=torch.cat(crops),
        pair_index=torch.cat(pair_index),
        frame_side=torch.cat(frame_side),
        track_ids=torch.cat(track_ids),
    )


class BatchList(Dataset):
    """A map-style dataset whose items are ready-made batches (use ``batch_size=None``)."""

    def __init__(self, batches: list[FramePairBatch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> FramePairBatch:
        return self.batches[index]
