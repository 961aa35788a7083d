"""``ReIDProtocol``: the settings of the ReID evaluation protocol, declared once.

The engine (:func:`~isr_lightning.evaluation.evaluate_reid`), the metric
(:class:`~isr_lightning.evaluation.ReIDMetric`), the evaluation callback and the
``evaluate``/``evaluate-features`` commands all take this one object, so a setting has one
default, one check and one description (the commands' options are its fields:
``--metric euclidean``, ``--ignore_junk false``, ``--rerank.k1 8``).
"""

from __future__ import annotations

from dataclasses import dataclass

from isr_lightning.evaluation.functional import DistanceMetric
from isr_lightning.evaluation.rerank import KReciprocal, as_rerank
from isr_lightning.evaluation.search import Backend

__all__ = ["ReIDProtocol"]


@dataclass(frozen=True)
class ReIDProtocol:
    """How query features are ranked against the gallery and scored (docs/evaluation.md).

    The standard protocol: distances to every gallery item, gallery items with the query's
    person id and camera removed, queries without a correct match left out, CMC/mAP/mINP, ties
    broken by gallery index.

    Args:
        metric: ``"cosine"`` (default; features L2-normalised) or ``"euclidean"``.
        max_rank: length of the CMC curve.
        ignore_junk: gallery items with person id ``-1`` (junk: bad detections, body parts)
            rank nowhere, as the official Market-1501 evaluation does (default); ``False`` ranks
            them as ordinary negatives. Dataset loaders keep junk in the gallery: this is the one
            place junk is decided.
        rerank: rank by k-reciprocal re-ranked distances (Zhong et al., CVPR 2017): ``True`` for
            k1=20, k2=6, lambda=0.3, or a :class:`~isr_lightning.evaluation.rerank.KReciprocal`;
            ``None``/``False`` ranks by the plain distances. The evaluation callback logs both.
        chunk_size: query rows per block (memory: about ``chunk_size x gallery x 5`` bytes).
        backend: ``"torch"`` (a matrix product per block) or ``"faiss"`` (a FAISS index).
        index: FAISS index factory string for ``backend="faiss"``; anything but ``"Flat"`` is
            approximate (only the top ``k`` items are retrieved; flagged in the result).
        k: items retrieved per query by an approximate index.
        nprobe: inverted lists probed by an IVF index.

    Raises:
        ValueError: an unknown metric or backend, ``max_rank``/``chunk_size``/``k`` below 1, or
            re-ranking with the FAISS backend.
    """

    metric: DistanceMetric = "cosine"
    max_rank: int = 10
    ignore_junk: bool = True
    rerank: KReciprocal | bool | None = None
    chunk_size: int = 512
    backend: Backend = "torch"
    index: str = "Flat"
    k: int = 100
    nprobe: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {self.metric!r}")
        if self.backend not in ("torch", "faiss"):
            raise ValueError(f"backend must be 'torch' or 'faiss', got {self.backend!r}")
        for name in ("max_rank", "chunk_size", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "rerank", as_rerank(self.rerank))
        if self.rerank is not None and self.backend != "torch":
            raise ValueError("re-ranking computes exact distances between all items: use backend='torch'")

    @property
    def approximate(self) -> bool:
        """Whether the FAISS index is approximate (the metrics are then truncated at ``k``)."""
        return self.backend == "faiss" and self.index.replace(" ", "").lower() != "flat"

    @property
    def reranking(self) -> KReciprocal | None:
        """The re-ranking settings, or ``None`` (``rerank`` normalised)."""
        return self.rerank if isinstance(self.rerank, KReciprocal) else None
