"""One clip: detector noise against the rendered ground truth, merged boxes, looks that vary by clip."""

from __future__ import annotations

import numpy as np

from isr_lightning.synth import ClipSimulator, CorpusConfig, DetectorNoise
from isr_lightning.synth.clip import FrameAnnotations, simulate_detections

TINY = dict(seconds=1.5, fps=8, width=160, height=96, min_people=3, max_people=5)


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
