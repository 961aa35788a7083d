"""ReID benchmark datasets: Market-1501, MSMT17 (V1/V2), CUHK03-NP and Market-layout folders.

Every loader returns a :class:`ReIDSplit` of ``(path, pid, camid)`` items (cameras 0-based).
Junk gallery items (person id ``-1``) stay in the gallery: the evaluation protocol decides what
they do (:class:`~isr_lightning.evaluation.ReIDProtocol`, ignored by default, as the official
code does); distractors (id ``0``) are ordinary negatives; nothing is special-cased on the
query side. Training items drop junk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from isr_lightning.data.transforms import CropTransform

__all__ = [
    "DATASETS",
    "ReIDImageDataset",
    "ReIDItem",
    "ReIDSplit",
    "eval_transform",
    "format_market_name",
    "load_cuhk03_np",
    "load_market1501",
    "load_market_layout",
    "load_msmt17",
    "load_reid_dataset",
    "parse_market_name",
]

_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class ReIDItem(NamedTuple):
    """One image: ``path``, person id ``pid``, 0-based camera id ``camid``."""

    path: str
    pid: int
    camid: int


@dataclass
class ReIDSplit:
    """The three splits of a ReID benchmark.

    Attributes:
        name: dataset name.
        root: folder the items were read from.
        query: query items.
        gallery: gallery items, junk (person id ``-1``) included: the evaluation protocol
            decides what junk does (:attr:`~isr_lightning.evaluation.ReIDProtocol.ignore_junk`).
        train: training items (may be empty).
    """

    name: str
    root: str
    query: list[ReIDItem]
    gallery: list[ReIDItem]
    train: list[ReIDItem]

    def summary(self) -> dict[str, int]:
        """Counts of items, ids and cameras per split."""
        out = {}
        for split in ("query", "gallery", "train"):
            items = getattr(self, split)
            out[f"n_{split}"] = len(items)
            out[f"n_{split}_ids"] = len({i.pid for i in items})
            out[f"n_{split}_cams"] = len({i.camid for i in items})
        return out


def parse_market_name(name: str) -> tuple[int, int]:
    """Person id and 1-based camera of a Market-1501 image name.

    Example: ``0002_c1s1_000451_03.jpg`` -> ``(2, 1)``; ``-1_c3s1_000001_01.jpg`` -> ``(-1, 3)``
    (junk); ``0000_c12s1_000001_01.jpg`` -> ``(0, 12)`` (a distractor seen by camera 12).

    Args:
        name: file name (without folder).

    Returns:
        ``(person id, camera)``, the camera as written (1-based).

    Raises:
        ValueError: the name does not start with ``PID_cCAMERA``.
    """
    match = _MARKET_NAME.match(name)
    if match is None:
        raise ValueError(
            f"cannot parse person id and camera from {name!r}; expected names "
            "like 0002_c1s1_000451_03.jpg (person 2, camera 1)"
        )
    return int(match.group(1)), int(match.group(2))


def format_market_name(pid: int, camera: int, frame: int, sequence: int = 1, box: int = 1, ext: str = ".jpg") -> str:
    """A Market-1501 image name, ``PPPP_cCsS_FFFFFF_BB.jpg``; the inverse of :func:`parse_market_name`.

    Example: ``format_market_name(2, 1, 451, box=3)`` -> ``"0002_c1s1_000451_03.jpg"``;
    ``format_market_name(-1, 3, 1)`` -> ``"-1_c3s1_000001_01.jpg"``.

    Args:
        pid: person id: ``>= 1`` a person, ``0`` a distractor, ``-1`` junk.
        camera: 1-based camera.
        frame: frame number within the camera's sequence.
        sequence: 1-based sequence (recording) of the camera.
        box: 1-based box of the frame.
        ext: file extension, with its dot.

    Returns:
        The file name.

    Raises:
        ValueError: ``pid < -1`` or ``camera < 1``.
    """
    if pid < -1 or camera < 1:
        raise ValueError(f"need pid >= -1 and camera >= 1, got pid={pid}, camera={camera}")
    person = f"{pid:04d}" if pid >= 0 else "-1"
    return f"{person}_c{camera}s{sequence}_{frame:06d}_{box:02d}{ext}"


def _parse_market_folder(folder: Path, drop_junk: bool) -> list[ReIDItem]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: folder not found. A Market-1501 layout needs query/, "
            "bounding_box_test/ and (for training) bounding_box_train/ with images named like "
            "0002_c1s1_000451_03.jpg"
        )
    items = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in _IMAGE_EXTS:
            continue
        try:
            pid, cam = parse_market_name(path.name)
        except ValueError as err:
            raise ValueError(f"{folder}: {err}") from None
        if pid == -1 and drop_junk:
            continue
        if cam < 1:
            raise ValueError(f"{folder}: camera numbers in names are 1-based, got c{cam} in {path.name}")
        items.append(ReIDItem(str(path), pid, cam - 1))
    if not items:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(_IMAGE_EXTS)}) found")
    return items


def load_market_layout(root: str | Path, name: str = "folder", require_train: bool = False) -> ReIDSplit:
    """Read any folder in Market-1501 layout (``query/``, ``bounding_box_test/``, ...).

    Args:
        root: folder holding ``query/`` and ``bounding_box_test/`` (and optionally
            ``bounding_box_train/``).
        name: dataset name stored in the split.
        require_train: raise if ``bounding_box_train/`` is missing.

    Returns:
        The split; junk (id ``-1``) is kept in the gallery (the protocol ignores it) and dropped
        from the training items.

    Raises:
        FileNotFoundError: naming the missing or empty folder.
        ValueError: naming the folder of a file whose name cannot be parsed.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root not found")
    query = _parse_market_folder(root / "query", drop_junk=False)
    gallery = _parse_market_folder(root / "bounding_box_test", drop_junk=False)  # the protocol decides on junk
    train_dir = root / "bounding_box_train"
    train = _parse_market_folder(train_dir, drop_junk=True) if train_dir.is_dir() or require_train else []
    return ReIDSplit(name, str(root), query, gallery, train)


