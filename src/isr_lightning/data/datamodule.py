"""``VideoPairDataModule``: the LightningDataModule of frame pairs from video corpora."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule

from isr_lightning.data.loader import VideoPairLoader
from isr_lightning.data.shards import ShardIndex, is_shard_folder
from isr_lightning.data.sources import Clip, check_root, discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD, CropTransform

__all__ = ["VideoPairDataModule"]

log = logging.getLogger(__name__)


class VideoPairDataModule(LightningDataModule):
    """Frame pairs ``(t, t + delta)`` with all their person crops, streamed from a corpus.

    ``root`` is a folder (videos with MOT sidecars ``NAME.txt``/``NAME.det.txt``/
    ``NAME.gt.txt``, and/or MOTChallenge sequence folders), a single video, or a manifest
    (``.csv``/``.jsonl``, local or any fsspec URL). See ``docs/data.md``. A crop-shard folder
    written by ``isr-lightning extract`` (recognised by its ``isr-crops.json``) trains from
    its stored crops instead of decoding videos, with the same sampling.

    An epoch is ``batches_per_epoch`` batches on every rank (the stream has no natural end);
    size training with ``Trainer(max_steps=..., limit_train_batches=...,
    val_check_interval=...)``. Batches are :class:`~isr_lightning.batch.FramePairBatch`.

    Args:
        root: corpus location (required; ``None`` is accepted only so that a recipe can leave
            it to ``--data.root``, and raises :class:`~isr_lightning.data.sources.DataRootError`).
        image_size: crop size ``(H, W)``: 256x128 (ReID), 224x224 (Swin recipe).
        batch_size: frame pairs per batch (per rank).
        batches_per_epoch: batches per rank per epoch.
        delta_frames: inclusive ``delta`` range in frames.
        delta_seconds: inclusive ``delta`` range in seconds; overrides ``delta_frames``.
        pairing: ``"temporal"`` (ISR) or ``"instance"`` (two views of one crop, the
            MoCo/SimCLR baseline).
        clips_per_batch: distinct clips per batch (default ``batch_size``).
        pairs_per_visit: frame pairs drawn from a clip each time a worker opens it, one per
            batch for that many consecutive batches (frames decoded in one pass; see
            :class:`~isr_lightning.data.stream.VideoPairStream`).
        box_source: ``"detections"`` or ``"gt"`` (train on ground-truth boxes).
        score_threshold: minimum detection score (``None``: keep all).
        min_box_size: minimum box width/height in pixels (after clipping to the frame).
        min_crops_per_frame: frames with fewer boxes are not sampled.
        max_crops_per_pair: cap on crops per frame pair (half per frame).
        max_crops_per_batch: cap on crops per batch.
        use_gt: read ground-truth files when present (track ids for diagnostics).
        gt_classes: classes kept from ground truth (MOT17: 1 pedestrian, 2 person on a
            vehicle, 7 static person); ``None`` keeps all.
        min_visibility: minimum ground-truth visibility.
        gt_iou: IoU needed for a detection to inherit a ground-truth id.
        augment: apply the ReID augmentation.
        flip_p: horizontal flip probability.
        pad: padding before random crop, pixels.
        color_jitter: brightness/contrast/saturation jitter strength.
        erase_p: random-erasing probability.
        mean: normalisation mean.
        std: normalisation std.
        num_workers: dataloader workers per rank.
        decode_threads: decoder threads per worker.
        video_backend: ``"decord"`` or ``"pyav"`` (see ``docs/benchmarks.md``).
        seed: sampling seed (clip order and draws are a function of seed, epoch, rank, batch).
        pin_memory: pin batches.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        image_size: tuple[int, int] = (256, 128),
        batch_size: int = 8,
        batches_per_epoch: int = 1000,
        delta_frames: tuple[int, int] = (1, 30),
        delta_seconds: tuple[float, float] | None = None,
        pairing: str = "temporal",
        clips_per_batch: int | None = None,
        pairs_per_visit: int = 8,
        box_source: str = "detections",
        score_threshold: float | None = None,
        min_box_size: float = 8.0,
        min_crops_per_frame: int = 2,
        max_crops_per_pair: int | None = 64,
        max_crops_per_batch: int | None = None,
        use_gt: bool = True,
        gt_classes: Sequence[int] | None = (1, 2, 7),
        min_visibility: float = 0.0,
        gt_iou: float = 0.5,
        augment: bool = True,
        flip_p: float = 0.5,
        pad: int = 10,
        color_jitter: float = 0.2,
        erase_p: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        num_workers: int = 2,
        decode_threads: int = 1,
        video_backend: str = "decord",
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if root is None:
            check_root(root)
        super().__init__()
        self.save_hyperparameters()
        # plain types only: checkpoints are loaded with weights_only=True
        self.hparams["root"] = str(root)
        self.hparams["image_size"] = tuple(int(v) for v in image_size)
        self.hparams["mean"], self.hparams["std"] = tuple(mean), tuple(std)
        if gt_classes is not None:
            self.hparams["gt_classes"] = tuple(int(c) for c in gt_classes)
        if pairing not in ("temporal", "instance"):
            raise ValueError(f"pairing must be 'temporal' or 'instance', got {pairing!r}")
        self.root = str(root)
        self.clips: list[Clip] = []
        self.stream: VideoPairStream | None = None
        self._loader: VideoPairLoader | None = None
        self._pending_state: dict[str, Any] | None = None

    @property
    def transform(self) -> CropTransform:
        """The training crop transform built from the options."""
        h = self.hparams
        return CropTransform(
            image_size=tuple(h.image_size),
            mean=tuple(h.mean),
            std=tuple(h.std),
            train=h.augment,
            flip_p=h.flip_p,
            pad=h.pad,
            color_jitter=h.color_jitter,
            erase_p=h.erase_p,
        )

    def setup(self, stage: str | None = None) -> None:
        """Discover the corpus; fail with the path named when it is unusable."""
        if self.stream is not None:
            return
        h = self.hparams
        shards = self.root if is_shard_folder(self.root) else None
        if shards is not None:
            self.clips = ShardIndex.read(shards).clip_list()
            log.info("crop shards %s: %d clips", self.root, len(self.clips))
        else:
            self.clips = discover_clips(self.root, use_gt=h.use_gt)
            log.info("video corpus %s: %d clips", self.root, len(self.clips))
        self.stream = VideoPairStream(
            self.clips,
            self.transform,
            batch_size=h.batch_size,
            batches_per_epoch=h.batches_per_epoch,
            delta_frames=tuple(h.delta_frames),
            delta_seconds=None if h.delta_seconds is None else tuple(h.delta_seconds),
            pairing=h.pairing,
            clips_per_batch=h.clips_per_batch,
            pairs_per_visit=h.pairs_per_visit,
            box_source=h.box_source,
            score_threshold=h.score_threshold,
            min_box_size=h.min_box_size,
            min_crops_per_frame=h.min_crops_per_frame,
            max_crops_per_pair=h.max_crops_per_pair,
            max_crops_per_batch=h.max_crops_per_batch,
            gt_classes=h.gt_classes,
            min_visibility=h.min_visibility,
            gt_iou=h.gt_iou,
            seed=h.seed,
            decode_threads=h.decode_threads,
            video_backend=h.video_backend,
            shards=shards,
        )
        num_shards = self._world_size() * max(1, h.num_workers)
        if len(self.clips) < num_shards:
            log.warning("%d clips for %d shards (ranks x workers): shards share clips", len(self.clips), num_shards)

    def train_dataloader(self) -> VideoPairLoader:
        """The training loader (one per call; keeps the resume position)."""
        if self.stream is None:
            self.setup("fit")
        assert self.stream is not None
        trainer = self.trainer
        epoch_fn = (lambda: trainer.current_epoch) if trainer is not None else None
        h = self.hparams
        self._loader = VideoPairLoader(
            self.stream, num_workers=h.num_workers, epoch_fn=epoch_fn, pin_memory=h.pin_memory
        )
        self._loader.consumed_fn = self._consumed
        if self._pending_state is not None:
            self._loader.resume(self._pending_state["epoch"], self._pending_state["batches_consumed"])
            self._pending_state = None
        return self._loader

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _consumed(self, counted: int) -> int:
        # Lightning fetches one batch ahead: count what the training loop has processed.
        trainer = self.trainer
        if trainer is not None and trainer.training:
            try:
                return min(counted, int(trainer.fit_loop.epoch_loop.batch_progress.current.processed))
            except AttributeError:
                pass
        return counted

    def state_dict(self) -> dict[str, Any]:
        """Position in the stream: ``epoch`` and ``batches_consumed`` on this rank."""
        h = self.hparams
        if self._loader is None:
            state = dict(self._pending_state or {"epoch": 0, "batches_consumed": 0})
        else:
            state = self._loader.state_dict()
        state.update(
            seed=h.seed,
            num_workers=h.num_workers,
            world_size=self._world_size(),
            batches_per_epoch=h.batches_per_epoch,
        )
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at the saved position (applied to the next training loader)."""
        h = self.hparams
        for key in ("seed", "num_workers", "batches_per_epoch"):
            if key in state_dict and state_dict[key] != h[key]:
                log.warning(
                    "resuming with %s=%s (saved %s): batches after the resume point differ from the interrupted run",
                    key,
                    h[key],
                    state_dict[key],
                )
        self._pending_state = {
            "epoch": int(state_dict["epoch"]),
            "batches_consumed": int(state_dict["batches_consumed"]),
        }
        if self._loader is not None:
            self._loader.resume(**self._pending_state)
            self._pending_state = None
