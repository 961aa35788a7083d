"""Embed an image folder or the person boxes of videos with ``trainer.predict``; write them with names.

Command line (LightningCLI ``predict``; the input size and normalisation come from the model)::

    isr-lightning predict --model.backbone swin_base_patch4_window7_224 --model.image_size [224,224] \
        --model.weights swin_base_patch4_window7_224.pth \
        --data isr_lightning.predict.ImageFolderDataModule --data.root crops/ \
        --trainer.callbacks isr_lightning.predict.EmbeddingWriter --trainer.callbacks.output_path crops.npz \
        --trainer.logger false --return_predictions false

Python::

    model = ISRModule.load_from_checkpoint("model.ckpt")
    loader = DataLoader(ImageFolderDataset("crops/", model.data_config), batch_size=64)
    Trainer(callbacks=[EmbeddingWriter("crops.npz")], logger=False).predict(model, loader, return_predictions=False)
    data = np.load("crops.npz")  # data["embeddings"] (N, D) float32, data["names"] (N,) str

Under DDP every rank embeds its share of the files; the writer gathers them on rank 0, drops the
samples that the distributed sampler repeated to even out the ranks, and writes one file in
dataset order.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from isr_lightning.data.entry_point import check_entry_point_guard
from isr_lightning.data.video import DEFAULT_VIDEO_BACKEND
from isr_lightning.evaluation.datasets import eval_transform

__all__ = [
    "IMAGE_EXTENSIONS",
    "EmbeddingWriter",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "VideoCropDataModule",
    "VideoCropDataset",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageFolderDataset(Dataset):
    """The images under a folder (recursively, sorted by path), with their relative paths.

    Args:
        root: folder to search.
        data_config: input size and normalisation, e.g. ``ISRModule.data_config``.
        extensions: file suffixes to include (case-insensitive).

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no image.
    """

    def __init__(
        self, root: str | Path, data_config: dict[str, Any], extensions: Sequence[str] = IMAGE_EXTENSIONS
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        suffixes = {e.lower() for e in extensions}
        self.paths = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not self.paths:
            raise FileNotFoundError(f"no image ({', '.join(sorted(suffixes))}) under {self.root}")
        self.transform = eval_transform(data_config)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        """Return the ``(3, H, W)`` normalised image and its path relative to ``root`` (posix)."""
        path = self.paths[index]
        with Image.open(path) as image:
            tensor = self.transform(image.convert("RGB"))
        return tensor, path.relative_to(self.root).as_posix()


class ImageFolderDataModule(LightningDataModule):
    """Predict-only data: an :class:`ImageFolderDataset` prepared with the model's ``data_config``.

    Args:
        root: image folder (searched recursively).
        batch_size: images per batch.
        num_workers: dataloader worker processes.
        extensions: file suffixes to include.
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 64,
        num_workers: int = 0,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        super().__init__()
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.extensions = tuple(extensions)

    def predict_dataloader(self) -> DataLoader:
        """Images in path order, resized and normalised as the model expects."""
        data_config = self.trainer.lightning_module.data_config
        dataset = ImageFolderDataset(self.root, data_config, self.extensions)
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, shuffle=False)


