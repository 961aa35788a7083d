"""ReID retrieval metrics as a :class:`torchmetrics.Metric` (DDP-correct)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from isr_lightning.evaluation.engine import ReIDResult, evaluate_reid
from isr_lightning.evaluation.protocol import ReIDProtocol

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
        protocol: the protocol's settings (:class:`~isr_lightning.evaluation.ReIDProtocol`;
            ``None``: its defaults). ``compute()`` reports ``rank1``..``rank{max_rank}`` for
            1, 5, 10 and ``protocol.max_rank``.
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

    def __init__(self, protocol: ReIDProtocol | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.protocol = protocol or ReIDProtocol()
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
        result = evaluate_reid(emb[flag], emb[~flag], pids[flag], pids[~flag], cams[flag], cams[~flag], self.protocol)
        self.result = result
        out = result_scalars(result, self.protocol.max_rank)
        out.update(n_query=float(result.n_query), n_gallery=float(result.n_gallery), n_junk=float(result.n_junk))
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}

    def evaluate_kept(self, protocol: ReIDProtocol) -> ReIDResult:
        """Evaluate the features kept by the last ``compute()`` again under another protocol (e.g. re-ranked).

        Args:
            protocol: the protocol to evaluate under.

        Returns:
            The :class:`ReIDResult`.

        Raises:
            ValueError: if no features were kept (``keep_features`` off or no ``compute()``).
        """
        if self.kept_features is None:
            raise ValueError("no kept features: set keep_features = True and call compute() first")
        emb, pids, cams, flag = self.kept_features[:4]
        return evaluate_reid(emb[flag], emb[~flag], pids[flag], pids[~flag], cams[flag], cams[~flag], protocol)


def result_scalars(result: ReIDResult, max_rank: int) -> dict[str, float]:
    """``rank1``, ``rank5``, ``rank10``, ``rank{max_rank}``, ``mAP`` and ``mINP`` of a result."""
    out = {f"rank{k}": result.rank(k) for k in sorted({1, 5, 10, max_rank})}
    out.update(mAP=result.mAP, mINP=result.mINP)
    return out
