"""One camera's ground-truth tracks as a ReID benchmark: split in time, crops from the video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from isr_lightning.data.mot import read_mot_file
from isr_lightning.evaluation.datasets import parse_market_name
from isr_lightning.evaluation.tracks import TrackSplit, write_track_benchmark

FPS = 12  # tiny_corpus: generate_corpus's default frame rate


def _frames_by_name(split) -> dict[str, list[tuple[int, int, int]]]:
    """``query``/``gallery`` -> (pid, camera, frame) of every written crop, read back from the names."""
    out = {}
    for side in ("query", "gallery"):
        rows = []
        for item in getattr(split, side):
            pid, camera = parse_market_name(Path(item.path).name)
            rows.append((pid, camera, int(Path(item.path).name.split("_")[2])))
        out[side] = rows
    return out


def test_each_track_queries_its_later_self_across_the_gap(tiny_corpus: Path, tmp_path: Path) -> None:
    video, gt = tiny_corpus / "clip00000.mp4", tiny_corpus / "clip00000.gt.txt"
    split_options = TrackSplit(stride=2, gap_seconds=0.5, min_height=1, min_boxes=1)
    split = write_track_benchmark(video, gt, tmp_path / "bench", split_options)
    rows = _frames_by_name(split)
    # the reference: every gt track, its frames split at the middle of the track by hand
    tracks: dict[int, list[int]] = {}
    for frame, boxes in read_mot_file(str(gt), is_gt=True).items():
        for pid in boxes.ids.tolist():
            tracks.setdefault(pid, []).append(frame)
    gap = round(0.5 * FPS)
    expected_query, expected_gallery = [], []
    for pid, frames in tracks.items():
        frames = sorted(frames)
        middle = (frames[0] + frames[-1]) / 2
        early = [f for f in frames if f <= middle - gap / 2][::2]
        late = [f for f in frames if f >= middle + gap / 2][::2]
        if early and late:
            expected_query += [(pid, 1, f) for f in early]
            expected_gallery += [(pid, 2, f) for f in late]
    assert sorted(rows["query"]) == sorted(expected_query)
    assert sorted(rows["gallery"]) == sorted(expected_gallery)
    assert {r[0] for r in rows["query"]} == {r[0] for r in rows["gallery"]}  # every query has its person later
    for pid in {r[0] for r in rows["query"]}:
        last_query = max(r[2] for r in rows["query"] if r[0] == pid)
        assert last_query + gap <= min(r[2] for r in rows["gallery"] if r[0] == pid)


def test_crops_are_the_boxes_of_the_decoded_frames(tiny_corpus: Path, tmp_path: Path) -> None:
    video, gt = tiny_corpus / "clip00001.mp4", tiny_corpus / "clip00001.gt.txt"
    split = write_track_benchmark(video, gt, tmp_path / "bench", TrackSplit(stride=3, gap_seconds=0, min_height=1))
    with av.open(str(video)) as container:  # a second decoder, not the library's
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    boxes = read_mot_file(str(gt), is_gt=True)
    item = split.query[len(split.query) // 2]
    pid, _ = parse_market_name(Path(item.path).name)
    frame = int(Path(item.path).name.split("_")[2])
    x1, y1, x2, y2 = boxes[frame].boxes[boxes[frame].ids.tolist().index(pid)]
    x1, y1 = int(np.floor(max(x1, 0))), int(np.floor(max(y1, 0)))
    x2, y2 = int(np.ceil(min(x2, 160))), int(np.ceil(min(y2, 90)))
    expected = frames[frame - 1][y1:y2, x1:x2].astype(np.float32)
    written = np.asarray(Image.open(item.path), dtype=np.float32)
    assert written.shape == expected.shape
    assert np.abs(written - expected).mean() < 4  # JPEG quality 95


def test_reruns_reuse_the_folder_and_short_tracks_are_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    video, gt = tiny_corpus / "clip00000.mp4", tiny_corpus / "clip00000.gt.txt"
    options = TrackSplit(stride=4, gap_seconds=0.5, min_height=1)
    first = write_track_benchmark(video, gt, tmp_path / "bench", options)
    marker = next((tmp_path / "bench" / "query").iterdir())
    stamp = marker.stat().st_mtime_ns
    again = write_track_benchmark(video, gt, tmp_path / "bench", options)
    assert [i.path for i in again.query] == [i.path for i in first.query] and marker.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="no track"):
        write_track_benchmark(video, gt, tmp_path / "bench", TrackSplit(gap_seconds=60))
