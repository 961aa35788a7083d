"""Box IoU against a pair-by-pair reference, in both box formats."""

from __future__ import annotations

import numpy as np
import pytest

from isr_lightning.data.boxes import box_iou


def _reference_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two xyxy boxes, written out."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _random_xyxy(rng: np.random.Generator, n: int) -> np.ndarray:
    corner = rng.uniform(0, 50, (n, 2))
    return np.concatenate([corner, corner + rng.uniform(1, 30, (n, 2))], axis=1)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_xyxy_matches_the_pairwise_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _random_xyxy(rng, 7), _random_xyxy(rng, 5)
    iou = box_iou(a, b)
    assert iou.shape == (7, 5)
    expected = [[_reference_iou(tuple(p), tuple(q)) for q in b] for p in a]
    np.testing.assert_allclose(iou, expected, rtol=1e-12, atol=0)
    assert (iou > 0).any() and (iou == 0).any()  # overlapping and disjoint pairs both tested


def test_xywh_gives_the_iou_of_the_same_boxes() -> None:
    rng = np.random.default_rng(2)
    a, b = _random_xyxy(rng, 6), _random_xyxy(rng, 4)
    np.testing.assert_allclose(box_iou(_xywh(a), _xywh(b), fmt="xywh"), box_iou(a, b), rtol=1e-12)


def test_known_values_dtype_and_degenerate_boxes() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    iou = box_iou(a, b)
    assert iou.dtype == np.float32
    np.testing.assert_allclose(iou, [[1 / 3, 1, 0, 0], [0, 0, 0, 0]], rtol=1e-6)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    # 2-pixel overlap of a 4x10 and a 4x10 box, given as x, y, w, h
    np.testing.assert_allclose(box_iou(np.array([[0.0, 0, 4, 10]]), np.array([[2.0, 0, 4, 10]]), fmt="xywh"), [[1 / 3]])


def test_unknown_format_raises() -> None:
    with pytest.raises(ValueError, match="fmt"):
        box_iou(np.zeros((1, 4)), np.zeros((1, 4)), fmt="cxcywh")  # type: ignore[arg-type]