def _find_subdir(root: Path, candidates: tuple[str, ...], marker: str) -> Path:
    """``root`` itself if it contains ``marker``, else the first candidate child that does."""
    if (root / marker).exists():
        return root
    for cand in candidates:
        if (root / cand / marker).exists():
            return root / cand
    return root


def load_market1501(root: str | Path) -> ReIDSplit:
    """Market-1501 (``root`` or ``root/Market-1501-v15.09.15``).

    Expected: 3,368 queries; 15,913 gallery images once the protocol ignores the 2,798 junk
    (id ``-1``, kept in the split's gallery); 751 test ids, 6 cameras.
    """
    root = _find_subdir(Path(root), ("Market-1501-v15.09.15", "Market-1501", "market1501"), "query")
    return load_market_layout(root, name="market1501")


def load_cuhk03_np(root: str | Path, variant: str = "detected") -> ReIDSplit:
    """CUHK03-NP (new protocol), ``detected`` or ``labeled`` boxes, Market-like layout.

    ``root`` may be the ``cuhk03-np`` folder or its parent, or the variant folder itself.
    Expected: 1,400 queries, 5,332 gallery, 700 test ids.
    """
    if variant not in ("detected", "labeled"):
        raise ValueError(f"variant must be 'detected' or 'labeled', got {variant!r}")
    root = Path(root)
    if not (root / "query").exists():
        base = _find_subdir(root, ("cuhk03-np", "cuhk03_np", "CUHK03-NP"), variant)
        root = base / variant
    return load_market_layout(root, name=f"cuhk03-np-{variant}")


def _read_msmt_list(list_file: Path, image_dir: Path) -> list[ReIDItem]:
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file.parent}: missing MSMT17 list file {list_file.name}")
    items = []
    for line_no, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"{list_file}:{line_no}: expected 'PATH PID', got {line!r}")
        rel, pid = parts[0], int(parts[1])
        # Names like 0000/0000_000_01_0303morning_0015_0.jpg: the third field is the camera.
        fields = Path(rel).name.split("_")
        try:
            cam = int(fields[2])
        except (IndexError, ValueError) as err:
            raise ValueError(f"{list_file}:{line_no}: cannot parse the camera from {rel!r}") from err
        items.append(ReIDItem(str(image_dir / rel), pid, cam - 1))
    if not items:
        raise ValueError(f"{list_file}: empty list")
    return items


