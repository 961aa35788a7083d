"""Person detectors that turn raw video frames into MOT detections.

A detector is any callable ``frames (K, H, W, 3) uint8 -> list of K arrays (M_k, 5)`` with
rows ``(x1, y1, x2, y2, score)`` (:class:`Detector`). Two are provided:

* :class:`BackgroundSubtractionDetector` needs no weights: moving blobs against a median
  background of recent frames, for static cameras (a baseline, and what the tests use);
* :class:`TorchvisionDetector` wraps a torchvision detection model (Faster R-CNN by default)
  with torchvision's own weights (downloaded once) or a weights file, keeping the COCO
  ``person`` class.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from isr_lightning.data.mot import FrameBoxes, assign_gt_ids

__all__ = ["BackgroundSubtractionDetector", "DetectionScores", "Detector", "TorchvisionDetector", "score_detections"]


class Detector(ABC):
    """Frames -> person boxes (subclass it for a new detector; ``isr-lightning detect --detector NAME``)."""

    def reset(self) -> None:  # noqa: B027 - optional hook, a stateless detector keeps nothing
        """Forget what was learnt from the previous clip (called before each new clip)."""

    @abstractmethod
    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        """Detect people.

        Args:
            frames: ``(K, H, W, 3)`` uint8 RGB frames of one clip, in time order.

        Returns:
            ``K`` float arrays ``(M_k, 5)``: ``(x1, y1, x2, y2, score)`` in pixels.
        """
        ...


class BackgroundSubtractionDetector(Detector):
    """Moving-person detector for static cameras (no weights).

    The background is the per-pixel median of recent frames: of every ``history_stride``-th
    frame the detector has seen in this clip (the last ``history`` of them) and of the frames
    of the current call, so a clip's first frames (the *warm-up*, one call) are judged against
    their own median and later ones against a median of many seconds, which a person who stops
    for a while does not take over. A pixel is foreground when its colour differs from the
    background by more than ``threshold`` (0-255, largest channel difference) and it is not a
    *shadow* (darker than the background by a factor in ``shadow`` with the same hue, the
    classic chromaticity test). The mask is opened (noise), then closed with a tall, narrow
    element (a person's dark coat and light trousers become one blob); blobs whose boxes
    overlap horizontally are joined (a person split in two at the waist), and a box much wider
    than a person is split at the columns where the mask is thinnest (people walking side by
    side). Boxes lower than ``min_height`` of the frame or outside ``aspect`` are dropped; the
    score is the foreground fraction of the box. Call :meth:`reset` between clips
    (``isr-lightning detect`` does).

    Args:
        threshold: colour difference (0-255, max over channels) that counts as foreground.
        min_height: minimum box height, as a fraction of the frame's height.
        aspect: allowed ``height / width`` of a person's box (others are dropped).
        person_aspect: typical ``height / width`` of a person: a blob is split into
            ``round(width * person_aspect / height)`` people.
        shadow: ``(low, high)`` brightness ratio to the background that, with an unchanged hue,
            is a shadow; ``None`` keeps shadows as foreground.
        history: background frames kept from earlier calls.
        history_stride: one frame in this many goes into the kept background frames.
    """

    def __init__(
        self,
        threshold: float = 25.0,
        min_height: float = 0.08,
        aspect: tuple[float, float] = (1.2, 5.0),
        person_aspect: float = 3.0,
        shadow: tuple[float, float] | None = None,
        history: int = 64,
        history_stride: int = 8,
    ) -> None:
        self.threshold = threshold
        self.min_height = min_height
        self.aspect = (float(aspect[0]), float(aspect[1]))
        self.person_aspect = person_aspect
        self.shadow = shadow
        self.history = history
        self.history_stride = max(1, history_stride)
        self.reset()

    def reset(self) -> None:
        """Forget the background of the previous clip."""
        self._kept: list[np.ndarray] = []
        self._seen = 0

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        """See :class:`Detector`."""
        frames = np.asarray(frames)
        background = np.median(np.concatenate([np.stack(self._kept), frames]) if self._kept else frames, axis=0)
        for k, frame in enumerate(frames):
            if (self._seen + k) % self.history_stride == 0:
                self._kept.append(frame)
        self._kept = self._kept[-self.history :]
        self._seen += len(frames)
        return [self._boxes(self._foreground(frame, background)) for frame in frames]

    def _foreground(self, frame: np.ndarray, background: np.ndarray) -> np.ndarray:
        image = frame.astype(np.float32)
        mask = np.abs(image - background).max(axis=-1) > self.threshold
        if self.shadow is not None:
            ratio = (image.sum(-1) + 1.0) / (background.sum(-1) + 1.0)
            hue = image / (image.sum(-1, keepdims=True) + 1.0) - background / (background.sum(-1, keepdims=True) + 1.0)
            darker = (ratio >= self.shadow[0]) & (ratio <= self.shadow[1])
            mask &= ~(darker & (np.abs(hue).max(axis=-1) < 0.03))
        height = frame.shape[0]
        mask = ndimage.binary_opening(mask, structure=np.ones((3, 3)))
        tall = np.ones((max(3, height // 24), max(1, height // 160)), dtype=bool)
        return ndimage.binary_closing(mask, structure=tall)

    def _boxes(self, mask: np.ndarray) -> np.ndarray:
        height = mask.shape[0]
        labels, _ = ndimage.label(mask)
        boxes = [[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop] for sl in ndimage.find_objects(labels) if sl]
        boxes = [b for b in _join_stacked(boxes) if b[3] - b[1] >= self.min_height * height]
        out = []
        for box in boxes:
            for x1, y1, x2, y2 in _split_wide(box, mask, self.person_aspect):
                h, w = y2 - y1, x2 - x1
                if self.aspect[0] <= h / max(w, 1) <= self.aspect[1] and h >= self.min_height * height:
                    out.append([x1, y1, x2, y2, float(mask[y1:y2, x1:x2].mean())])
        return np.array(out, dtype=np.float32).reshape(-1, 5)


def _is_weights_name(name: str) -> bool:
    """``DEFAULT`` or ``SomeModel_Weights.MEMBER``: a torchvision weights name, not a file."""
    return name == "DEFAULT" or ("_Weights." in name and "/" not in name)


def _join_stacked(boxes: list[list[int]]) -> list[list[int]]:
    """Join boxes that overlap horizontally by half of the narrower one and touch vertically (parts of one person)."""
    boxes = [list(b) for b in boxes]
    joined = True
    while joined:
        joined = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) - max(a[0], b[0])
                gap = max(a[1], b[1]) - min(a[3], b[3])  # > 0: one above the other, apart
                if overlap >= 0.5 * min(a[2] - a[0], b[2] - b[0]) and gap <= 0.1 * max(a[3] - a[1], b[3] - b[1]):
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    joined = True
                    break
            if joined:
                break
    return boxes


def _split_wide(box: list[int], mask: np.ndarray, person_aspect: float) -> list[list[int]]:
    """Split a box into ``round(width * person_aspect / height)`` people at the mask's thinnest columns."""
    x1, y1, x2, y2 = box
    people = round((x2 - x1) * person_aspect / max(y2 - y1, 1))
    if people < 2:
        return [box]
    columns = mask[y1:y2, x1:x2].sum(axis=0).astype(np.float64)
    cuts, width = [], (x2 - x1) / people
    for k in range(1, people):
        lo, hi = int((k - 0.5) * width), int((k + 0.5) * width)
        cut = int(k * width)  # evenly, unless the mask has a clear valley near there
        if hi > lo and columns[lo:hi].min() < 0.8 * np.median(columns[lo:hi]):
            cut = lo + int(np.argmin(columns[lo:hi]))
        cuts.append(x1 + cut)
    edges = [x1, *cuts, x2]
    parts = []
    for a, b in itertools.pairwise(edges):
        rows = np.flatnonzero(mask[y1:y2, a:b].any(axis=1))
        if len(rows):
            parts.append([a, y1 + int(rows[0]), b, y1 + int(rows[-1]) + 1])
    return parts


class TorchvisionDetector(Detector):
    """A torchvision detection model restricted to the COCO ``person`` class.

    Args:
        weights: torchvision's own weights name for ``model`` (``"DEFAULT"``, or an enum member
            such as ``"FasterRCNN_ResNet50_FPN_Weights.COCO_V1"``: downloaded once into the torch
            hub cache, so it needs network access the first time), or the path of a
            ``state_dict`` file saved from that model.
        model: torchvision detection builder name.
        score_threshold: minimum person score kept.
        device: torch device.
        batch_size: frames per forward pass.

    Raises:
        FileNotFoundError: ``weights`` is neither a weights name nor an existing file, or the
            download failed (offline): the message says which file to give instead.
    """

    def __init__(
        self,
        weights: str | Path = "DEFAULT",
        model: str = "fasterrcnn_resnet50_fpn",
        score_threshold: float = 0.5,
        device: str = "cpu",
        batch_size: int = 4,
    ) -> None:
        import torchvision

        builder = getattr(torchvision.models.detection, model)
        offline_hint = (
            f'on a machine with network access run: python -c "import torch, torchvision; '
            f"m = torchvision.models.detection.{model}(weights='DEFAULT'); "
            f"torch.save(m.state_dict(), '{model}.pth')\" and pass --detector.weights {model}.pth"
        )
        if Path(str(weights)).is_file():
            self.model = builder(weights=None, weights_backbone=None)
            self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        elif _is_weights_name(str(weights)):
            try:
                self.model = builder(weights=str(weights))
            except (OSError, RuntimeError, ValueError) as error:  # urllib's URLError is an OSError
                # not chained: the command line prints the innermost error, and this one says what to do
                raise FileNotFoundError(
                    f"could not download torchvision weights {weights} for {model} ({error}); {offline_hint}"
                ) from None
        else:
            raise FileNotFoundError(
                f"detector weights not found: {weights}. Give DEFAULT (downloaded), or {offline_hint}"
            )
        self.model.eval().to(device)
        self.device = device
        self.score_threshold = score_threshold
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        """See :class:`Detector`."""
        out = []
        for i in range(0, len(frames), self.batch_size):
            chunk = [
                torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255).to(self.device)
                for f in frames[i : i + self.batch_size]
            ]
            for pred in self.model(chunk):
                keep = (pred["labels"] == 1) & (pred["scores"] >= self.score_threshold)
                boxes = torch.cat([pred["boxes"][keep], pred["scores"][keep, None]], dim=1)
                out.append(boxes.cpu().numpy().astype(np.float32))
        return out


