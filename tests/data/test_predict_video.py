"""``trainer.predict`` over the person boxes of videos writes the right embeddings and names."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from PIL import Image

from isr_lightning import ISRModule
from isr_lightning.evaluation import eval_transform
from isr_lightning.predict import EmbeddingWriter, VideoCropDataModule, VideoCropDataset
from tests.data.videohelpers import decode_reference, make_clip


def reference_crops(video: Path, sidecar: Path, min_size: float) -> dict[str, np.ndarray]:
    """Crops by name from PyAV frames and a plain parse of the MOT text (clip, snap outwards)."""
    frames = decode_reference(video)
    height, width = frames.shape[1:3]
    rows: dict[int, list[tuple[float, ...]]] = {}
    for line in sidecar.read_text().split():
        f, _, x, y, w, h = (float(v) for v in line.split(",")[:6])
        rows.setdefault(int(f), []).append((x, y, w, h))
    crops = {}
    for f in sorted(rows):
        k = 0
        for x, y, w, h in rows[f]:
            x1, y1 = math.floor(max(0.0, x)), math.floor(max(0.0, y))
            x2, y2 = math.ceil(min(width, x + w)), math.ceil(min(height, y + h))
            if x2 - x1 >= max(1, min_size) and y2 - y1 >= max(1, min_size):
                crops[f"{video.stem}/{f:06d}/{k}"] = frames[f - 1, y1:y2, x1:x2]
                k += 1
    return crops


def test_predict_video_crops_matches_independent_decode(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    videos = [make_clip(root, f"clip{i}", num_frames=6, seed=i) for i in range(2)]
    model = ISRModule(
        backbone="test_vit", backbone_kwargs={"img_size": (32, 16), "patch_size": 8}, image_size=(32, 16), embed_dim=8
    )
    out = tmp_path / "crops.npz"
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[EmbeddingWriter(out)])
    trainer.predict(
        model, datamodule=VideoCropDataModule(str(root), batch_size=5, min_box_size=2), return_predictions=False
    )
    written = np.load(out)

    expected = {}
    for video in videos:
        expected.update(reference_crops(video, video.with_suffix(".txt"), min_size=2))
    assert sorted(written["names"].tolist()) == sorted(expected)
    transform = eval_transform(model.data_config)
    names = list(expected)
    images = torch.stack([transform(Image.fromarray(np.ascontiguousarray(expected[n]))) for n in names])
    reference = model.embed(images).numpy()
    row = {name: i for i, name in enumerate(written["names"].tolist())}
    np.testing.assert_allclose(written["embeddings"][[row[n] for n in names]], reference, atol=1e-5)


def test_unreadable_clip_is_skipped_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    make_clip(root, "good", num_frames=4)
    (root / "broken.mp4").write_bytes(b"not a video")
    (root / "broken.txt").write_text("1,-1,1,1,10,20,1\n")
    dataset = VideoCropDataset(root, {"input_size": (3, 32, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3}, min_box_size=2)
    assert sum(dataset.skipped.values()) == 1
    assert all(name.startswith("good/") for _, name in (dataset[i] for i in range(len(dataset))))


def test_corpus_without_boxes_is_an_error_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    make_clip(root, "clip", num_frames=4)
    (root / "clip.txt").write_text("")
    with pytest.raises(ValueError, match="no person box"):
        VideoCropDataset(root, {"input_size": (3, 32, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3})
