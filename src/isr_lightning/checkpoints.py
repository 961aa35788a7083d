"""Checkpoints in: the released ISR weights, isr-lightning checkpoints and plain backbone weights.

The released ISR model (Dou et al., ICCV 2023) is a timm 0.4.12 ``swin_base_patch4_window7_224``
followed by ``nn.Linear(1024, 512)``, saved as ``{"state_dict": {"model.*": ..., "feat.*": ...}}``.
timm 0.4.12's Swin applied PatchMerging at the end of stage ``i`` (``layers.i.downsample``);
current timm applies it at the start of stage ``i + 1`` (``layers.{i+1}.downsample``), with the
same weight shapes and the same 2x2 token order. timm 0.4.12 also stored the
``relative_position_index`` and ``attn_mask`` buffers (recomputed by current timm) and a
1000-class ``head``. :func:`remap_isr_release_state_dict` translates all of that; the pooling
(token average after the final norm) is what current timm's Swin does with ``num_classes=0``.

As timm's ``_builder.py`` does, the loaders take plain modules (a backbone and a projection)
and a source, never a model class: ``ISRModule`` imports them, not the other way round
(:meth:`~isr_lightning.module.ISRModule.from_isr_release` builds a model from the release).
:func:`load_model`, the one way from a file to a model ready to embed, finds the class by the
name a checkpoint records (``hyper_parameters["_class_path"]``, as LightningCLI records it), so
it imports no model module either.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule

from isr_lightning.bundled_weights import bundled_state_dict, find_bundled_weights, is_bundled_name
from isr_lightning.storage import local_copy

__all__ = [
    "CLASS_PATH_KEY",
    "INSTANTIATOR_KEY",
    "ISR_RELEASE_BACKBONE",
    "ISR_RELEASE_URL",
    "LIGHTNING_INSTANTIATOR",
    "load_model",
    "load_state_dict_exactly",
    "load_weights",
    "read_isr_release",
    "read_state_dict",
    "remap_isr_release_state_dict",
]

ISR_RELEASE_URL = "https://cloud.tsinghua.edu.cn/f/facfc952bee74940b106/?dl=1"
"""Download link of the released ISR Swin-B weights, from the authors' README."""
ISR_RELEASE_BACKBONE = "swin_base_patch4_window7_224"
"""timm name of the released model's backbone (input 224x224, features 1024, embedding 512)."""
_ISR_RELEASE_FILE_NAME = "isr_swin_base_patch4_window7_224.pth"

CLASS_PATH_KEY = "_class_path"
"""The hyperparameter naming a checkpoint's LightningModule class (LightningCLI's own key; the
library's modules add it to every checkpoint they save)."""
INSTANTIATOR_KEY = "_instantiator"
LIGHTNING_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"
"""How ``load_from_checkpoint`` builds a class named by ``_class_path`` (Lightning's allow-listed
jsonargparse instantiator, which LightningCLI records beside it)."""
_ISR_MODULE = "isr_lightning.module.ISRModule"
_FINE_TUNE_MODULE = "isr_lightning.finetune.module.ReIDFineTuneModule"

# Buffers that timm 0.4.12 saved and current timm recomputes (non-persistent).
_RECOMPUTED_BUFFERS = ("relative_position_index", "attn_mask")
_OLD_SWIN_DOWNSAMPLE = re.compile(r"^layers\.(\d+)\.downsample\.")


def _is_url(source: str | Path) -> bool:
    return str(source).startswith(("http://", "https://"))


def _download(url: str, file_name: str) -> Path:
    """Download ``url`` into the torch hub cache once and return the local file."""
    target = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)
        except Exception as error:  # urllib raises URLError, HTTPError, TimeoutError, ...
            raise RuntimeError(
                f"could not download weights from {url}: {error}. Without network access, download the"
                f" file elsewhere and pass its local path (or copy it to {target})."
            ) from error
    return target


