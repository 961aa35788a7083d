"""ReID retrieval metrics as a :class:`torchmetrics.Metric` (DDP-correct)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from isr_lightning.evaluation.engine import ReIDResult, evaluate_reid
from isr_lightning.evaluation.functional import DistanceMetric
from isr_lightning.evaluation.rerank import KReciprocal, as_rerank
from isr_lightning.evaluation.search import Backend

__all__ = ["ReIDMetric", "result_scalars"]


class ReIDMetric(Metric):
    """CMC (rank-k), mAP and mINP of query embeddings against gallery embeddings.

    States are lists of embeddings, person ids, camera ids, a query flag and sample indices,
    concatenated across processes (``dist_reduce_fx="cat"``). ``compute()`` runs the exact,
    chunked protocol of :func:`~isr_lightning.evaluation.evaluate_reid`.

    Sample indices make the result independent of the number of processes: a
    ``DistributedSampler`` pads the last batch by repeating samples, so items are deduplicated
    by ``(is_query, index)`` and put in index order (which also fixes tie breaking) before
    evaluation. Without indices (``indexes=None``) nothing is deduplicated and items are used in
    arrival order.

    Args:
        metric: ``"cosine"`` (default) or ``"euclidean"``.
        max_rank: length of the CMC curve; ``compute()`` reports ``rank1``..``rank{max_rank}``
            for 1, 5, 10 and ``max_rank``.
        chunk_size: query rows per block in ``compute()``.
        backend: ``"torch"`` or ``"faiss"``.
        index: FAISS index string (``"Flat"`` is exact).
        ignore_junk: ignore gallery items with person id ``-1`` (the official protocol);
            ``False`` ranks them as negatives.
        rerank: k-reciprocal re-ranking (``True`` for k1=20, k2=6, lambda=0.3, or a
            :class:`~isr_lightning.evaluation.rerank.KReciprocal`).
        **kwargs: forwarded to :class:`torchmetrics.Metric` (e.g. ``compute_on_cpu=True``).

    Example:
        >>> m = ReIDMetric()
        >>> m.update(q_emb, q_pids, q_cams, is_query=True, indexes=q_idx)  # doctest: +SKIP
        >>> m.update(g_emb, g_pids, g_cams, is_query=False, indexes=g_idx)  # doctest: +SKIP
        >>> m.compute()["mAP"]  # doctest: +SKIP
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    embeddings: list[Tensor]
    pids: list[Tensor]
    camids: list[Tensor]
    is_query: list[Tensor]
    indexes: list[Tensor]

    def __init__(
        self,
        metric: DistanceMetric = "cosine",
        max_rank: int = 10,
        chunk_size: int = 512,
        backend: Backend = "torch",
        index: str = "Flat",
        ignore_junk: bool = True,
        rerank: KReciprocal | bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        if max_rank < 1:
            raise ValueError(f"max_rank must be >= 1, got {max_rank}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.metric = metric
        self.max_rank = max_rank
        self.chunk_size = chunk_size
        self.backend = backend
        self.index = index
        self.ignore_junk = ignore_junk
        self.rerank = as_rerank(rerank)
        self.result: ReIDResult | None = None
        #: Keep the gathered ``(emb, pids, camids, is_query, indexes)`` of the last ``compute()``
        #: in :attr:`kept_features` (the callback's ranked-list picture uses it).
        self.keep_features = False
        self.kept_features: tuple[Tensor, ...] | None = None
        for name in ("embeddings", "pids", "camids", "is_query", "indexes"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        embeddings: Tensor,
        pids: Tensor,
        camids: Tensor,
        is_query: bool | Tensor,
        indexes: Tensor | None = None,
    ) -> None:
        """Add a batch of query or gallery items.

        Args:
            embeddings: ``(B, D)`` features.
            pids: ``(B,)`` int person ids.
            camids: ``(B,)`` int camera ids.
            is_query: a bool for the whole batch, or a ``(B,)`` bool tensor.
            indexes: optional ``(B,)`` int sample indices within the query (resp. gallery)
                dataset, non-negative; used to drop sampler-padding duplicates.
        """
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (B, D), got {tuple(embeddings.shape)}")
        b = embeddings.shape[0]
        pids = torch.as_tensor(pids, device=embeddings.device).long().reshape(-1)
        camids = torch.as_tensor(camids, device=embeddings.device).long().reshape(-1)
        if pids.numel() != b or camids.numel() != b:
            raise ValueError(f"{b} embeddings but {pids.numel()} pids and {camids.numel()} camids")
        if isinstance(is_query, bool):
            flag = torch.full((b,), is_query, dtype=torch.bool, device=embeddings.device)
        else:
            flag = torch.as_tensor(is_query, device=embeddings.device).bool().reshape(-1)
            if flag.numel() == 1:
                flag = flag.expand(b).clone()
        if indexes is None:
            idx = torch.full((b,), -1, dtype=torch.long, device=embeddings.device)
        else:
            idx = torch.as_tensor(indexes, device=embeddings.device).long().reshape(-1)
            if idx.numel() != b:
                raise ValueError(f"{b} embeddings but {idx.numel()} indexes")
            if bool((idx < 0).any()):
                raise ValueError("indexes must be non-negative")
        self.embeddings.append(embeddings.detach().float())
        self.pids.append(pids)
        self.camids.append(camids)
        self.is_query.append(flag)
        self.indexes.append(idx)

    def reset(self) -> None:
        """Clear the states and the kept features."""
        super().reset()
        self.kept_features = None

    def _gathered(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        emb = dim_zero_cat(self.embeddings)
        pids = dim_zero_cat(self.pids)
        cams = dim_zero_cat(self.camids)
        flag = dim_zero_cat(self.is_query).bool()
        idx = dim_zero_cat(self.indexes)
        has = idx >= 0
        if bool(has.any()):
            # Dedupe by (is_query, index), keep index order: identical on any number of ranks.
            key = flag[has].long() * (1 << 40) + idx[has]
            key_sorted, order = torch.sort(key, stable=True)
            first = torch.ones_like(key_sorted, dtype=torch.bool)
            first[1:] = key_sorted[1:] != key_sorted[:-1]
            sel = has.nonzero().squeeze(1)[order[first]]
            sel = torch.cat([sel, (~has).nonzero().squeeze(1)])
            emb, pids, cams, flag, idx = emb[sel], pids[sel], cams[sel], flag[sel], idx[sel]
        return emb, pids, cams, flag, idx

    def compute(self) -> dict[str, Tensor]:
        """Evaluate; also stores the full :class:`ReIDResult` in ``self.result``.

        Returns:
            ``{"rank1", "rank5", "rank10", "mAP", "mINP", "n_query", "n_gallery", "n_junk"}``
            (and ``rank{max_rank}``) as scalar tensors.
        """
        # After a distributed sync the list states are already concatenated tensors.
        if isinstance(self.embeddings, list) and not self.embeddings:
            raise ValueError("ReIDMetric.compute() called before any update()")
        emb, pids, cams, flag, idx = self._gathered()
        if self.keep_features:
            self.kept_features = (emb, pids, cams, flag, idx)
        if not bool(flag.any()) or bool(flag.all()):
            raise ValueError("ReIDMetric needs both query (is_query=True) and gallery items")
        result = self._evaluate((emb, pids, cams, flag), self.backend, self.rerank)
        self.result = result
        out = result_scalars(result, self.max_rank)
        out.update(n_query=float(result.n_query), n_gallery=float(result.n_gallery), n_junk=float(result.n_junk))
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}

    def evaluate_kept(self, rerank: KReciprocal | bool | None = None) -> ReIDResult:
        """Evaluate the features kept by the last ``compute()`` again, e.g. re-ranked.

        Runs with the torch backend (re-ranking needs it) and this metric's other settings.

        Args:
            rerank: k-reciprocal re-ranking, as the constructor's ``rerank``.

        Returns:
            The :class:`ReIDResult`.

        Raises:
            ValueError: if no features were kept (``keep_features`` off or no ``compute()``).
        """
        if self.kept_features is None:
            raise ValueError("no kept features: set keep_features = True and call compute() first")
        return self._evaluate(self.kept_features[:4], "torch", as_rerank(rerank))

    def _evaluate(self, features: tuple[Tensor, ...], backend: Backend, rerank: KReciprocal | None) -> ReIDResult:
        """:func:`evaluate_reid` of the query items against the gallery items.

        Args:
            features: ``(emb, pids, camids, is_query)``: ``(N, D)`` float embeddings, ``(N,)``
                int person and camera ids and the ``(N,)`` bool query flag.
            backend: ``"torch"`` or ``"faiss"``.
            rerank: k-reciprocal re-ranking, or ``None``.

        Returns:
            The :class:`ReIDResult`.
        """
        emb, pids, cams, flag = features
        return evaluate_reid(
            emb[flag],
            emb[~flag],
            pids[flag],
            pids[~flag],
            cams[flag],
            cams[~flag],
            metric=self.metric,
            max_rank=self.max_rank,
            chunk_size=self.chunk_size,
            backend=backend,
            index=self.index,
            ignore_junk=self.ignore_junk,
            rerank=rerank,
        )


def result_scalars(result: ReIDResult, max_rank: int) -> dict[str, float]:
    """``rank1``, ``rank5``, ``rank10``, ``rank{max_rank}``, ``mAP`` and ``mINP`` of a result."""
    out = {f"rank{k}": result.rank(k) for k in sorted({1, 5, 10, max_rank})}
    out.update(mAP=result.mAP, mINP=result.mINP)
    return out
