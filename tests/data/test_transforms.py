"""Crops: cut from the decoded frames at the boxes, resized and normalised one way everywhere."""

import numpy as np
import pytest
import torch

from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.sources import Clip
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform
from tests.data.videohelpers import decode_reference, synthetic_frames, write_video

PLAIN = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "train": False}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "v.mp4"
    return write_video(path, synthetic_frames(60, 90, 160, seed=3))


def _fixed_boxes_clip(tmp_path, video, delta=(2, 5)):
    """Sidecar with integer 16x32 boxes (resize is then the identity) plus bad boxes."""
    lines = []
    for f in range(1, 61):
        x = (f * 2) % 120
        lines += [
            f"{f},-1,{x},5,16,32,0.9",
            f"{f},-1,{x + 20},50,16,32,0.8",
            f"{f},-1,200,10,16,32,0.9",  # outside the 160x90 frame: dropped
            f"{f},-1,10,10,0,32,0.9",  # zero width: dropped
        ]
    det = tmp_path / "fixed.txt"
    det.write_text("\n".join(lines))
    return Clip("v", str(video), "video", str(det))


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_crops_equal_box_regions_and_pairs_in_delta(tmp_path, video, backend):
    clip = _fixed_boxes_clip(tmp_path, video)
    ref = decode_reference(video)
    stream = VideoPairStream(
        [clip],
        CropTransform(image_size=(32, 16), **PLAIN),
        batch_size=4,
        sampling=PairSampling(delta_frames=(2, 5)),
        boxes=BoxSelection(min_box_size=1),
        video_backend=backend,
    )
    for b in range(3):
        batch = stream.make_batch(0, 0, 1, 1, b)
        assert batch.num_pairs == 4 and batch.crops.shape == (16, 3, 32, 16)
        deltas = batch.frame_ids[:, 1] - batch.frame_ids[:, 0]
        assert ((deltas >= 2) & (deltas <= 5)).all()
        assert (batch.frame_ids >= 1).all() and (batch.frame_ids <= 60).all()
        for n in range(batch.num_crops):
            p, side = int(batch.pair_index[n]), int(batch.frame_side[n])
            frame = ref[int(batch.frame_ids[p, side]) - 1]
            x1, y1, x2, y2 = batch.boxes[n].long().tolist()
            assert (x2 - x1, y2 - y1) == (16, 32)
            expected = torch.from_numpy(frame[y1:y2, x1:x2]).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(batch.crops[n], expected, rtol=0, atol=1e-6)


def test_clipped_box_is_cut_at_the_border(tmp_path, video):
    det = tmp_path / "edge.txt"
    det.write_text("\n".join(f"{f},-1,150.5,-4,20,30,1\n{f},-1,0,0,16,32,1" for f in range(1, 61)))
    stream = VideoPairStream(
        [Clip("v", str(video), "video", str(det))],
        CropTransform(image_size=(26, 10), **PLAIN),
        batch_size=1,
        sampling=PairSampling(delta_frames=(1, 1)),
        boxes=BoxSelection(min_box_size=1),
    )
    batch = stream.make_batch(0, 0, 1, 1, 0)
    ref = decode_reference(video)
    edge = [n for n in range(batch.num_crops) if batch.boxes[n, 0] == 150]
    assert len(edge) == 2
    for n in edge:
        assert batch.boxes[n].tolist() == [150, 0, 160, 26]
        frame = ref[int(batch.frame_ids[0, int(batch.frame_side[n])]) - 1]
        expected = torch.from_numpy(frame[0:26, 150:160]).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(batch.crops[n], expected, rtol=0, atol=1e-6)


def test_train_transform_shapes_and_normalisation():
    crops = [np.full((40, 20, 3), 128, np.uint8), np.zeros((7, 9, 3), np.uint8)]
    t = CropTransform(image_size=(256, 128), train=False)
    out = t(crops)
    assert out.shape == (2, 3, 256, 128)
    mean = torch.tensor(t.mean).view(3, 1, 1)
    std = torch.tensor(t.std).view(3, 1, 1)
    torch.testing.assert_close(out[1], ((0 - mean) / std).expand(3, 256, 128))
    aug = CropTransform(image_size=(224, 224), erase_p=1.0, flip_p=1.0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = aug(crops, g1), aug(crops, g2)
    assert a.shape == (2, 3, 224, 224)
    torch.testing.assert_close(a, b)  # seeded: reproducible
    assert not torch.allclose(a, CropTransform(image_size=(224, 224), train=False)(crops))


def test_training_evaluation_and_predict_see_the_same_crop_tensor(tmp_path):
    from PIL import Image

    from isr_lightning.evaluation.datasets import eval_transform
    from isr_lightning.predict import ImageFolderDataset

    crop = np.random.default_rng(0).integers(0, 256, size=(41, 17, 3), dtype=np.uint8)
    config = {"input_size": (3, 32, 16), "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3)}
    Image.fromarray(crop).save(tmp_path / "crop.png")
    training = CropTransform(image_size=(32, 16), mean=config["mean"], std=config["std"], train=False)([crop])[0]
    evaluation = eval_transform(config)(Image.open(tmp_path / "crop.png"))
    predicted = ImageFolderDataset(tmp_path, config)[0][0]
    torch.testing.assert_close(evaluation, training, rtol=0, atol=0)
    torch.testing.assert_close(predicted, training, rtol=0, atol=0)
    # against a hand-made reference: float bilinear resize, rounded to uint8, then normalised
    region = torch.from_numpy(crop).permute(2, 0, 1).float()[None]
    resized = torch.nn.functional.interpolate(region, size=(32, 16), mode="bilinear", antialias=True)[0]
    expected = (resized / 255 - torch.tensor(config["mean"]).view(3, 1, 1)) / torch.tensor(config["std"]).view(3, 1, 1)
    torch.testing.assert_close(training, expected, rtol=0, atol=1 / 255 / 0.2 + 1e-5)
