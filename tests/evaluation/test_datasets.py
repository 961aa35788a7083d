"""Dataset loaders: Market-1501 layout, MSMT17 lists, CUHK03-NP, junk/distractors, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from isr_lightning.evaluation import (
    ReIDImageDataset,
    eval_transform,
    load_cuhk03_np,
    load_market1501,
    load_msmt17,
    load_reid_dataset,
)
from isr_lightning.evaluation.datasets import format_market_name, parse_market_name


def _img(path: Path, color=(10, 20, 30), size=(16, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def make_market(root: Path) -> Path:
    for name in ["0002_c1s1_000451_03.jpg", "0007_c3s3_000011_01.jpg"]:
        _img(root / "query" / name)
    for name in [
        "0002_c2s1_000100_01.jpg",  # positive
        "0002_c1s1_000500_01.jpg",  # same id, same camera
        "0000_c1s1_000001_01.jpg",  # distractor: kept
        "-1_c1s1_000002_01.jpg",  # junk: kept, for the protocol to ignore
        "0007_c6s4_000002_01.jpg",
    ]:
        _img(root / "bounding_box_test" / name)
    _img(root / "bounding_box_train" / "0001_c1s1_000001_01.jpg")
    (root / "bounding_box_test" / "Thumbs.db").write_text("not an image")
    return root


def test_market_layout_keeps_junk_for_the_protocol_and_distractors(tmp_path):
    root = make_market(tmp_path / "Market-1501-v15.09.15")
    split = load_market1501(tmp_path)  # parent folder also works
    assert [(i.pid, i.camid) for i in split.query] == [(2, 0), (7, 2)]
    g = sorted((i.pid, i.camid) for i in split.gallery)
    assert g == [(-1, 0), (0, 0), (2, 0), (2, 1), (7, 5)]  # junk and distractors kept, cameras 0-based
    assert len(split.train) == 1 and split.name == "market1501"
    assert load_reid_dataset("folder", root).summary()["n_gallery"] == 5


def test_market_layout_errors_name_the_folder(tmp_path):
    root = make_market(tmp_path / "m")
    (root / "query" / "0002_c1s1_000451_03.jpg").unlink()
    (root / "query" / "0007_c3s3_000011_01.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=str(root / "query")):
        load_reid_dataset("market1501", root)
    _img(root / "query" / "person2_cam1.jpg")
    with pytest.raises(ValueError, match=r"query.*person2_cam1\.jpg"):
        load_reid_dataset("market1501", root)
    with pytest.raises(FileNotFoundError, match="absent_dir: dataset root not found"):
        load_reid_dataset("folder", tmp_path / "absent_dir")
    (tmp_path / "only_query" / "query").mkdir(parents=True)
    _img(tmp_path / "only_query" / "query" / "0001_c1_1.jpg")
    with pytest.raises(FileNotFoundError, match="bounding_box_test"):
        load_reid_dataset("folder", tmp_path / "only_query")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_reid_dataset("dukemtmc", root)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_lists(tmp_path, version):
    root = tmp_path / f"MSMT17_{version}"
    test_dir = root / ("test" if version == "V1" else "mask_test_v2")
    q = ["0000/0000_000_01_0303morning_0015_0.jpg", "0001/0001_011_15_0303noon_0001_1.jpg"]
    g = ["0000/0000_002_07_0303morning_0020_0.jpg", "0001/0001_003_15_0303noon_0002_0.jpg"]
    for rel in q + g:
        _img(test_dir / rel)
    (root / "list_query.txt").write_text("".join(f"{r} {r[:4].lstrip('0') or 0}\n" for r in q))
    (root / "list_gallery.txt").write_text("".join(f"{r} {int(r[:4])}\n" for r in g))
    split = load_msmt17(tmp_path)
    assert [(i.pid, i.camid) for i in split.query] == [(0, 0), (1, 14)]
    assert [(i.pid, i.camid) for i in split.gallery] == [(0, 6), (1, 14)]
    assert split.query[0].path == str(test_dir / q[0])
    (root / "list_gallery.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_gallery\.txt"):
        load_msmt17(root)


def test_msmt17_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an MSMT17 folder"):
        load_msmt17(tmp_path)


@pytest.mark.parametrize("variant", ["detected", "labeled"])
def test_cuhk03_np(tmp_path, variant):
    base = tmp_path / "cuhk03-np" / variant
    _img(base / "query" / "0001_c1_1.png")
    _img(base / "bounding_box_test" / "0001_c2_2.png")
    _img(base / "bounding_box_train" / "0003_c1_1.png")
    split = load_reid_dataset(f"cuhk03-np-{variant}", tmp_path)
    assert split.name == f"cuhk03-np-{variant}"
    assert [(i.pid, i.camid) for i in split.gallery] == [(1, 1)]
    with pytest.raises(ValueError, match="variant"):
        load_cuhk03_np(tmp_path, "both")


def test_image_dataset_and_eval_transform(tmp_path):
    root = make_market(tmp_path / "m")
    split = load_market1501(root)
    ds = ReIDImageDataset(split.query)
    s = ds[1]
    assert s["image"].shape == (3, 32, 16) and s["pid"] == 7 and s["camid"] == 2 and s["index"] == 1
    assert torch.allclose(s["image"][:, 0, 0], torch.tensor([10, 20, 30]) / 255.0)
    cfg = {"input_size": (3, 8, 4), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    ds = ReIDImageDataset(split.query, eval_transform(cfg))
    x = ds[0]["image"]
    assert x.shape == (3, 8, 4)
    assert torch.allclose(x[:, 0, 0], (torch.tensor([10, 20, 30]) / 255.0 - 0.5) / 0.25, atol=1e-2)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0002_c1s1_000451_03.jpg", (2, 1)),
        ("-1_c3s1_000001_01.jpg", (-1, 3)),
        ("0000_c6s4_000002_01.jpg", (0, 6)),
        ("1041_c12s2_000020_00.jpg", (1041, 12)),  # MSMT-style two-digit camera
    ],
)
def test_parse_market_name(name, expected):
    assert parse_market_name(name) == expected


@pytest.mark.parametrize("name", ["person2_cam1.jpg", "0002c1s1_000451_03.jpg", "0002_s1_000451.jpg"])
def test_parse_market_name_rejects_other_names(name):
    with pytest.raises(ValueError, match=r"cannot parse .* like 0002_c1s1_000451_03\.jpg"):
        parse_market_name(name)


def test_format_market_name_is_the_inverse_of_parse():
    assert format_market_name(2, 1, 451, box=3) == "0002_c1s1_000451_03.jpg"
    assert format_market_name(-1, 3, 1) == "-1_c3s1_000001_01.jpg"
    assert format_market_name(0, 12, 7, sequence=2, ext=".png") == "0000_c12s2_000007_01.png"
    for pid, camera in [(1, 1), (0, 9), (-1, 2), (9999, 15)]:
        assert parse_market_name(format_market_name(pid, camera, 5)) == (pid, camera)
    with pytest.raises(ValueError, match="pid"):
        format_market_name(-2, 1, 1)
    with pytest.raises(ValueError, match="camera"):
        format_market_name(1, 0, 1)
