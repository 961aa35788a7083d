"""Person-crop transforms: resize, ReID augmentation, normalisation.

Crops of different sizes are resized one by one (bilinear, antialiased, on uint8:
:func:`resize_crops`) to ``(H, W)`` and stacked; augmentation then runs on the
``(K, 3, H, W)`` batch with per-crop random draws from a :class:`torch.Generator`, so a seeded
stream is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_IMAGE_SIZE", "IMAGENET_MEAN", "IMAGENET_STD", "CropTransform", "crop_boxes", "resize_crops"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_crops(crops: Sequence[np.ndarray], size: tuple[int, int]) -> Tensor:
    """The library's one resize of person crops: bilinear, antialiased, on uint8.

    Training (from video or from crop shards), evaluation and prediction all resize crops
    with this function, so the model sees the same pixels wherever a crop comes from.

    Args:
        crops: ``K`` uint8 ``(h_k, w_k, 3)`` RGB arrays.
        size: output ``(H, W)``.

    Returns:
        ``(K, 3, H, W)`` uint8.
    """
    h, w = size
    out = torch.empty(len(crops), 3, h, w, dtype=torch.uint8)
    for k, crop in enumerate(crops):
        t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)
        if t.shape[1:] != (h, w):
            t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
        out[k] = t
    return out


def crop_boxes(frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """Cut integer boxes out of a frame.

    Args:
        frame: ``(H, W, 3)`` uint8 image.
        boxes: ``(K, 4)`` integer-valued ``(x1, y1, x2, y2)`` already clipped to the frame
            (see :func:`isr_lightning.data.mot.filter_boxes`).

    Returns:
        ``K`` arrays ``frame[y1:y2, x1:x2]`` (views).
    """
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes).astype(np.int64).tolist():
        out.append(frame[y1:y2, x1:x2])
    return out


def _gray(x: Tensor) -> Tensor:
    """``(K, 1, H, W)`` luma ``0.299 R + 0.587 G + 0.114 B`` of ``(K, 3, H, W)`` images."""
    gray = x[:, 0] * 0.299
    part = x[:, 1] * 0.587
    gray.add_(part)
    gray.add_(torch.mul(x[:, 2], 0.114, out=part))
    return gray.unsqueeze(1)


DEFAULT_IMAGE_SIZE = (256, 128)
"""The ReID crop size ``(H, W)`` of a transform used without a model."""


@dataclass
class CropTransform:
    """Resize, augment and normalise person crops.

    Args:
        image_size: output ``(H, W)``; ``None`` (default): the model's ``image_size``, which the
            data modules read when training starts (:meth:`for_model`), so a recipe states the
            crop size once, on the model. Without a model, :data:`DEFAULT_IMAGE_SIZE`.
        mean: per-channel mean subtracted after scaling to ``[0, 1]``.
        std: per-channel std.
        train: apply augmentation (otherwise resize + normalise only).
        flip_p: probability of a horizontal flip.
        pad: zero padding (pixels) before a random crop back to ``image_size``; 0 disables.
        color_jitter: strength ``s`` of brightness/contrast/saturation jitter (each factor
            uniform in ``[1 - s, 1 + s]``); 0 disables.
        erase_p: probability of random erasing (area 2-40 %, aspect 0.3-3.3, filled with 0
            after normalisation, i.e. the mean colour).
    """

    image_size: tuple[int, int] | None = None
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    train: bool = True
    flip_p: float = 0.5
    pad: int = 10
    color_jitter: float = 0.2
    erase_p: float = 0.5

    def __post_init__(self) -> None:
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    def for_model(self, model: object | None) -> CropTransform:
        """This transform at the crop size of ``model`` (its ``image_size``), the one place the size is set.

        Args:
            model: the LightningModule being trained (``None``: none attached yet).

        Returns:
            The transform with ``image_size`` set: the model's when this one has none, else
            :data:`DEFAULT_IMAGE_SIZE` without a model.

        Raises:
            ValueError: this transform states another size than the model's (naming both).
        """
        size = getattr(model, "image_size", None)
        size = None if size is None else (int(size[0]), int(size[1]))
        if self.image_size is None:
            return replace(self, image_size=size or DEFAULT_IMAGE_SIZE)
        if size is not None and self.image_size != size:
            raise ValueError(
                f"the data's crop size transform.image_size={list(self.image_size)} differs from the model's "
                f"image_size={list(size)}: state it once, on the model (model.init_args.image_size), and leave "
                "the data's unset"
            )
        return self

    def resize(self, crops: Sequence[np.ndarray]) -> Tensor:
        """Resize crops to ``image_size`` (see :func:`resize_crops`).

        Args:
            crops: ``K`` uint8 ``(h_k, w_k, 3)`` arrays.

        Returns:
            ``(K, 3, H, W)`` uint8.
        """
        return resize_crops(crops, self.image_size)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` per channel on ``(K, 3, H, W)``."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, 3, 1, 1)
        return torch.sub(x, mean).div_(std)

    def augment(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment ``(K, 3, H, W)`` images in ``[0, 1]`` (before normalisation)."""
        k, _, h, w = x.shape
        if k == 0:
            return x
        g = generator

        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=g)

        x = x.clone()
        if self.flip_p > 0:
            flip = rand(k) < self.flip_p
            x[flip] = x[flip].flip(-1)
        if self.pad > 0:
            p = self.pad
            padded = F.pad(x, (p, p, p, p))
            offs = torch.randint(0, 2 * p + 1, (k, 2), generator=g).tolist()
            x = torch.stack([padded[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offs)])
        if self.color_jitter > 0:
            s = self.color_jitter
            bright = 1 + (rand(k) * 2 - 1) * s
            contrast = 1 + (rand(k) * 2 - 1) * s
            sat = 1 + (rand(k) * 2 - 1) * s
            # in place on x (a fresh tensor here): fresh 100 kB+ tensors cost page faults each
            x.mul_(bright.view(k, 1, 1, 1))
            mean = _gray(x).mean(dim=(2, 3), keepdim=True)
            x.sub_(mean).mul_(contrast.view(k, 1, 1, 1)).add_(mean)
            gray = _gray(x)
            x.sub_(gray).mul_(sat.view(k, 1, 1, 1)).add_(gray)
            x.clamp_(0.0, 1.0)
        return x

    def erase(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Random erasing on normalised ``(K, 3, H, W)`` images (fill 0 = the mean colour)."""
        if self.erase_p <= 0:
            return x
        k, _, h, w = x.shape
        g = generator
        for i in range(k):
            if torch.rand(1, generator=g).item() >= self.erase_p:
                continue
            for _ in range(10):
                area = h * w * (0.02 + 0.38 * torch.rand(1, generator=g).item())
                log_r = math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * torch.rand(1, generator=g).item()
                r = math.exp(log_r)
                eh, ew = round(math.sqrt(area * r)), round(math.sqrt(area / r))
                if 0 < eh < h and 0 < ew < w:
                    y0 = int(torch.randint(0, h - eh + 1, (1,), generator=g))
                    x0 = int(torch.randint(0, w - ew + 1, (1,), generator=g))
                    x[i, :, y0 : y0 + eh, x0 : x0 + ew] = 0.0
                    break
        return x

    def __call__(self, crops: Sequence[np.ndarray], generator: torch.Generator | None = None) -> Tensor:
        """Transform crops.

        Args:
            crops: ``K`` uint8 ``(h_k, w_k, 3)`` RGB arrays.
            generator: random source for augmentation.

        Returns:
            ``(K, 3, H, W)`` float32 normalised crops.
        """
        return self.from_resized(self.resize(crops), generator)

    def from_resized(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment (in train mode) and normalise already resized ``(K, 3, H, W)`` crops.

        Args:
            x: uint8 crops (as :meth:`resize` gives them) or float crops in ``[0, 1]``.
            generator: random source for augmentation.

        Returns:
            ``(K, 3, H, W)`` float32 normalised crops.
        """
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.train:
            x = self.augment(x, generator)
        x = self.normalize(x)
        if self.train:
            x = self.erase(x, generator)
        return x
