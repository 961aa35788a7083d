"""``ReIDTrainDataModule``: labelled person images for supervised fine-tuning, P x K batches."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lightning.pytorch import LightningDataModule
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from isr_lightning.data import DataRootError
from isr_lightning.data.sharding import sampling_seed
from isr_lightning.data.transforms import CropTransform
from isr_lightning.evaluation.datasets import DATASETS, ReIDImageDataset, ReIDItem, ReIDSplit, load_reid_dataset
from isr_lightning.finetune.sampler import PKSampler
from isr_lightning.storage import default_cache_dir
from isr_lightning.synth.benchmark import BenchmarkConfig

__all__ = ["CropImageTransform", "PKDataLoader", "ReIDTrainDataModule", "relabel"]

log = logging.getLogger(__name__)

ROOT_HINT = (
    "root is a labelled ReID dataset: Market-1501, MSMT17, CUHK03-NP or any folder in Market-1501 layout"
    " (query/, bounding_box_test/, bounding_box_train/); docs/finetune.md"
)
"""What a root may be: appended to the data-root errors."""

_TRAIN_SPLIT_HINT = {
    "market1501": "bounding_box_train/",
    "msmt17": "list_train.txt (and list_val.txt) with train/ or mask_train_v2/",
    "cuhk03-np-detected": "detected/bounding_box_train/",
    "cuhk03-np-labeled": "labeled/bounding_box_train/",
    "folder": "bounding_box_train/",
}


def relabel(items: list[ReIDItem]) -> tuple[list[ReIDItem], list[int]]:
    """Give identities contiguous labels ``0 .. C - 1`` in the order of their person ids.

    Args:
        items: training items with dataset person ids.

    Returns:
        The items with ``pid`` replaced by the label, and the person id of each label.
    """
    pids = sorted({item.pid for item in items})
    label = {pid: i for i, pid in enumerate(pids)}
    return [item._replace(pid=label[item.pid]) for item in items], pids


class CropImageTransform:
    """A :class:`~isr_lightning.data.transforms.CropTransform` applied to one PIL image.

    The training crops of video and of image folders go through the same resize,
    augmentation and normalisation. Augmentation draws from torch's global generator, which
    the DataLoader seeds in each worker.

    Args:
        transform: the crop transform (``train=False``: resize and normalise only).
    """

    def __init__(self, transform: CropTransform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image) -> Tensor:
        """``(3, H, W)`` float32 normalised image."""
        return self.transform([np.array(image.convert("RGB"))])[0]


class PKDataLoader(DataLoader):
    """The training loader, whose position Lightning saves in checkpoints and restores.

    It has ``state_dict``/``load_state_dict`` (Lightning's resumable-loader interface): the state
    is the :class:`~isr_lightning.finetune.sampler.PKSampler`'s. A loader fetches batches ahead
    of the training loop, so while training the position saved is the loop's own count.

    Args:
        *args: :class:`~torch.utils.data.DataLoader` arguments; the sampler is a ``PKSampler``.
        progress: returns ``(epoch, batches processed)`` of the training loop, or ``None``
            outside training (then the sampler's count is used).
        **kwargs: :class:`~torch.utils.data.DataLoader` arguments.
    """

    sampler: PKSampler

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int] | None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        """The sampler's state, with the training loop's position when it runs."""
        state = self.sampler.state_dict()
        position = self.progress() if self.progress is not None else None
        if position is not None:
            state.update(epoch=position[0], batches_done=position[1])
        return state

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue at the saved position (see :meth:`PKSampler.load_state_dict`)."""
        self.sampler.load_state_dict(state)


class ReIDTrainDataModule(LightningDataModule):
    """The training split of a ReID benchmark in P x K batches, and its query/gallery for validation.

    Training items come from the evaluation's dataset readers
    (:func:`~isr_lightning.evaluation.load_reid_dataset`: ``bounding_box_train/`` of Market-1501,
    CUHK03-NP and any Market-layout folder; ``list_train.txt`` + ``list_val.txt`` of MSMT17),
    junk (id ``-1``) dropped, identities relabelled ``0 .. C - 1`` (:attr:`num_classes`).
    Batches are drawn by :class:`~isr_lightning.finetune.sampler.PKSampler` (``P`` identities x
    ``K`` images; under DDP every rank gets the same number of batches and, within a step,
    other identities) and are dicts ``{"image" (B, 3, H, W), "pid" (B,) label, "camid",
    "index"}``. Validation has two loaders, the query (index 0) and the gallery (index 1)
    of the same root, resized and normalised by the same transform without augmentation.

    The training loader's position is saved in checkpoints (:class:`PKDataLoader`): a run resumed
    mid-epoch gets the batches the interrupted run would have got.

    Args:
        root: the dataset folder. ``None`` with ``synthetic``: a folder in the cache
            (``$ISR_LIGHTNING_CACHE``, default ``~/.cache/isr-lightning``) named after the
            configuration.
        dataset: reader: ``market1501``, ``msmt17``, ``cuhk03-np-detected``,
            ``cuhk03-np-labeled`` or ``folder`` (any Market-1501 layout).
        transform: training crop transform (resize to ``image_size``, flip, pad and crop,
            colour jitter, random erasing, normalisation); ``None``: ``CropTransform()``
            (256x128). Its crop size is the model's ``image_size`` (leave it unset; another
            size is an error naming both).
        ids_per_batch: ``P``, identities per batch (per rank).
        images_per_id: ``K``, images per identity.
        synthetic: render ``root`` first (once; cached) with
            :func:`~isr_lightning.synth.generate_benchmark` and this configuration (set its
            ``num_train_identities``), with ``dataset: folder``.
        validate: build the query/gallery loaders.
        eval_batch_size: batch size of the validation loaders.
        num_workers: loader workers (training and validation).
        seed: sampling seed; ``None`` (default): ``seed_everything``'s
            (:func:`~isr_lightning.data.sharding.sampling_seed`).
        pin_memory: pin batches.

    Raises:
        ValueError: an unknown ``dataset``; ``synthetic`` with another dataset than
            ``folder`` or without training identities.
        DataRootError: in :meth:`setup`: no ``root`` (and no ``synthetic``), a root that does
            not exist, cannot be read as ``dataset`` or has no training split; the message says
            what ``root`` may be (the command line prints it as one line).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        dataset: Literal["market1501", "msmt17", "cuhk03-np-detected", "cuhk03-np-labeled", "folder"] = "market1501",
        transform: CropTransform | None = None,
        ids_per_batch: int = 16,
        images_per_id: int = 4,
        synthetic: BenchmarkConfig | None = None,
        validate: bool = True,
        eval_batch_size: int = 128,
        num_workers: int = 4,
        seed: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
        if synthetic is not None and (dataset != "folder" or synthetic.num_train_identities < 1):
            raise ValueError("synthetic data needs dataset='folder' and synthetic.num_train_identities >= 1")
        if root is None and synthetic is not None:
            key = hashlib.sha1(json.dumps(synthetic.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
            root = default_cache_dir() / "finetune" / f"{synthetic.domain}-{key}"
        # a missing root is reported by setup(): an error raised here would reach the command
        # line wrapped in the parser's message, one raised in setup() as one line
        self.root = None if root is None else Path(root).expanduser()
        self.dataset = dataset
        self.transform = transform if transform is not None else CropTransform()
        self.ids_per_batch = ids_per_batch
        self.images_per_id = images_per_id
        self.synthetic = synthetic
        self.validate = validate
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self._seed = seed
        self.pin_memory = pin_memory
        self.split: ReIDSplit | None = None
        self.train_items: list[ReIDItem] = []
        self.label_pids: list[int] = []
        self.sampler: PKSampler | None = None

    @property
    def seed(self) -> int:
        """The sampling seed, read when used (``seed_everything`` may run after construction)."""
        return sampling_seed(self._seed)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the crops (the model's once training starts)."""
        size = self.transform.for_model(self.trainer.lightning_module if self.trainer else None).image_size
        return (int(size[0]), int(size[1]))

    @property
    def num_classes(self) -> int:
        """Number of training identities (after :meth:`setup`)."""
        if self.split is None:
            self.setup("fit")
        return len(self.label_pids)

    def prepare_data(self) -> None:
        """Render the synthetic dataset when asked for (once; later runs reuse it)."""
        if self.synthetic is not None and self.root is not None:
            from isr_lightning.synth import generate_benchmark

            generate_benchmark(self.root, **{**self.synthetic.to_dict(), "preview": False})

    def setup(self, stage: str | None = None) -> None:
        """Read the dataset; fail with the folder named when it has no training split."""
        if self.split is not None:
            return
        if self.root is None:
            raise DataRootError(
                f"the data root is missing (--data.root DIR on the command line, root= in Python): {ROOT_HINT}"
            )
        if self.synthetic is not None and not (self.root / "benchmark.json").is_file():
            self.prepare_data()  # used without a Trainer
        if not self.root.exists():
            raise DataRootError(f"data root not found: {self.root}. {ROOT_HINT}")
        try:
            split = load_reid_dataset(self.dataset, self.root)
        except (FileNotFoundError, ValueError) as error:
            raise DataRootError(f"{error}. {ROOT_HINT}") from error
        if not split.train:
            expected = _TRAIN_SPLIT_HINT[self.dataset]
            raise DataRootError(f"{self.root}: no training images for {self.dataset!r} (expected {expected})")
        self.transform = self.transform.for_model(self.trainer.lightning_module if self.trainer else None)
        self.split = split
        self.train_items, self.label_pids = relabel(self.split.train)
        log.info("%s: %d training images of %d identities", self.split.name, len(self.train_items), self.num_classes)

    def _build_sampler(self) -> PKSampler:
        """The sampler for this rank (the trainer's rank and world size when attached)."""
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = self.sampler
        if sampler is None or (sampler.rank, sampler.num_replicas) != (rank, world_size):
            sampler = PKSampler(
                [item.pid for item in self.train_items],
                self.ids_per_batch,
                self.images_per_id,
                num_replicas=world_size,
                rank=rank,
                seed=self.seed,
            )
        self.sampler = sampler
        return sampler

    def _progress(self) -> tuple[int, int] | None:
        """``(epoch, batches processed in it)`` by the training loop, when it runs."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return None
        return trainer.current_epoch, int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def train_dataloader(self) -> PKDataLoader:
        """P x K batches of augmented crops with contiguous identity labels (``pid``)."""
        self.setup("fit")
        sampler = self._build_sampler()
        return PKDataLoader(
            ReIDImageDataset(self.train_items, CropImageTransform(self.transform)),
            batch_size=sampler.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            progress=self._progress,
        )

    def val_dataloader(self) -> list[DataLoader]:
        """``[query, gallery]`` loaders without augmentation (empty with ``validate=False``)."""
        self.setup("validate")
        if not self.validate:
            return []
        assert self.split is not None
        transform = CropImageTransform(dataclasses.replace(self.transform, train=False))
        return [
            DataLoader(
                ReIDImageDataset(items, transform),
                batch_size=self.eval_batch_size,
                shuffle=False,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
            )
            for items in (self.split.query, self.split.gallery)
        ]