def load_msmt17(root: str | Path) -> ReIDSplit:
    """MSMT17, V1 (``train/``, ``test/``) or V2 (``mask_train_v2/``, ``mask_test_v2/``) layout.

    ``root`` is the folder with ``list_query.txt`` and ``list_gallery.txt`` (or its parent
    holding ``MSMT17_V1``/``MSMT17_V2``). Queries and gallery come from the list files; the
    camera is parsed from the image name. Expected: 11,659 queries, 82,161 gallery, 3,060 test
    ids, 15 cameras.
    """
    root = _find_subdir(Path(root), ("MSMT17_V2", "MSMT17_V1", "MSMT17"), "list_query.txt")
    if not (root / "list_query.txt").is_file():
        raise FileNotFoundError(
            f"{root}: not an MSMT17 folder (expected list_query.txt, list_gallery.txt and test/ or mask_test_v2/)"
        )
    if (root / "mask_test_v2").is_dir():
        test_dir, train_dir = root / "mask_test_v2", root / "mask_train_v2"
    elif (root / "test").is_dir():
        test_dir, train_dir = root / "test", root / "train"
    else:
        raise FileNotFoundError(f"{root}: MSMT17 image folder test/ (V1) or mask_test_v2/ (V2) missing")
    query = _read_msmt_list(root / "list_query.txt", test_dir)
    gallery = [i for i in _read_msmt_list(root / "list_gallery.txt", test_dir) if i.pid != -1]
    train: list[ReIDItem] = []
    for name in ("list_train.txt", "list_val.txt"):
        if (root / name).is_file():
            train += _read_msmt_list(root / name, train_dir)
    return ReIDSplit("msmt17", str(root), query, gallery, train)


DATASETS: dict[str, Callable[[str | Path], ReIDSplit]] = {
    "market1501": load_market1501,
    "msmt17": load_msmt17,
    "cuhk03-np-detected": lambda root: load_cuhk03_np(root, "detected"),
    "cuhk03-np-labeled": lambda root: load_cuhk03_np(root, "labeled"),
    "folder": load_market_layout,
}


def load_reid_dataset(name: str, root: str | Path) -> ReIDSplit:
    """Load a benchmark by name: one of :data:`DATASETS`.

    Raises:
        ValueError: on an unknown name.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name](root)


class ReIDImageDataset(Dataset):
    """Images of a list of :class:`ReIDItem`, for evaluation or training.

    Each sample is a dict ``{"image", "pid", "camid", "index"}``; ``index`` is the position in
    ``items`` (the :class:`~isr_lightning.evaluation.ReIDMetric` uses it to drop the duplicates
    of a padded ``DistributedSampler``).

    Args:
        items: the items.
        transform: maps a PIL RGB image to a tensor; ``None`` gives ``(3, H, W)`` float in [0, 1].
    """

    def __init__(self, items: list[ReIDItem], transform: Callable[[Image.Image], Tensor] | None = None) -> None:
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def load_image(self, index: int) -> Image.Image:
        """The raw RGB image of item ``index``."""
        with Image.open(self.items[index].path) as img:
            return img.convert("RGB")

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        img = self.load_image(index)
        if self.transform is not None:
            image = self.transform(img)
        else:
            image = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
            image = image.float() / 255.0
        return {"image": image, "pid": item.pid, "camid": item.camid, "index": index}


@dataclass(frozen=True)
class _EvalImageTransform:
    """A PIL image -> ``(3, H, W)`` normalised tensor through the training crop transform."""

    crop: CropTransform

    def __call__(self, img: Image.Image) -> Tensor:
        return self.crop([np.array(img.convert("RGB"))])[0]


def eval_transform(data_config: dict[str, Any]) -> Callable[[Image.Image], Tensor]:
    """Resize to ``input_size`` and normalise with ``mean``/``std`` (no augmentation).

    The resize is the one training uses (:func:`~isr_lightning.data.transforms.resize_crops`),
    so a crop gets the same tensor in training (without augmentation), evaluation and
    prediction.

    Args:
        data_config: ``{"input_size": (3, H, W), "mean": (3,), "std": (3,)}``, e.g.
            ``ISRModule.data_config``.

    Returns:
        A picklable callable from an RGB PIL image to a ``(3, H, W)`` float32 tensor.
    """
    _, h, w = data_config["input_size"]
    crop = CropTransform(image_size=(h, w), mean=tuple(data_config["mean"]), std=tuple(data_config["std"]), train=False)
    return _EvalImageTransform(crop)