def read_state_dict(source: str | Path) -> dict[str, Tensor]:
    """Read the tensors of a checkpoint file or URL.

    Accepts Lightning ``.ckpt`` files and ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers,
    plain state dicts (``.pth``, ``.pt``, ``.bin``) and ``.safetensors``. A leading ``module.``
    (``DataParallel``) is removed from every key.

    Args:
        source: local path, or an ``http(s)://`` URL downloaded once into the torch hub cache.

    Returns:
        The state dict, keys to tensors.

    Raises:
        FileNotFoundError: ``source`` is not a file.
        RuntimeError: the URL could not be downloaded, or the file could not be read.
        ValueError: the file holds no state dict.
    """
    if _is_url(source):
        path = _download(str(source), Path(str(source).split("?")[0]).name or "weights.pth")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            checkpoint: Any = load_file(str(path))
        else:
            # weights_only: tensors and plain containers only; never runs code from the file.
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(f"could not read weights from {path}: {error}") from error
    for key in ("state_dict", "model"):
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def _clean_backbone_state_dict(state_dict: Mapping[str, Tensor], drop_prefixes: Iterable[str]) -> dict[str, Tensor]:
    """Drop recomputed buffers and classifier weights; move old-timm Swin downsampling."""
    drop_prefixes = tuple(drop_prefixes)
    # timm 0.4.12 Swin: ``layers.0.downsample`` has weights; current timm: never (Identity).
    old_swin = any(k.startswith("layers.0.downsample.") for k in state_dict)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in _RECOMPUTED_BUFFERS or key.startswith(drop_prefixes):
            continue
        if key == "absolute_pos_embed":
            raise ValueError(
                "the checkpoint has an absolute position embedding (Swin ape=True), which current timm's"
                " Swin does not support"
            )
        if old_swin:
            key = _OLD_SWIN_DOWNSAMPLE.sub(lambda m: f"layers.{int(m.group(1)) + 1}.downsample.", key)
        out[key] = value
    return out


