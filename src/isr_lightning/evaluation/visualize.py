"""Ranked-list pictures: a few queries with their top gallery images, green if correct."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from isr_lightning.evaluation.functional import DistanceMetric, cost_block, prepare_features

__all__ = ["ranked_lists", "render_ranked_lists"]

GREEN = (0, 170, 0)
RED = (220, 0, 0)


def ranked_lists(
    query_feats: Tensor,
    gallery_feats: Tensor,
    query_pids: Tensor,
    gallery_pids: Tensor,
    query_camids: Tensor,
    gallery_camids: Tensor,
    topk: int = 10,
    metric: DistanceMetric = "cosine",
) -> tuple[Tensor, Tensor]:
    """Top-``k`` gallery items of each query under the protocol (same id + camera removed).

    Args:
        query_feats: ``(Q, D)`` features (Q small: a few queries to show).
        gallery_feats: ``(G, D)`` features.
        query_pids: ``(Q,)`` person ids.
        gallery_pids: ``(G,)`` person ids.
        query_camids: ``(Q,)`` camera ids.
        gallery_camids: ``(G,)`` camera ids.
        topk: list length.
        metric: ``"cosine"`` or ``"euclidean"``.

    Returns:
        ``(indices, correct)``: ``(Q, k)`` int64 gallery indices in rank order (ties by index)
        and ``(Q, k)`` bool, True where the gallery id equals the query id.
    """
    qf = prepare_features(query_feats, metric)
    gf = prepare_features(gallery_feats.to(qf.device), metric)
    cost = cost_block(qf, gf, metric).double()
    removed = (gallery_pids.view(1, -1) == query_pids.view(-1, 1)) & (
        gallery_camids.view(1, -1) == query_camids.view(-1, 1)
    )
    cost[removed] = float("inf")
    k = min(topk, gf.shape[0])
    order = torch.sort(cost, dim=1, stable=True).indices[:, :k]
    keep = torch.gather(~removed, 1, order)
    order = torch.where(keep, order, torch.full_like(order, -1))
    correct = (gallery_pids[order.clamp_min(0)] == query_pids.view(-1, 1)) & keep
    return order, correct


def render_ranked_lists(
    query_images: Sequence[Image.Image],
    gallery_images: Sequence[Sequence[Image.Image | None]],
    correct: Sequence[Sequence[bool]],
    cell: tuple[int, int] = (64, 128),
    border: int = 4,
) -> Image.Image:
    """Draw one row per query: the query (grey frame), then its ranked gallery images.

    Args:
        query_images: one image per row.
        gallery_images: per row, the ranked gallery images (``None`` leaves a blank cell).
        correct: per row, whether each gallery image has the query's id (green) or not (red).
        cell: ``(width, height)`` of one image cell.
        border: frame width in pixels.

    Returns:
        An RGB image.
    """
    w, h = cell
    gap = 2 * border
    n_rows = len(query_images)
    n_cols = 1 + max((len(r) for r in gallery_images), default=0)
    canvas = Image.new("RGB", (n_cols * (w + gap) + gap, max(1, n_rows) * (h + gap) + gap), "white")
    draw = ImageDraw.Draw(canvas)

    def paste(img: Image.Image | None, row: int, col: int, color: tuple[int, int, int]) -> None:
        x = gap + col * (w + gap) + (gap if col > 0 else 0) // 2
        y = gap + row * (h + gap)
        draw.rectangle([x - border, y - border, x + w + border - 1, y + h + border - 1], fill=color)
        if img is not None:
            canvas.paste(img.convert("RGB").resize((w, h)), (x, y))

    for r, q_img in enumerate(query_images):
        paste(q_img, r, 0, (128, 128, 128))
        for c, (g_img, ok) in enumerate(zip(gallery_images[r], correct[r], strict=False)):
            paste(g_img, r, c + 1, GREEN if ok else RED)
    return canvas
