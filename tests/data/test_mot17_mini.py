"""Real MOT17 frames (../shared/data/mot17-mini); skipped when the folder is absent."""

import functools

import numpy as np
import torch
from PIL import Image

from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.sources import discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform

ONE_TO_THREE = PairSampling(delta_frames=(1, 3))
PLAIN = CropTransform(image_size=(64, 32), mean=(0, 0, 0), std=(1, 1, 1), train=False)


@functools.lru_cache(maxsize=64)
def _image(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@functools.lru_cache(maxsize=16)
def _rows(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


def _snap(x, y, w, h, width, height):
    return [
        np.floor(np.clip(x, 0, width)),
        np.floor(np.clip(y, 0, height)),
        np.ceil(np.clip(x + w, 0, width)),
        np.ceil(np.clip(y + h, 0, height)),
    ]


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_discovers_the_sequences(mot17_mini):
    clips = discover_clips(mot17_mini)
    assert [c.clip_id for c in clips] == ["MOT17-02-FRCNN", "MOT17-04-FRCNN", "MOT17-05-FRCNN", "MOT17-09-FRCNN"]
    assert all(c.kind == "images" and c.gt is not None and c.fps for c in clips)


def test_pairs_from_real_frames_and_det_txt(mot17_mini):
    clips = discover_clips(mot17_mini)
    stream = VideoPairStream(clips, PLAIN, batch_size=4, sampling=ONE_TO_THREE, boxes=BoxSelection(min_box_size=0))
    batch = stream.make_batch(0, 0, 1, 1, 0)
    assert set(batch.clip_index.tolist()) == {0, 1, 2, 3}
    for n in range(batch.num_crops):
        p, side = int(batch.pair_index[n]), int(batch.frame_side[n])
        clip = clips[int(batch.clip_index[p])]
        frame = int(batch.frame_ids[p, side])
        img = _image(f"{clip.source}/{frame:06d}.jpg")
        rows = _rows(clip.detections)
        rows = rows[rows[:, 0] == frame]
        snapped = np.array([_snap(*r[2:6], img.shape[1], img.shape[0]) for r in rows])
        assert (np.abs(snapped - batch.boxes[n].numpy()).sum(axis=1) == 0).any()
        # crop content: the box region of the JPEG resized in float; the library resizes on
        # uint8, so the two agree to one grey level
        x1, y1, x2, y2 = batch.boxes[n].long().tolist()
        region = torch.from_numpy(img[y1:y2, x1:x2].copy()).permute(2, 0, 1).float() / 255
        expected = torch.nn.functional.interpolate(region[None], size=(64, 32), mode="bilinear", antialias=True)[0]
        torch.testing.assert_close(batch.crops[n], expected.clamp(0, 1), atol=1 / 255 + 1e-6, rtol=0)


def test_gt_ids_line_up_with_boxes(mot17_mini):
    clips = discover_clips(mot17_mini)
    gt_boxes = BoxSelection(source="gt", min_box_size=0)
    gt_stream = VideoPairStream(clips, PLAIN, batch_size=4, sampling=ONE_TO_THREE, boxes=gt_boxes)
    det_stream = VideoPairStream(clips, PLAIN, batch_size=4, sampling=ONE_TO_THREE, boxes=BoxSelection(min_box_size=0))
    for stream, exact in ((gt_stream, True), (det_stream, False)):
        batch = stream.make_batch(0, 0, 1, 1, 0)
        known = 0
        for n in range(batch.num_crops):
            p, side = int(batch.pair_index[n]), int(batch.frame_side[n])
            clip = clips[int(batch.clip_index[p])]
            frame, tid = int(batch.frame_ids[p, side]), int(batch.track_ids[n])
            if tid == -1:
                assert not exact
                continue
            known += 1
            gt = _rows(clip.gt)
            row = gt[(gt[:, 0] == frame) & (gt[:, 1] == tid)]
            assert len(row) == 1 and row[0, 6] != 0 and row[0, 7] in (1, 2, 7)
            h, w = _image(f"{clip.source}/{frame:06d}.jpg").shape[:2]
            ref = _snap(*row[0, 2:6], w, h)
            box = batch.boxes[n].tolist()
            if exact:
                assert box == ref
            else:
                assert _iou(box, ref) >= 0.5
        assert known > 0
        # the same person in both frames of a pair shares the id
        assert any(
            set(batch.track_ids[(batch.pair_index == p) & (batch.frame_side == 0)].tolist())
            & set(batch.track_ids[(batch.pair_index == p) & (batch.frame_side == 1)].tolist()) - {-1}
            for p in range(batch.num_pairs)
        )
