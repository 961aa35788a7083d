import logging

import pytest

from isr_lightning.data import VideoPairDataModule
from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.loader import VideoPairLoader
from isr_lightning.data.sharding import Shard
from isr_lightning.data.sources import discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform

SMALL = CropTransform(image_size=(16, 8))
TWO_PIXELS = BoxSelection(min_box_size=2)


EXPECTED = {
    "garbage": "unreadable_video",
    "truncated": "unreadable_video",
    "truncated_data": "unreadable_video",
    "nodets": "missing_detections",
    "malformed": "malformed_detections",
    "short": "clip_too_short",
    "lonely": "too_few_people",
}


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_each_bad_item_is_skipped_counted_and_logged(bad_corpus, caplog, backend):
    clips = discover_clips(bad_corpus)
    assert len(clips) == 8
    good = next(i for i, c in enumerate(clips) if c.clip_id == "good")
    cut = next(i for i, c in enumerate(clips) if c.clip_id == "truncated_data")  # its decodable part may be used
    stream = VideoPairStream(
        clips, SMALL, 4, 5, sampling=PairSampling(delta_frames=(5, 8)), boxes=TWO_PIXELS, video_backend=backend
    )
    with caplog.at_level(logging.WARNING, logger="isr_lightning.data.stream"):
        batches = list(VideoPairLoader(stream))
    assert len(batches) == 5
    for batch in batches:
        assert set(batch.clip_index.tolist()) <= {good, cut} and batch.num_pairs == 4
    totals = {}
    for batch in batches:
        for reason, n in batch.skipped.items():
            totals[reason] = totals.get(reason, 0) + n
    assert totals == {
        "unreadable_video": 3,
        "missing_detections": 1,
        "malformed_detections": 1,
        "clip_too_short": 1,
        "too_few_people": 1,
    }
    for name, reason in EXPECTED.items():
        logged = [r.getMessage() for r in caplog.records if f"{name}.mp4" in r.getMessage()]
        assert len(logged) == 1, name  # once per file
        assert reason in logged[0]


def test_bad_items_in_the_streams_of_ranks_and_workers(bad_corpus):
    # Worker w of rank r builds batches b = w, w + W, ... from its streams: computed here in-process,
    # batch by batch (tests/data/test_worker_processes.py starts real workers). The good clip's 3
    # windows land in some workers' streams; a worker whose streams hold only bad clips fails, naming itself.
    clips = [c for c in discover_clips(bad_corpus) if c.clip_id != "truncated_data"]  # decodable in part
    good = next(i for i, c in enumerate(clips) if c.clip_id == "good")
    options = {"sampling": PairSampling(delta_frames=(5, 8), clips_per_batch=2), "boxes": TWO_PIXELS}
    stream = VideoPairStream(clips, SMALL, 2, 6, **options)
    for num_workers in (1, 2):
        holders = set()
        for rank in range(2):
            for worker in range(num_workers):
                streams = stream.streams(2 * num_workers * 2)
                windows = [
                    streams.window(0, Shard(rank, 2, worker, num_workers).stream(k, 2), v)
                    for k in range(2)
                    for v in range(streams.visits_per_round)
                ]
                if any(w is not None and w.clip == good for w in windows):
                    holders.add((rank, worker))
        assert holders  # the good clip is somewhere
        for rank in range(2):
            for b in range(6):
                worker = b % num_workers
                if (rank, worker) in holders:
                    batch = stream.make_batch(0, rank, 2, num_workers, b)
                    assert batch.num_pairs == 2 and set(batch.clip_index.tolist()) == {good}
                else:  # streams of bad clips only: an error naming the shard, not a hang or a short epoch
                    shard = rf"no usable clip in shard \(rank {rank}, worker {worker}\)"
                    with pytest.raises(RuntimeError, match=shard):
                        stream.make_batch(0, rank, 2, num_workers, b)


def test_shard_of_only_bad_clips_raises(bad_corpus):
    # truncated_data keeps its decodable first part (PyAV, the default backend): not a bad clip here
    clips = [c for c in discover_clips(bad_corpus) if c.clip_id not in ("good", "truncated_data")]
    stream = VideoPairStream(clips, SMALL, 2, 2, sampling=PairSampling(delta_frames=(5, 8)))
    with pytest.raises(RuntimeError, match="no usable clip"):
        stream.make_batch(0, 0, 1, 1, 0)


def test_unusable_configuration_fails_at_setup(tmp_path):
    dm = VideoPairDataModule(root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        dm.setup("fit")
    dm = VideoPairDataModule(root=tmp_path / "missing_manifest.jsonl")
    with pytest.raises(FileNotFoundError, match=r"missing_manifest\.jsonl"):
        dm.setup("fit")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        VideoPairDataModule(root=tmp_path / "empty").setup("fit")


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_a_video_truncated_half_way_gives_its_decodable_part(tmp_path, backend):
    from tests.data.videohelpers import person_boxes, synthetic_frames, write_mot, write_video

    video = write_video(tmp_path / "cut.mp4", synthetic_frames(64, 48, 64, seed=2), faststart=True)
    write_mot(video.with_suffix(".txt"), person_boxes(64, 64, 48, people=3))
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    sampling = PairSampling(delta_frames=(1, 4), pairs_per_visit=8)
    try:
        stream = VideoPairStream(
            discover_clips(tmp_path), SMALL, 2, 32, sampling=sampling, boxes=TWO_PIXELS, video_backend=backend
        )
        batches = [stream.make_batch(0, 0, 1, 1, b) for b in range(32)]
    except RuntimeError as err:  # a decoder that cannot open the cut file at all: one counted, named error
        assert "unreadable_video" in str(err) and backend == "decord"
        return
    later = {u for batch in batches for _, u in batch.frame_ids.tolist()}
    assert later and max(later) < 48  # pairs from the first half only
    skipped = sum(batch.skipped.get("unreadable_video", 0) for batch in batches)
    assert skipped == 1  # the rest counted once


def test_a_variable_frame_rate_video_pairs_by_its_timestamps(tmp_path):
    from tests.data.videohelpers import person_boxes, synthetic_frames, write_mot, write_video

    pts = [10 * i for i in range(30)] + [290 + 50 * i for i in range(1, 31)]  # 10 fps, then 2 fps (1/100 s)
    video = write_video(tmp_path / "vfr.mp4", synthetic_frames(60, 48, 64, seed=4), pts=pts)
    write_mot(video.with_suffix(".txt"), person_boxes(60, 64, 48, people=3))
    sampling = PairSampling(delta_seconds=(0.45, 0.55), pairs_per_visit=8)
    stream = VideoPairStream(discover_clips(tmp_path), SMALL, 1, 64, sampling=sampling, boxes=TWO_PIXELS)
    pairs = [tuple(p) for b in range(64) for p in stream.make_batch(0, 0, 1, 1, b).frame_ids.tolist()]
    gaps = {round((pts[u - 1] - pts[t - 1]) / 100, 2) for t, u in pairs}
    assert gaps == {0.5}  # 5 frames apart at 10 fps, 1 frame apart at 2 fps: never 5 frames at 2 fps
    assert {u - t for t, u in pairs} == {1, 5}