def remap_isr_release_state_dict(
    state_dict: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Translate the released ISR checkpoint to current timm's backbone and a projection.

    Keys ``model.*`` (timm 0.4.12 Swin) become backbone keys: ``layers.i.downsample.*`` moves to
    ``layers.{i+1}.downsample.*``, the ``relative_position_index``/``attn_mask`` buffers and the
    1000-class ``head.*`` are dropped. Keys ``feat.*`` (``Linear(1024, D)``) become the
    projection's ``weight``/``bias``. New-layout Swin weights pass through unchanged.

    Args:
        state_dict: ``checkpoint["state_dict"]`` of the release (a ``module.`` prefix is allowed).

    Returns:
        ``(backbone_state_dict, projection_state_dict)``, for ``ISRModule.backbone`` (timm model
        with ``num_classes=0``) and ``ISRModule.projection``.

    Raises:
        ValueError: keys other than ``model.*``/``feat.*``, no ``feat.weight``, or an absolute
            position embedding.
    """
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    other = sorted(k for k in state_dict if not k.startswith(("model.", "feat.")))
    if other or "feat.weight" not in state_dict:
        raise ValueError(
            "not an ISR release state dict (expected keys model.* and feat.weight/feat.bias);"
            f" unexpected keys: {other[:5]}"
        )
    backbone = {k.removeprefix("model."): v for k, v in state_dict.items() if k.startswith("model.")}
    projection = {k.removeprefix("feat."): v for k, v in state_dict.items() if k.startswith("feat.")}
    return _clean_backbone_state_dict(backbone, drop_prefixes=("head.",)), projection


def load_state_dict_exactly(
    target: nn.Module, state_dict: Mapping[str, Tensor], *, what: str, source: str | Path
) -> None:
    """``target.load_state_dict(state_dict, strict=True)`` with an error naming the file and a few bad keys.

    BatchNorm ``num_batches_tracked`` counters absent from ``state_dict`` keep the target's
    values: many published files leave them out, and they do not change the output.

    Args:
        target: the module to fill, in place.
        state_dict: its tensors, with ``target``'s key names.
        what: what ``target`` is, for the error message (``"projection"``).
        source: where ``state_dict`` came from, for the error message.

    Raises:
        ValueError: missing or unexpected keys, or a tensor whose shape does not fit.
    """
    own = target.state_dict()
    counters = {k: v for k, v in own.items() if k.endswith(".num_batches_tracked") and k not in state_dict}
    state_dict = {**state_dict, **counters}
    expected = set(own)
    missing = sorted(expected - set(state_dict))
    unexpected = sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{source}: the weights do not match the {what}: {len(missing)} missing keys, e.g. {missing[:5]};"
            f" {len(unexpected)} unexpected keys, e.g. {unexpected[:5]}"
        )
    try:
        target.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"{source}: the weights do not fit the {what}: {error}") from error


def _classifier_prefixes(backbone: nn.Module) -> tuple[str, ...]:
    """Prefixes of the classifier weights that a ``num_classes=0`` timm model no longer has."""
    names = getattr(backbone, "pretrained_cfg", {}).get("classifier") or ("head", "fc", "classifier")
    names = (names,) if isinstance(names, str) else tuple(names)
    prefixes = {f"{n}." for n in names} | {f"{n.split('.')[0]}." for n in names}
    # Keep what the model has (e.g. a ``head.norm`` that survives ``num_classes=0``).
    return tuple(p for p in prefixes if not any(k.startswith(p) for k in backbone.state_dict()))


def _default_backbone_name(backbone: nn.Module) -> str:
    """The timm architecture name of ``backbone`` (``pretrained_cfg``), else its class name."""
    return str(getattr(backbone, "pretrained_cfg", {}).get("architecture") or type(backbone).__name__)


def load_weights(
    backbone: nn.Module,
    projection: nn.Module,
    source: str | Path,
    *,
    backbone_name: str | None = None,
) -> str:
    """Load weights into a backbone and the projection after it, in place.

    The kind of file is read from its keys:

    - ``isr-lightning``: an :class:`~isr_lightning.module.ISRModule` checkpoint (``backbone.*``,
      ``projection.*``): loaded whole, and nothing else may be in it.
    - ``isr-release``: the released ISR checkpoint (``model.*``, ``feat.*``): remapped with
      :func:`remap_isr_release_state_dict` into backbone and projection.
    - ``backbone``: anything else is a backbone state dict (e.g. a timm checkpoint; classifier
      weights are dropped); the projection keeps its initialisation.
    - ``bundled``: ``source`` is the name of weights an installed package ships
      (``"imagenet"``; see :mod:`isr_lightning.bundled_weights`); the projection keeps its
      initialisation.

    Args:
        backbone: the timm model (``num_classes=0``) to fill; its architecture must match the weights.
        projection: the module after the backbone (``nn.Linear(F, D)``; ``nn.Identity`` takes no
            weights, so an ISR checkpoint's projection does not fit it).
        source: local file, ``http(s)://`` URL (see :func:`read_state_dict`) or bundled name.
        backbone_name: timm name of ``backbone``, to find bundled weights and for messages;
            by default its ``pretrained_cfg["architecture"]``.

    Returns:
        The kind of weights that was loaded: ``isr-lightning``, ``isr-release``, ``backbone``
        or ``bundled``.

    Raises:
        FileNotFoundError: ``source`` does not exist, or the package of bundled weights is
            not installed.
        ValueError: the weights do not match the modules; the message names the file and a few
            missing and unexpected keys.
    """
    name = backbone_name or _default_backbone_name(backbone)
    if is_bundled_name(source):
        bundled = find_bundled_weights(str(source), name)
        backbone_sd = bundled_state_dict(bundled, backbone)
        load_state_dict_exactly(backbone, backbone_sd, what=f"backbone ({bundled.backbone})", source=bundled.path())
        return "bundled"
    state_dict = read_state_dict(source)
    if any(k.startswith(("backbone.", "projection.")) for k in state_dict):
        encoder = nn.ModuleDict({"backbone": backbone, "projection": projection})
        load_state_dict_exactly(encoder, state_dict, what="ISRModule", source=source)
        return "isr-lightning"
    if "feat.weight" in state_dict and any(k.startswith("model.") for k in state_dict):
        backbone_sd, projection_sd = remap_isr_release_state_dict(state_dict)
        load_state_dict_exactly(backbone, backbone_sd, what=f"backbone ({name})", source=source)
        load_state_dict_exactly(projection, projection_sd, what="projection", source=source)
        return "isr-release"
    backbone_sd = _clean_backbone_state_dict(state_dict, drop_prefixes=_classifier_prefixes(backbone))
    load_state_dict_exactly(backbone, backbone_sd, what=f"backbone ({name})", source=source)
    return "backbone"


def read_isr_release(source: str | Path = ISR_RELEASE_URL) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Read the released ISR checkpoint and remap it to a current timm backbone and a projection.

    Args:
        source: the released ``swin_base_patch4_window7_224.pth`` (local path), or a URL; by
            default the authors' link, downloaded once into the torch hub cache.

    Returns:
        ``(backbone_state_dict, projection_state_dict)`` as :func:`remap_isr_release_state_dict`
        returns them; the embedding size is ``projection_state_dict["weight"].shape[0]``.

    Raises:
        RuntimeError: the weights could not be downloaded or read.
        ValueError: the file is not an ISR release.
    """
    if _is_url(source) and str(source) == ISR_RELEASE_URL:
        source = _download(ISR_RELEASE_URL, _ISR_RELEASE_FILE_NAME)
    state_dict = read_state_dict(source)
    if "feat.weight" not in state_dict:
        raise ValueError(f"{source} is not an ISR release checkpoint (no feat.weight)")
    return remap_isr_release_state_dict(state_dict)


def _import_class(class_path: str) -> type:
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"the checkpoint's model class {class_path!r} cannot be imported: {error}") from error


def load_model(source: str | Path, map_location: str | torch.device = "cpu") -> LightningModule:
    """Turn any model file the library reads into a model ready to embed, in eval mode.

    The one way from a file to a model: ``isr-lightning evaluate`` and ``export``, the demo and
    the Python API use it, and ``isr-lightning predict --ckpt_path`` reads the same record.

    - A Lightning checkpoint of an :class:`~isr_lightning.ISRModule`, a
      :class:`~isr_lightning.finetune.ReIDFineTuneModule` or a subclass of either: the class is
      the one its hyperparameters name (``_class_path``; checkpoints that predate the record are
      told apart by their keys, a fine-tuned model having a BNNeck), built with the saved
      hyperparameters, so nothing about the architecture is restated.
    - The released ISR weights (``model.*``, ``feat.*``): an ``ISRModule`` holding them
      (:meth:`~isr_lightning.ISRModule.from_isr_release`).

    Args:
        source: the file (``.ckpt``, or the release's ``.pth``): a local path or a URL on
            object storage (``s3://bucket/run/checkpoints/last.ckpt``).
        map_location: device of the loaded tensors.

    Returns:
        The model (with ``embed``, ``data_config``, ``image_size``), in eval mode.

    Raises:
        FileNotFoundError: ``source`` is not a file.
        ValueError: the file holds weights only (a backbone state dict, which needs an
            architecture: give it as ``weights=``), or names a class that cannot be imported.
    """
    with local_copy(source) as path:
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {source}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{source}: not a checkpoint torch can read: {error}") from error
        state_dict = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
        hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
        if isinstance(state_dict, Mapping) and isinstance(hparams, Mapping):
            fine_tuned = any(str(key).startswith("bnneck.") for key in state_dict)
            class_path = hparams.get(CLASS_PATH_KEY) or (_FINE_TUNE_MODULE if fine_tuned else _ISR_MODULE)
            # weights=None: the state dict holds them (older checkpoints recorded the file they started from)
            model = _import_class(class_path).load_from_checkpoint(str(path), map_location=map_location, weights=None)
            return model.eval()
        weights = state_dict if isinstance(state_dict, Mapping) else checkpoint
        release = isinstance(weights, Mapping) and "feat.weight" in weights
        if release and any(str(k).startswith("model.") for k in weights):
            return _import_class(_ISR_MODULE).from_isr_release(path).to(map_location).eval()
        raise ValueError(
            f"{source} holds weights without a model (no Lightning hyperparameters): choose the architecture and"
            " give the file as its weights, e.g. ISRModule(backbone=..., weights=PATH) or --model.init_args.weights"
        )
