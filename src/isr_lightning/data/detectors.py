"""Person detectors that turn raw video frames into MOT detections.

A detector is any callable ``frames (K, H, W, 3) uint8 -> list of K arrays (M_k, 5)`` with
rows ``(x1, y1, x2, y2, score)`` (:class:`Detector`). Two are provided:

* :class:`BackgroundSubtractionDetector` needs no weights: moving blobs against the median of
  the frames of one call (one ``--chunk`` of ``isr-lightning detect``), for static cameras (a
  baseline, and what the tests use);
* :class:`TorchvisionDetector` wraps a torchvision detection model (Faster R-CNN by default)
  whose weights file the user provides, keeping the COCO ``person`` class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

__all__ = ["BackgroundSubtractionDetector", "Detector", "TorchvisionDetector"]


class Detector(ABC):
    """Frames -> person boxes (subclass it for a new detector; ``isr-lightning detect --detector NAME``)."""

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
    """Moving-blob detector for static cameras (no weights).

    The background is the per-pixel median of the frames given in one call; pixels whose
    colour differs from it by more than ``threshold`` form blobs (after a morphological
    opening), and each blob's bounding box with an area of at least ``min_area`` pixels and
    a height/width ratio in ``aspect`` is a detection scored by its foreground fraction.

    Args:
        threshold: colour difference (0-255, max over channels) that counts as foreground.
        min_area: minimum box area in pixels.
        aspect: allowed ``height / width`` range (people are taller than wide).
    """

    def __init__(self, threshold: float = 30.0, min_area: int = 64, aspect: tuple[float, float] = (0.8, 5.0)) -> None:
        self.threshold = threshold
        self.min_area = min_area
        self.aspect = aspect

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        """See :class:`Detector`."""
        frames = np.asarray(frames)
        background = np.median(frames, axis=0)
        out = []
        for frame in frames:
            mask = (np.abs(frame.astype(np.float32) - background).max(axis=-1)) > self.threshold
            mask = ndimage.binary_opening(mask, iterations=1)
            labels, _ = ndimage.label(mask)
            boxes = []
            for k, sl in enumerate(ndimage.find_objects(labels), start=1):
                if sl is None:
                    continue
                y, x = sl
                h, w = y.stop - y.start, x.stop - x.start
                if h * w < self.min_area or not self.aspect[0] <= h / max(w, 1) <= self.aspect[1]:
                    continue
                score = float((labels[sl] == k).mean())
                boxes.append([x.start, y.start, x.stop, y.stop, score])
            out.append(np.array(boxes, dtype=np.float32).reshape(-1, 5))
        return out


class TorchvisionDetector(Detector):
    """A torchvision detection model restricted to the COCO ``person`` class.

    No weights are downloaded: pass the path of a ``state_dict`` saved from
    ``torchvision.models.detection.<model>(weights=...)`` on a machine with network access
    (see ``docs/data.md``).

    Args:
        weights: path of the model's ``state_dict`` file.
        model: torchvision detection builder name.
        score_threshold: minimum person score kept.
        device: torch device.
        batch_size: frames per forward pass.

    Raises:
        FileNotFoundError: ``weights`` is missing (the message says how to get it).
    """

    def __init__(
        self,
        weights: str | Path | None,
        model: str = "fasterrcnn_resnet50_fpn",
        score_threshold: float = 0.5,
        device: str = "cpu",
        batch_size: int = 4,
    ) -> None:
        import torchvision

        if weights is None or not Path(weights).is_file():
            raise FileNotFoundError(
                f"detector weights not found: {weights}. torchvision cannot download them here; "
                f'on a machine with network access run: python -c "import torch, torchvision; '
                f"m = torchvision.models.detection.{model}(weights='DEFAULT'); "
                f"torch.save(m.state_dict(), '{model}.pth')\" and pass --detector.weights {model}.pth"
            )
        builder = getattr(torchvision.models.detection, model)
        self.model = builder(weights=None, weights_backbone=None)
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
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
