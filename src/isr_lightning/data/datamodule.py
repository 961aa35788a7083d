"""``VideoPairDataModule``: the LightningDataModule of frame pairs from video corpora."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule

from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.loader import VideoPairLoader
from isr_lightning.data.sharding import sampling_seed
from isr_lightning.data.shards import is_shard_folder
from isr_lightning.data.sources import Clip, check_root, discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform
from isr_lightning.data.video import DEFAULT_VIDEO_BACKEND
from isr_lightning.storage import DEFAULT_CACHE_GB

__all__ = ["VideoPairDataModule"]

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists: what a checkpoint loaded with ``weights_only`` holds."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class VideoPairDataModule(LightningDataModule):
    """Frame pairs ``(t, t + delta)`` with all their person crops, streamed from a corpus.

    ``root`` is a folder (videos with MOT sidecars ``NAME.txt``/``NAME.det.txt``/
    ``NAME.gt.txt``, and/or MOTChallenge sequence folders), a single video, or a manifest
    (``.csv``/``.jsonl``, local or any fsspec URL). See ``docs/data.md``. A crop-shard folder
    written by ``isr-lightning extract`` (recognised by its ``isr-crops.json``; local or a
    URL such as ``s3://bucket/prefix``) trains from its stored crops instead of decoding
    videos, with the same sampling.

    An epoch is ``batches_per_epoch`` batches on every rank (the stream has no natural end);
    size training with ``Trainer(max_steps=..., limit_train_batches=...,
    val_check_interval=...)``. Batches are :class:`~isr_lightning.batch.FramePairBatch`.

    Each option is declared once, where it acts: crops by :class:`CropTransform`, pair
    sampling by :class:`PairSampling`, boxes by :class:`BoxSelection`. In a config file::

        data:
          class_path: isr_lightning.data.VideoPairDataModule
          init_args:
            root: /data/videos
            sampling: {delta_seconds: [0.5, 3.0], max_crops_per_pair: 32}

    Args:
        root: corpus location (required; ``None`` is accepted only so that a recipe can leave
            it to ``--data.root``, and raises :class:`~isr_lightning.data.sources.DataRootError`).
        batch_size: frame pairs per batch (per rank).
        batches_per_epoch: batches per rank per epoch.
        transform: augmentation and normalisation (``None``: defaults); its crop size is the
            model's ``image_size``, read when training starts (a different size stated here is
            an error naming both).
        sampling: ``delta`` range, pairing, crop caps, visits (``None``: defaults).
        boxes: box source, score and size thresholds, ground-truth classes and id matching
            (``None``: defaults).
        use_gt: read ground-truth files when present (track ids for diagnostics).
        num_workers: dataloader workers per rank.
        decode_threads: decoder threads per worker.
        video_backend: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"`` (see ``docs/benchmarks.md``).
        seed: sampling seed (clip order and draws are a function of seed, epoch, rank, batch);
            ``None`` (default): the seed of ``seed_everything`` (LightningCLI's
            ``--seed_everything``), read when the data is set up, else 0. A second seed of a run
            is then a second draw of the data too, not only of the model.
        pin_memory: pin batches.
        cache_dir: where the chunks of a shard folder on object storage are copied, shared by
            the processes of a machine (``None``: ``$ISR_LIGHTNING_CACHE/store``, else
            ``~/.cache/isr-lightning/store``).
        cache_gb: the size that copy is kept under (least recently used chunks are deleted).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        batch_size: int = 8,
        batches_per_epoch: int = 1000,
        transform: CropTransform | None = None,
        sampling: PairSampling | None = None,
        boxes: BoxSelection | None = None,
        use_gt: bool = True,
        num_workers: int = 2,
        decode_threads: int = 1,
        video_backend: str = DEFAULT_VIDEO_BACKEND,
        seed: int | None = None,
        pin_memory: bool = False,
        cache_dir: str | None = None,
        cache_gb: float = DEFAULT_CACHE_GB,
    ) -> None:
        if root is None:
            check_root(root)
        super().__init__()
        self.transform = transform or CropTransform()
        self.sampling = sampling or PairSampling()
        self.boxes = boxes or BoxSelection()
        self.save_hyperparameters(ignore=["transform", "sampling", "boxes"])
        # plain types only: checkpoints are loaded with weights_only=True
        self.hparams["root"] = str(root)
        for name in ("transform", "sampling", "boxes"):
            self.hparams[name] = _plain(asdict(getattr(self, name)))
        self.root = str(root)
        self.clips: list[Clip] = []
        self.stream: VideoPairStream | None = None
        self._loader: VideoPairLoader | None = None
        self._pending_state: dict[str, Any] | None = None

    @property
    def seed(self) -> int:
        """The sampling seed (:func:`~isr_lightning.data.sharding.sampling_seed` of ``seed``)."""
        return sampling_seed(self.hparams.seed)

    def setup(self, stage: str | None = None) -> None:
        """Discover the corpus; fail with the path named when it is unusable."""
        if self.stream is not None:
            return
        h = self.hparams
        self.transform = self.transform.for_model(self.trainer.lightning_module if self.trainer else None)
        self.stream = self.build_stream(
            batch_size=h.batch_size,
            batches_per_epoch=h.batches_per_epoch,
            sampling=self.sampling,
            boxes=self.boxes,
            seed=self.seed,
        )
        self.clips = self.stream.clips
        streams = self._world_size() * max(1, h.num_workers) * self.stream.clips_per_batch
        windows = sum(len(w) for w in self.stream.windows)
        if windows < streams:
            log.warning(
                "%d windows of %d frames for %d streams (ranks x workers x clips_per_batch): streams share windows",
                windows,
                self.sampling.pairs_per_visit,
                streams,
            )

    def build_stream(self, **options: Any) -> VideoPairStream:
        """The frame-pair stream of ``root``: the one place the source of the crops is chosen.

        A folder written by ``isr-lightning extract`` gives its stored crops, anything else
        is a video corpus decoded as training goes. Override it for another source of crops
        (a :class:`~isr_lightning.data.crop_source.CropSource` handed to
        :class:`VideoPairStream` as ``crops``; docs/extending.md).

        Args:
            **options: the stream's sampling options (``batch_size``, ``batches_per_epoch``,
                ``sampling``, ``boxes``, ``seed``), the same for every source.
        """
        if is_shard_folder(self.root):
            h = self.hparams
            stream = VideoPairStream.from_shards(
                self.root, self.transform, cache_dir=h.cache_dir, cache_gb=h.cache_gb, **options
            )
            log.info("crop shards %s: %d clips", self.root, len(stream.clips))
            return stream
        clips = discover_clips(self.root, use_gt=self.hparams.use_gt)
        log.info("video corpus %s: %d clips", self.root, len(clips))
        return VideoPairStream(
            clips,
            self.transform,
            decode_threads=self.hparams.decode_threads,
            video_backend=self.hparams.video_backend,
            **options,
        )

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
            seed=self.seed,
            num_workers=h.num_workers,
            world_size=self._world_size(),
            batches_per_epoch=h.batches_per_epoch,
        )
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at the saved position (applied to the next training loader)."""
        h = self.hparams
        current = {"seed": self.seed, "num_workers": h.num_workers, "batches_per_epoch": h.batches_per_epoch}
        for key, value in current.items():
            if key in state_dict and state_dict[key] != value:
                log.warning(
                    "resuming with %s=%s (saved %s): batches after the resume point differ from the interrupted run",
                    key,
                    value,
                    state_dict[key],
                )
        self._pending_state = {
            "epoch": int(state_dict["epoch"]),
            "batches_consumed": int(state_dict["batches_consumed"]),
        }
        if self._loader is not None:
            self._loader.resume(**self._pending_state)
            self._pending_state = None