@dataclass(frozen=True)
class DetectionScores:
    """How well detections match ground truth (one-to-one, IoU >= a threshold).

    Attributes:
        recall: matched ground-truth boxes / ground-truth boxes.
        precision: matched detections / detections.
        matched: matched pairs.
        detections: detections in the scored frames.
        ground_truth: ground-truth boxes in the scored frames.
    """

    recall: float
    precision: float
    matched: int
    detections: int
    ground_truth: int


def score_detections(
    detections: Mapping[int, FrameBoxes], ground_truth: Mapping[int, FrameBoxes], min_iou: float = 0.5
) -> DetectionScores:
    """Recall and precision of detections against ground truth, frame by frame.

    Each frame's detections and ground-truth boxes are matched one-to-one by maximum total IoU
    (:func:`~isr_lightning.data.mot.assign_gt_ids`); a match counts with IoU ``>= min_iou``.
    Frames of the ground truth without detections count their boxes as missed; detections in
    frames the ground truth does not cover are not scored (an annotation may skip frames).

    Args:
        detections: frame number -> detected boxes.
        ground_truth: frame number -> ground-truth boxes (ids ``>= 0``).
        min_iou: IoU a match needs (0.5: the MOT and PASCAL criterion).

    Returns:
        The scores.
    """
    matched = n_det = n_gt = 0
    for frame, truth in ground_truth.items():
        found = detections.get(frame)
        n_gt += len(truth)
        if found is None or not len(found):
            continue
        n_det += len(found)
        ids = assign_gt_ids(found, FrameBoxes(truth.boxes, np.arange(len(truth)), truth.scores), min_iou).ids
        matched += int((ids >= 0).sum())
    return DetectionScores(matched / max(n_gt, 1), matched / max(n_det, 1), matched, n_det, n_gt)
