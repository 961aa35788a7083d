"""Box geometry shared by the data pipeline and the synthetic world."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["box_iou"]


def box_iou(a: np.ndarray, b: np.ndarray, fmt: Literal["xyxy", "xywh"] = "xyxy") -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Computed in the boxes' dtype. A pair whose union is empty (two degenerate boxes) gets an
    IoU of 0.

    Args:
        a: ``(K, 4)`` boxes.
        b: ``(M, 4)`` boxes.
        fmt: ``"xyxy"`` (corners ``x1, y1, x2, y2``) or ``"xywh"`` (top-left corner, width,
            height, as in MOT files); the areas of ``"xywh"`` boxes are ``w * h``.

    Returns:
        ``(K, M)`` IoU in ``[0, 1]``.

    Raises:
        ValueError: ``fmt`` is neither ``"xyxy"`` nor ``"xywh"``.
    """
    if fmt == "xyxy":
        ax1, ay1, ax2, ay2 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        area_a, area_b = (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)
    elif fmt == "xywh":
        ax1, ay1, ax2, ay2 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
        bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
        area_a, area_b = a[:, 2] * a[:, 3], b[:, 2] * b[:, 3]
    else:
        raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
    iw = np.clip(np.minimum(ax2[:, None], bx2[None, :]) - np.maximum(ax1[:, None], bx1[None, :]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None, :]) - np.maximum(ay1[:, None], by1[None, :]), 0, None)
    inter = iw * ih
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
