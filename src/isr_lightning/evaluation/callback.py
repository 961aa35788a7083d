"""Lightning callback: ReID evaluation on query and gallery sets during ``validate``/``fit``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from typing_extensions import override

from isr_lightning.evaluation.batches import embed_batch, split_batch
from isr_lightning.evaluation.metric import ReIDMetric, result_scalars
from isr_lightning.evaluation.protocol import ReIDProtocol
from isr_lightning.evaluation.visualize import ranked_lists, render_ranked_lists

__all__ = ["ReIDBenchmarkEvaluation", "ReIDEvaluationCallback", "embed_batch", "split_batch"]


class ReIDEvaluationCallback(pl.Callback):
    """Evaluate CMC/mAP/mINP on a query and a gallery set at the end of each validation.

    Contract with the LightningModule: it only needs ``embed(images) -> (B, D)`` (no grad, eval
    mode handled inside ``embed``) and, for the ranked-list picture from normalised tensors,
    ``data_config`` with ``mean`` and ``std``. :class:`isr_lightning.module.ISRModule` provides
    both, and so can any module.

    Runs in ``on_validation_epoch_end`` (``trainer.validate`` and every validation of
    ``trainer.fit``; skipped during the sanity check), or at the end of each training epoch
    when the module has no validation. Under DDP each rank embeds its share (datasets are
    wrapped in a ``DistributedSampler``; padding duplicates are removed by sample index) and
    every rank gets the same numbers.

    Logged: ``{prefix}rank1``, ``rank5``, ``rank10`` (and ``rank{max_rank}``), ``mAP``,
    ``mINP``. The ranked-list picture goes to a ``WandbLogger`` as an image, otherwise to a PNG
    file under the logger's folder (``reid_ranked_lists/``).

    Args:
        query: query ``Dataset`` (samples as :func:`split_batch` reads them) or ``DataLoader``.
        gallery: gallery ``Dataset`` or ``DataLoader``.
        protocol: the protocol's settings (:class:`~isr_lightning.evaluation.ReIDProtocol`;
            ``None``: its defaults). With ``rerank`` set, the metrics are logged twice: by plain
            distances under ``{prefix}``, re-ranked under ``{prefix}rerank/``.
        flip: test-time flip averaging.
        batch_size: batch size of the loaders built for datasets.
        num_workers: workers of the loaders built for datasets.
        every_n_epochs: evaluate every ``n`` epochs during ``fit``.
        prefix: prefix of the logged names.
        num_plot_queries: queries in the ranked-list picture (0 disables it).
        plot_topk: gallery images per query in the picture.
    """

    def __init__(
        self,
        query: Dataset | DataLoader,
        gallery: Dataset | DataLoader,
        protocol: ReIDProtocol | None = None,
        flip: bool = False,
        batch_size: int = 128,
        num_workers: int = 0,
        every_n_epochs: int = 1,
        prefix: str = "reid/",
        num_plot_queries: int = 4,
        plot_topk: int = 10,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.query = query
        self.gallery = gallery
        self.flip = flip
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.every_n_epochs = every_n_epochs
        self.prefix = prefix
        self.num_plot_queries = num_plot_queries
        self.plot_topk = plot_topk
        protocol = protocol or ReIDProtocol()
        self.protocol = protocol
        # the plain ranking is always logged; a re-ranked protocol adds the re-ranked metrics
        self.metric = ReIDMetric(dataclasses.replace(protocol, rerank=None))
        self.metric.keep_features = num_plot_queries > 0 or protocol.reranking is not None
        self.last_metrics: dict[str, float] = {}
        self.last_picture_path: str | None = None

    # -- hooks ---------------------------------------------------------------------------
    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "fit" and (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.evaluate(trainer, pl_module)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        validation_runs = is_overridden("validation_step", pl_module) and trainer.limit_val_batches != 0
        if validation_runs or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.evaluate(trainer, pl_module)

    # -- work ----------------------------------------------------------------------------
    def _loader(self, data: Dataset | DataLoader, trainer: pl.Trainer) -> DataLoader:
        if isinstance(data, DataLoader):
            return data
        sampler = None
        if trainer.world_size > 1:
            sampler = DistributedSampler(data, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False)
        return DataLoader(
            data, batch_size=self.batch_size, sampler=sampler, shuffle=False, num_workers=self.num_workers
        )

    def _embed_into_metric(self, loader: Iterable[Any], pl_module: pl.LightningModule, is_query: bool) -> None:
        for batch in loader:
            images, pids, camids, indexes = split_batch(batch)
            emb = embed_batch(pl_module, images.to(pl_module.device), self.flip)
            self.metric.update(
                emb,
                pids.to(emb.device),
                camids.to(emb.device),
                is_query,
                None if indexes is None else indexes.to(emb.device),
            )

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """Embed query and gallery, compute and log the metrics (and the picture on rank 0).

        Returns:
            The logged metrics (without prefix).
        """
        self.metric = self.metric.to(pl_module.device)
        self.metric.reset()
        was_training = pl_module.training
        try:
            self._embed_into_metric(self._loader(self.query, trainer), pl_module, True)
            self._embed_into_metric(self._loader(self.gallery, trainer), pl_module, False)
        finally:
            pl_module.train(was_training)
        values = self.metric.compute()
        logged = {k: float(v) for k, v in values.items() if not k.startswith("n_")}
        if self.protocol.reranking is not None:
            reranked = result_scalars(self.metric.evaluate_kept(self.protocol), self.protocol.max_rank)
            logged.update({f"rerank/{k}": v for k, v in reranked.items()})
        for name, value in logged.items():
            pl_module.log(f"{self.prefix}{name}", value, sync_dist=False, rank_zero_only=False)
        self.last_metrics = logged
        if self.num_plot_queries > 0 and trainer.is_global_zero:
            try:
                self._log_picture(trainer, pl_module)
            except Exception as err:  # a picture must never break training
                rank_zero_info(f"ReIDEvaluationCallback: ranked-list picture skipped ({err})")
        self.metric.reset()
        return logged

    def _image(self, data: Dataset | DataLoader, index: int, pl_module: pl.LightningModule) -> Image.Image:
        dataset = data.dataset if isinstance(data, DataLoader) else data
        if hasattr(dataset, "load_image"):
            return dataset.load_image(index)
        image, _, _, _ = split_batch(_collate_one(dataset[index]))
        img = image[0].float().cpu()
        cfg = getattr(pl_module, "data_config", None) or {}
        if "mean" in cfg and "std" in cfg:
            img = img * torch.tensor(cfg["std"]).view(3, 1, 1) + torch.tensor(cfg["mean"]).view(3, 1, 1)
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(arr)

    def _log_picture(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        kept = self.metric.kept_features
        if kept is None:
            return
        emb, pids, cams, flag, idx = kept
        q, g = flag, ~flag
        if bool((idx < 0).any()):
            return  # without sample indices the images cannot be found
        nq = int(q.sum())
        pick = torch.linspace(0, nq - 1, steps=min(self.num_plot_queries, nq)).round().long()
        qsel = q.nonzero().squeeze(1)[pick]
        order, correct = ranked_lists(
            emb[qsel],
            emb[g],
            pids[qsel],
            pids[g],
            cams[qsel],
            cams[g],
            topk=self.plot_topk,
            metric=self.protocol.metric,
        )
        g_idx = idx[g]
        q_imgs = [self._image(self.query, int(idx[i]), pl_module) for i in qsel]
        g_imgs = [
            [self._image(self.gallery, int(g_idx[j]), pl_module) if j >= 0 else None for j in row]
            for row in order.tolist()
        ]
        picture = render_ranked_lists(q_imgs, g_imgs, correct.tolist())
        key = f"{self.prefix}ranked_list"
        wrote_png = False
        loggers = trainer.loggers or [None]
        for logger in loggers:
            if logger is not None and type(logger).__name__ == "WandbLogger":
                logger.log_image(key=key, images=[picture], step=trainer.global_step)
            elif not wrote_png:
                root = (
                    logger.log_dir
                    if logger is not None and getattr(logger, "log_dir", None)
                    else trainer.default_root_dir
                )
                folder = Path(root) / "reid_ranked_lists"
                os.makedirs(folder, exist_ok=True)
                path = folder / f"epoch{trainer.current_epoch}_step{trainer.global_step}.png"
                picture.save(path)
                self.last_picture_path = str(path)
                wrote_png = True


class ReIDBenchmarkEvaluation(ReIDEvaluationCallback):
    """:class:`ReIDEvaluationCallback` on a benchmark folder, for YAML recipes.

    The benchmark is loaded with :func:`~isr_lightning.evaluation.load_reid_dataset` in
    ``setup`` and its images are transformed with
    :func:`~isr_lightning.evaluation.eval_transform` of the module's ``data_config`` (so crop
    size and normalisation follow the model)::

        trainer:
          callbacks:
            - class_path: isr_lightning.evaluation.callback.ReIDBenchmarkEvaluation
              init_args:
                root: /data/Market-1501-v15.09.15
                dataset: market1501

    Args:
        root: the benchmark folder.
        dataset: a name of :data:`~isr_lightning.evaluation.DATASETS` (``market1501``,
            ``msmt17``, ``cuhk03-np-detected``, ``cuhk03-np-labeled``, ``folder`` for any
            Market-1501-layout folder).
        **kwargs: the other arguments of :class:`ReIDEvaluationCallback` (``protocol``,
            ``flip``, ``every_n_epochs``, ...; set in ``init_args`` as well).

    Raises:
        ValueError: unknown ``dataset``.
    """

    def __init__(self, root: str | Path, dataset: str = "market1501", **kwargs: Any) -> None:
        from isr_lightning.evaluation.datasets import DATASETS

        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
        super().__init__(query=None, gallery=None, **kwargs)  # type: ignore[arg-type]  # built in setup()
        self.root = str(root)
        self.dataset = dataset

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Load the benchmark and build query and gallery datasets with the model's transform."""
        if self.query is not None:
            return
        from isr_lightning.evaluation.datasets import ReIDImageDataset, eval_transform, load_reid_dataset

        split = load_reid_dataset(self.dataset, self.root)
        transform = eval_transform(pl_module.data_config)
        self.query = ReIDImageDataset(split.query, transform)
        self.gallery = ReIDImageDataset(split.gallery, transform)
        rank_zero_info(f"ReID evaluation on {self.dataset} ({len(self.query)} queries, {len(self.gallery)} gallery)")


def _collate_one(sample: Any) -> Any:
    from torch.utils.data import default_collate

    return default_collate([sample])
