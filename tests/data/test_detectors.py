import numpy as np
import pytest

from isr_lightning.cli import main
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.data.detectors import BackgroundSubtractionDetector, Detector, TorchvisionDetector, score_detections
from isr_lightning.data.mot import FrameBoxes, read_mot_file
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


def _scene(people, num_frames=40, height=120, width=240):
    """A textured static background and rectangles ``(x0, y, w, h, colour, dx)`` moving ``dx`` px a frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    bg = np.stack([(xx * 1.3) % 200, (yy * 1.7) % 200, np.full_like(xx, 100)], axis=-1).astype(np.uint8)
    frames, truth = [], []
    for t in range(num_frames):
        f, boxes = bg.copy(), []
        for x0, y, w, h, colour, dx in people:
            x = x0 + dx * t
            for part, (top, bottom) in enumerate(((y, y + h // 2), (y + h // 2, y + h))):
                f[top:bottom, x : x + w] = colour[part]
            boxes.append([x, y, x + w, y + h])
        frames.append(f)
        truth.append(np.array(boxes, dtype=float))
    return np.stack(frames), truth


def test_people_side_by_side_are_split_and_a_person_in_two_colours_is_one_box():
    # two people walking together, touching; a third whose coat and trousers differ
    two_colours = ((230, 230, 230), (20, 20, 200))
    frames, truth = _scene(
        [(10, 20, 16, 60, two_colours, 4), (26, 20, 16, 60, two_colours, 4), (210, 30, 18, 60, two_colours, -4)]
    )
    found = BackgroundSubtractionDetector()(frames)
    apart = [t for t in range(len(frames)) if not 20 <= t <= 28]  # frames 21-27: the third walks through the pair
    for t in apart:  # every person, exactly, and nothing else
        assert len(found[t]) == 3 and all(max(_iou(b, g) for b in found[t]) > 0.9 for g in truth[t]), t


def test_the_background_outlives_a_chunk_and_resets_between_clips():
    # a person who stands still through the first chunk, then walks: the first chunk's median holds
    # them; from the second chunk on the kept background (sampled frames) no longer does
    standing = [(60, 20, 16, 60, ((240, 240, 240), (240, 240, 240)), 0)]
    still, _ = _scene(standing, num_frames=32)
    walking, truth = _scene([(60, 20, 16, 60, ((240, 240, 240), (240, 240, 240)), 3)], num_frames=32)
    detector = BackgroundSubtractionDetector(history_stride=4)
    detector(still)
    moved = detector(walking)
    hits = sum(max((_iou(b, t) for b in boxes), default=0) >= 0.5 for boxes, ts in zip(moved, truth) for t in ts)
    assert hits >= 0.9 * len(walking)
    detector.reset()
    assert not detector._kept


def test_score_detections_matches_one_to_one_at_iou_half():
    def boxes(*rows):
        a = np.array(rows, dtype=np.float32).reshape(-1, 4)
        return FrameBoxes(a, np.arange(len(a)), np.ones(len(a), np.float32))

    truth = {1: boxes([0, 0, 10, 20], [20, 0, 30, 20]), 2: boxes([0, 0, 10, 20]), 3: boxes([5, 5, 15, 25])}
    found = {
        1: boxes([0, 0, 10, 20], [1, 0, 11, 20], [20, 0, 30, 10]),  # one hit, a duplicate, IoU 0.5 exactly
        2: boxes([100, 100, 110, 120]),  # a false positive
        9: boxes([0, 0, 5, 5]),  # a frame the ground truth does not cover: not scored
    }
    scores = score_detections(found, truth)
    # by hand: frame 1 matches 2 of 2 (the half box has IoU 0.5), frame 2 none, frame 3 missed
    assert (scores.matched, scores.detections, scores.ground_truth) == (2, 4, 4)
    assert scores.recall == 0.5 and scores.precision == 0.5


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


def test_torchvision_detector_needs_a_weights_file(tmp_path, capsys, monkeypatch):
    with pytest.raises(FileNotFoundError, match="weights"):
        TorchvisionDetector(tmp_path / "missing.pth")
    # torchvision's own weights name: downloaded when online; offline, the error says which file to give
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # an empty cache
    try:
        TorchvisionDetector("DEFAULT")
    except FileNotFoundError as err:
        assert "--detector.weights fasterrcnn_resnet50_fpn.pth" in str(err)
    else:  # a machine with network access downloaded them
        assert any((tmp_path / "hub").rglob("*.pth"))
    (tmp_path / "v.mp4").write_bytes(b"")
    weights = ["--detector.weights", str(tmp_path / "no.pth")]
    assert main(["detect", str(tmp_path), "--detector", "TorchvisionDetector", *weights]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no.pth" in err and "--detector.weights" in err
