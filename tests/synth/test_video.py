"""Training corpus: determinism, caching, gt consistency, detector noise, video readable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from isr_lightning.data.mot import read_mot_rows
from isr_lightning.synth import ClipSimulator, generate_corpus

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