class EmbeddingWriter(BasePredictionWriter):
    """Write the embeddings of ``trainer.predict`` to ``.npz`` (or ``.npy``) with their names.

    ``.npz``: arrays ``embeddings`` ``(N, D)`` float32 and ``names`` ``(N,)`` str.
    ``.npy``: the ``(N, D)`` float32 array, and the names one per line in ``<stem>.names.txt``.
    Rows are in dataset order. Names come from ``predict_step``'s ``{"embeddings", "names"}``
    output (e.g. an :class:`ImageFolderDataset`); a plain tensor output is named by its dataset
    index. With several predict dataloaders, dataloader ``k > 0`` goes to ``<stem>_<k><suffix>``.

    Args:
        output_path: file to write; its suffix (``.npz`` or ``.npy``) picks the format.

    Raises:
        ValueError: ``output_path`` ends with neither ``.npz`` nor ``.npy``.
    """

    def __init__(self, output_path: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.output_path = Path(output_path)
        if self.output_path.suffix not in (".npz", ".npy"):
            raise ValueError(f"output_path must end with .npz or .npy, got {self.output_path}")
        self._parts: dict[int, list[tuple[list[int], np.ndarray, list[str] | None]]] = {}

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Forget the rows of a previous ``predict`` call."""
        self._parts = {}

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep one batch's embeddings, names and dataset indices (in memory, on CPU)."""
        names = None
        if isinstance(prediction, dict):
            embeddings, names = prediction["embeddings"], [str(n) for n in prediction["names"]]
        else:
            embeddings = prediction
        embeddings = embeddings.detach().float().cpu().numpy()
        if batch_indices is None:  # no sampler (iterable dataset): arrival order, unique across ranks
            start = sum(len(i) for i, _, _ in self._parts.get(dataloader_idx, []))
            rank, world = trainer.global_rank, trainer.world_size
            batch_indices = [rank + world * i for i in range(start, start + len(embeddings))]
        self._parts.setdefault(dataloader_idx, []).append((list(batch_indices), embeddings, names))

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Gather every rank's rows on rank 0 and write one file per dataloader."""
        local = {k: self._concat(parts) for k, parts in self._parts.items()}
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size() if dist.get_rank() == 0 else []
            dist.gather_object(local, gathered if dist.get_rank() == 0 else None, dst=0)
        else:
            gathered = [local]
        if trainer.global_rank == 0:
            keys = sorted({k for part in gathered for k in part})
            for key in keys:
                parts = [part[key] for part in gathered if key in part]
                self._write(key, *self._merge(parts), single=len(keys) == 1)
        self._parts = {}

    @staticmethod
    def _concat(
        parts: list[tuple[list[int], np.ndarray, list[str] | None]],
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        indices = np.array([i for idx, _, _ in parts for i in idx], dtype=np.int64)
        embeddings = np.concatenate([e for _, e, _ in parts])
        names = [n for idx, _, ns in parts for n in (ns if ns is not None else [str(i) for i in idx])]
        return indices, embeddings, names

    @staticmethod
    def _merge(parts: list[tuple[np.ndarray, np.ndarray, list[str]]]) -> tuple[np.ndarray, np.ndarray]:
        indices = np.concatenate([p[0] for p in parts])
        embeddings = np.concatenate([p[1] for p in parts]).astype(np.float32, copy=False)
        names = np.array([n for p in parts for n in p[2]], dtype=str)
        # Sort by dataset index and keep the first of the samples repeated by DistributedSampler.
        _, first = np.unique(indices, return_index=True)
        return embeddings[first], names[first]

    def _write(self, dataloader_idx: int, embeddings: np.ndarray, names: np.ndarray, single: bool) -> None:
        path = self.output_path
        if not single and dataloader_idx > 0:
            path = path.with_name(f"{path.stem}_{dataloader_idx}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npz":
            np.savez(path, embeddings=embeddings, names=names)
        else:
            np.save(path, embeddings)
            path.with_suffix(".names.txt").write_text("".join(f"{n}\n" for n in names))


class VideoCropDataset(Dataset):
    """Every person box of a video corpus as ``(crop, name)``, for ``trainer.predict``.

    ``root`` is anything :class:`~isr_lightning.data.VideoPairDataModule` reads (videos with
    MOT sidecars, MOT sequence folders, a manifest). Boxes are clipped to the frame and boxes
    smaller than ``min_box_size`` dropped, as for training. A clip whose video or box file
    cannot be read is skipped with a warning and counted in :attr:`skipped`.

    Names are ``"<clip_id>/<frame:06d>/<k>"``: the 1-based frame number of the box file and
    the box's position among the kept boxes of that frame.

    Args:
        root: corpus location.
        data_config: ``{"input_size": (3, H, W), "mean", "std"}``, e.g. ``ISRModule.data_config``.
        box_source: ``"detections"`` or ``"gt"``.
        score_threshold: minimum detection score (``None``: keep all).
        min_box_size: minimum box width and height in pixels.
        video_backend: ``"pyav"`` (default), ``"decord"`` or ``"torchcodec"``.

    Raises:
        ValueError: no box in the whole corpus.
    """

    def __init__(
        self,
        root: str | Path,
        data_config: dict[str, Any],
        box_source: str = "detections",
        score_threshold: float | None = None,
        min_box_size: float = 8.0,
        video_backend: str = DEFAULT_VIDEO_BACKEND,
    ) -> None:
        from isr_lightning.data.mot import MalformedDetectionsError, filter_boxes, read_mot_file
        from isr_lightning.data.sources import discover_clips
        from isr_lightning.data.video import UnreadableVideoError, open_reader

        if box_source not in ("detections", "gt"):
            raise ValueError(f"box_source must be 'detections' or 'gt', got {box_source!r}")
        self.clips = discover_clips(root, use_gt=box_source == "gt")
        self.transform = eval_transform(data_config)
        self.video_backend = video_backend
        self.skipped: Counter[str] = Counter()
        self.items: list[tuple[int, int, int, np.ndarray]] = []  # clip, frame, box, (4,) xyxy
        for c, clip in enumerate(self.clips):
            path = clip.gt if box_source == "gt" else clip.detections
            try:
                reader = open_reader(clip, backend=video_backend)
                width, height, num_frames = reader.width, reader.height, reader.num_frames
                del reader  # decoders are opened again, per process, in __getitem__
                if path is None:
                    raise FileNotFoundError(f"{clip.source}: no box file")
                boxes = read_mot_file(path, is_gt=box_source == "gt", score_threshold=score_threshold)
            except (UnreadableVideoError, OSError, MalformedDetectionsError, ValueError) as err:
                self.skipped[type(err).__name__] += 1
                log.warning("skipping clip %s: %s", clip.clip_id, err)
                continue
            for frame in sorted(f for f in boxes if 1 <= f <= num_frames):
                kept = filter_boxes(boxes[frame], width, height, min_box_size)
                self.items += [(c, frame, k, box) for k, box in enumerate(kept.boxes)]
        if not self.items:
            raise ValueError(f"{root}: no person box to embed in {len(self.clips)} clips")
        self._reader: tuple[int, Any] | None = None
        self._frame: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict[str, Any]:
        # open decoders never cross processes
        return {**self.__dict__, "_reader": None, "_frame": None}

    def _frame_array(self, clip_index: int, frame: int) -> np.ndarray:
        from isr_lightning.data.video import open_reader

        if self._frame is None or self._frame[0] != (clip_index, frame):
            if self._reader is None or self._reader[0] != clip_index:
                self._reader = (clip_index, open_reader(self.clips[clip_index], backend=self.video_backend))
            self._frame = ((clip_index, frame), self._reader[1].get_frames([frame - 1])[0])
        return self._frame[1]

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        from isr_lightning.data.transforms import crop_boxes

        clip_index, frame, k, box = self.items[index]
        crop = crop_boxes(self._frame_array(clip_index, frame), box[None])[0]
        name = f"{self.clips[clip_index].clip_id}/{frame:06d}/{k}"
        return self.transform(Image.fromarray(np.ascontiguousarray(crop))), name


class VideoCropDataModule(LightningDataModule):
    """Predict-only data module over :class:`VideoCropDataset`; reads the model's ``data_config``.

    Args:
        root: corpus location (see :class:`VideoCropDataset`).
        batch_size: crops per batch.
        num_workers: loader workers (started from a ``forkserver``, like the training loader).
        box_source: ``"detections"`` or ``"gt"``.
        score_threshold: minimum detection score.
        min_box_size: minimum box width and height in pixels.
    """

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        num_workers: int = 0,
        box_source: str = "detections",
        score_threshold: float | None = None,
        min_box_size: float = 8.0,
    ) -> None:
        super().__init__()
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.dataset_kwargs = {
            "box_source": box_source,
            "score_threshold": score_threshold,
            "min_box_size": min_box_size,
        }

    def predict_dataloader(self) -> DataLoader:
        """Crops in (clip, frame, box) order."""
        dataset = VideoCropDataset(self.root, self.trainer.lightning_module.data_config, **self.dataset_kwargs)
        context = "forkserver" if self.num_workers > 0 else None
        if context is not None:
            check_entry_point_guard(context)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            multiprocessing_context=context,
        )
