import logging

import pytest

from isr_lightning.data import VideoPairDataModule
from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.loader import VideoPairLoader
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
    stream = VideoPairStream(
        clips, SMALL, 4, 5, sampling=PairSampling(delta_frames=(5, 8)), boxes=TWO_PIXELS, video_backend=backend
    )
    with caplog.at_level(logging.WARNING, logger="isr_lightning.data.stream"):
        batches = list(VideoPairLoader(stream))
    assert len(batches) == 5
    for batch in batches:
        assert set(batch.clip_index.tolist()) == {good} and batch.num_pairs == 4
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


def test_bad_items_in_the_shards_of_ranks_and_workers(bad_corpus):
    # Worker w of rank r builds batches b = w, w + W, ... from its shard (rank, worker): computed
    # here in-process, batch by batch (tests/data/test_worker_processes.py starts real workers).
    clips = discover_clips(bad_corpus)
    good = next(i for i, c in enumerate(clips) if c.clip_id == "good")
    stream = VideoPairStream(clips, SMALL, 2, 6, sampling=PairSampling(delta_frames=(5, 8)), boxes=TWO_PIXELS)
    holder = {}
    for num_workers in (1, 2):
        shards = [(r, w) for r in range(2) for w in range(num_workers)]
        holders = [(r, w) for r, w in shards if good in stream.shard(0, r, 2, w, num_workers)]
        assert len(holders) == 1  # one good clip, one shard
        holder[num_workers] = holders[0]
        for rank in range(2):
            for b in range(6):
                worker = b % num_workers
                if (rank, worker) == holders[0]:
                    batch = stream.make_batch(0, rank, 2, num_workers, b)
                    assert batch.num_pairs == 2 and set(batch.clip_index.tolist()) == {good}
                else:  # a shard of bad clips only is an error naming it, not a hang or a short epoch
                    shard = rf"no usable clip in shard \(rank {rank}, worker {worker}\)"
                    with pytest.raises(RuntimeError, match=shard):
                        stream.make_batch(0, rank, 2, num_workers, b)
    stream.world_size, stream.rank = 2, holder[1][0]
    assert len(list(VideoPairLoader(stream))) == 6  # the rank holding the good clip: a full epoch


def test_shard_of_only_bad_clips_raises(bad_corpus):
    clips = [c for c in discover_clips(bad_corpus) if c.clip_id != "good"]
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
