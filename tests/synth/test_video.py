"""Training corpus: determinism, caching, gt consistency, detector noise, video readable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from isr_lightning.data.mot import read_mot_rows
from isr_lightning.synth import ClipSimulator, CorpusConfig, DetectorNoise, generate_corpus
from isr_lightning.synth.video import FrameAnnotations, simulate_detections

TINY = dict(seconds=1.5, fps=8, width=160, height=96, min_people=3, max_people=5)


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return generate_corpus(root, num_clips=2, seed=7, **TINY)


def test_layout_and_metadata(corpus):
    root = corpus.root
    for clip in corpus.clips:
        for ext in (".mp4", ".det.txt", ".gt.txt"):
            assert (root / f"{clip}{ext}").stat().st_size > 0
    meta = json.loads((root / "corpus.json").read_text())
    assert meta["config"] == corpus.config.to_dict()
    assert meta["config"]["seed"] == 7
    assert meta["clips"] == corpus.clips == ["clip00000", "clip00001"]
    assert (root / "preview.png").exists()
    assert not any(p.name.startswith(".") for p in root.iterdir())


def test_sidecar_lines_have_the_corpus_format(corpus, tmp_path):
    gt_line = re.compile(r"^\d+,\d+,\d+,\d+,\d+,\d+,1,1,[01]\.\d{3}$")
    det_line = re.compile(r"^\d+,-1,\d+\.\d,\d+\.\d,\d+\.\d,\d+\.\d,0\.\d{3},-1,-1,-1$")
    for clip in corpus.clips:
        gt = (corpus.root / f"{clip}.gt.txt").read_text()
        det = (corpus.root / f"{clip}.det.txt").read_text()
        assert gt.endswith("\n") and det.endswith("\n")
        assert all(gt_line.match(line) for line in gt.splitlines()), gt
        assert all(det_line.match(line) for line in det.splitlines()), det
    # a clip nobody is seen in (one person, two frames, seed 0) has sidecars of one empty line
    tiny = dict(seconds=0.2, fps=8, width=64, height=64, min_people=1, max_people=1, preview=False)
    empty = generate_corpus(tmp_path, num_clips=1, seed=0, **tiny)
    assert empty.num_gt_boxes == empty.num_det_boxes == 0
    assert (tmp_path / "clip00000.gt.txt").read_text() == (tmp_path / "clip00000.det.txt").read_text() == "\n"


def test_same_seed_identical_files_other_seed_differs(corpus, tmp_path):
    again = generate_corpus(tmp_path / "a", num_clips=2, seed=7, **TINY)
    assert not again.cached
    assert _files(corpus.root) == _files(again.root)
    other = generate_corpus(tmp_path / "b", num_clips=1, seed=8, **TINY)
    assert (other.root / "clip00000.mp4").read_bytes() != (corpus.root / "clip00000.mp4").read_bytes()
    # one clip can be reproduced on its own: clip 0 of a 1-clip corpus equals clip 0 of 2
    single = generate_corpus(tmp_path / "c", num_clips=1, seed=7, preview=False, **TINY)
    for ext in (".mp4", ".gt.txt", ".det.txt"):
        name = f"clip00000{ext}"
        assert (single.root / name).read_bytes() == (corpus.root / name).read_bytes()


def test_cache_reused_and_invalidated(corpus, tmp_path):
    root = tmp_path / "c"
    first = generate_corpus(root, num_clips=1, seed=1, preview=False, **TINY)
    mtime = (root / "clip00000.mp4").stat().st_mtime_ns
    cached = generate_corpus(root, num_clips=1, seed=1, preview=False, **TINY)
    assert cached.cached and cached.num_gt_boxes == first.num_gt_boxes
    assert (root / "clip00000.mp4").stat().st_mtime_ns == mtime
    changed = generate_corpus(root, num_clips=1, seed=2, preview=False, **TINY)
    assert not changed.cached
    assert json.loads((root / "corpus.json").read_text())["config"]["seed"] == 2
    # a cache written by another generator version is rendered again
    meta = json.loads((root / "corpus.json").read_text())
    (root / "corpus.json").write_text(json.dumps({**meta, "format": "isr-lightning synthetic corpus v1"}))
    assert not generate_corpus(root, num_clips=1, seed=2, preview=False, **TINY).cached


def test_video_decodes_to_rendered_frames(corpus):
    decord = pytest.importorskip("decord")
    cfg = corpus.config
    vr = decord.VideoReader(str(corpus.video("clip00001")))
    assert len(vr) == cfg.num_frames
    frame = vr[3].asnumpy()
    assert frame.shape == (cfg.height, cfg.width, 3)
    rendered, _, _ = ClipSimulator(cfg, 1).render(3)
    assert np.abs(frame.astype(float) - rendered).mean() < 8.0  # H.264 loss only


def test_gt_boxes_contain_the_persons_pixels(corpus):
    cfg = corpus.config
    sim = ClipSimulator(cfg, 0)
    gt = read_mot_rows(corpus.root / "clip00000.gt.txt")
    assert gt.shape[1] == 9
    assert set(np.unique(gt[:, 6])) == {1} and set(np.unique(gt[:, 7])) == {1}
    for t in range(cfg.num_frames):
        _, idmap, ann = sim.render(t)
        rows = gt[gt[:, 0] == t + 1]
        np.testing.assert_array_equal(rows[:, 1], ann.ids)
        np.testing.assert_allclose(rows[:, 2:6], np.round(ann.boxes))
        for pid, (x, y, w, h), v in zip(ann.ids, ann.boxes, ann.visibility, strict=True):
            assert x >= 0 and y >= 0 and x + w <= cfg.width and y + h <= cfg.height
            ys, xs = np.nonzero(idmap == pid)
            assert 0.0 <= v <= 1.0
            if v > 0:
                assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h
        # every person pixel belongs to someone with a gt row
        assert set(np.unique(idmap[idmap > 0])) <= set(ann.ids.tolist())
    assert gt[:, 1].max() <= cfg.max_people


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1) - np.maximum(ax0[:, None], bx0), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1) - np.maximum(ay0[:, None], by0), 0, None)
    inter = iw * ih
    return inter / (a[:, 2:3] * a[:, 3:4] + (b[:, 2] * b[:, 3])[None] - inter)


def test_detections_are_noisier_than_gt():
    cfg = CorpusConfig(num_clips=1, seconds=12, fps=10, width=320, height=180, min_people=8, max_people=8, seed=3)
    sim = ClipSimulator(cfg, 0)
    rng = np.random.default_rng(0)
    ious, vis_of_missed, vis_all, n_fp, n_det = [], [], [], 0, 0
    for t in range(0, cfg.num_frames, 2):
        _, _, ann = sim.render(t)
        det = simulate_detections(rng, ann, sim.scene, cfg.detector)
        n_det += len(det)
        assert np.all(det[:, :2] >= 0) and np.all(det[:, 0] + det[:, 2] <= cfg.width + 1e-6)
        assert np.all(det[:, 1] + det[:, 3] <= cfg.height + 1e-6)
        assert np.all((det[:, 4] > 0) & (det[:, 4] <= 1))
        if len(ann.ids) == 0:
            n_fp += len(det)
            continue
        m = _iou_matrix(ann.boxes, det[:, :4]) if len(det) else np.zeros((len(ann.ids), 0))
        best = m.max(axis=1) if m.shape[1] else np.zeros(len(ann.ids))
        ious += best[best >= 0.5].tolist()
        vis_all += ann.visibility.tolist()
        vis_of_missed += ann.visibility[best < 0.5].tolist()
        # a detection overlapping no person at all is a false positive
        inter_frac = m.max(axis=0) if m.shape[1] else np.zeros(0)
        n_fp += int(np.sum(inter_frac == 0))
    ious = np.asarray(ious)
    miss_rate = len(vis_of_missed) / len(vis_all)
    assert 0.6 < np.median(ious) < 0.95, np.median(ious)  # jittered, not copied
    assert np.mean(ious > 0.98) < 0.1
    assert 0.03 < miss_rate < 0.5, miss_rate
    assert np.mean(vis_of_missed) < np.mean(vis_all)  # occluded people are missed more
    assert n_fp > 0
    assert abs(n_det - len(vis_all)) < 0.5 * len(vis_all)  # counts comparable to gt


def test_overlapping_people_are_sometimes_merged():
    cfg = CorpusConfig(num_clips=1, width=320, height=180)
    sim = ClipSimulator(cfg, 0)
    ann = FrameAnnotations(
        np.array([1, 2]),
        np.array([[100.0, 50, 30, 90], [112, 52, 30, 88]]),
        np.array([[100.0, 50, 30, 90], [112, 52, 30, 88]]),
        np.ones(2),
    )
    noise = DetectorNoise(miss_rate=0.0, fp_per_frame=0.0, merge_prob=0.5)
    rng = np.random.default_rng(0)
    counts = [len(simulate_detections(rng, ann, sim.scene, noise)) for _ in range(200)]
    assert 30 < counts.count(1) < 170 and counts.count(2) > 30
    union = simulate_detections(
        np.random.default_rng(1),
        ann,
        sim.scene,
        DetectorNoise(miss_rate=0.0, fp_per_frame=0.0, merge_prob=1.0, jitter=0.0, scale_jitter=0.0),
    )
    np.testing.assert_allclose(union[0, :4], [100, 50, 42, 90], atol=0.1)


def test_config_validation():
    with pytest.raises(ValueError):
        CorpusConfig(width=101)
    with pytest.raises(ValueError):
        CorpusConfig(min_people=5, max_people=2)


def test_clip_looks_vary_with_look_variety_and_the_people_do_not():
    varied = [ClipSimulator(CorpusConfig(seed=3, look_variety=1.0, **TINY), i) for i in range(6)]
    mild = [ClipSimulator(CorpusConfig(seed=3, look_variety=0.0, person_styles=("flat",), **TINY), i) for i in range(6)]
    assert {sim.look.style for sim in varied} == {"flat", "shaded"}
    assert {sim.look.style for sim in mild} == {"flat"}
    assert max(sim.response.blur for sim in varied) > 0.3 and all(sim.response.blur == 0 for sim in mild)
    assert np.std([sim.look.z_near for sim in varied]) > 0.3 and {sim.look.z_near for sim in mild} == {5.0}
    # the people have their own random stream: the same people at any variety
    for a, b in zip(varied, mild, strict=True):
        assert [bank.outfit for bank in a.banks] == [bank.outfit for bank in b.banks]


def test_look_validation():
    with pytest.raises(ValueError, match="person_styles"):
        CorpusConfig(person_styles=("flat", "oil"))
    with pytest.raises(ValueError, match="person_styles"):
        CorpusConfig(person_styles=())
    with pytest.raises(ValueError, match="look_variety"):
        CorpusConfig(look_variety=1.5)
