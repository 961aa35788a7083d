import numpy as np
import pytest

from isr_lightning.cli import main
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.data.detectors import BackgroundSubtractionDetector, Detector, TorchvisionDetector
from isr_lightning.data.mot import read_mot_file
from tests.data.videohelpers import write_video


def _walkers(num_frames=30, height=90, width=160):
    """Static background, two 12x32 'people' walking in opposite directions."""
    yy, xx = np.mgrid[0:height, 0:width]
    bg = np.stack([(xx * 1.2) % 256, (yy * 2.0) % 256, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    frames, truth = [], []
    for t in range(num_frames):
        f = bg.copy()
        boxes = []
        for x, y in ((10 + 3 * t, 6), (140 - 3 * t, 52)):
            f[y : y + 32, x : x + 12] = (250, 250, 250) if y == 6 else (10, 200, 10)
            boxes.append([x, y, x + 12, y + 32])
        frames.append(f)
        truth.append(np.array(boxes, dtype=float))
    return np.stack(frames), truth


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_background_detector_finds_the_walkers():
    frames, truth = _walkers()
    det = BackgroundSubtractionDetector()
    assert isinstance(det, Detector)
    found = det(frames)
    hits = sum(
        max((_iou(b, t) for b in boxes), default=0) >= 0.5 for boxes, ts in zip(found, truth, strict=True) for t in ts
    )
    assert hits >= 0.9 * 2 * len(frames)


def test_detect_command_writes_sidecars_the_datamodule_reads(tmp_path):
    frames, _ = _walkers()
    write_video(tmp_path / "cam.mp4", frames)
    assert main(["detect", str(tmp_path)]) == 0
    dets = read_mot_file(str(tmp_path / "cam.txt"))
    assert len(dets) >= 25 and all(len(fb) <= 4 for fb in dets.values())
    assert main(["detect", str(tmp_path)]) == 0  # existing sidecar kept
    dm = VideoPairDataModule(
        tmp_path,
        batch_size=2,
        batches_per_epoch=1,
        transform=CropTransform(image_size=(32, 16)),
        sampling=PairSampling(delta_frames=(1, 5)),
        num_workers=0,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.num_pairs == 2 and batch.num_crops >= 8


def test_torchvision_detector_needs_a_weights_file(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="weights"):
        TorchvisionDetector(tmp_path / "missing.pth")
    (tmp_path / "v.mp4").write_bytes(b"")
    weights = ["--detector.weights", str(tmp_path / "no.pth")]
    assert main(["detect", str(tmp_path), "--detector", "TorchvisionDetector", *weights]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no.pth" in err and "--detector.weights" in err
