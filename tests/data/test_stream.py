import copy

import numpy as np
import pytest
import torch

from isr_lightning.batch import FramePairBatch, frame_pair_groups
from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.loader import VideoPairLoader
from isr_lightning.data.sharding import Shard
from isr_lightning.data.sources import discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform

SMALL = CropTransform(image_size=(16, 8))


def _stream(root, batch_size=3, batches_per_epoch=6, reader_cache=16, **sampling):
    sampling.setdefault("delta_frames", (1, 4))
    return VideoPairStream(
        discover_clips(root),
        SMALL,
        batch_size=batch_size,
        batches_per_epoch=batches_per_epoch,
        sampling=PairSampling(**sampling),
        boxes=BoxSelection(min_box_size=2),
        reader_cache=reader_cache,
    )


def _sample(ka, kb, clip, t):
    return FramePairSample(
        crops=(torch.randn(ka, 3, 4, 2), torch.randn(kb, 3, 4, 2)),
        boxes=(torch.rand(ka, 4), torch.rand(kb, 4)),
        track_ids=(torch.arange(ka), torch.full((kb,), -1)),
        clip_index=clip,
        frame_ids=(t, t + 2),
        video_index=clip,
        skipped={"too_few_people": 1} if clip == 1 else {},
    )


def test_collate_flattens_with_index_tensors():
    samples = [_sample(2, 3, 0, 5), _sample(1, 4, 1, 9)]
    batch = collate_frame_pairs(samples, skipped={"unreadable_video": 2})
    assert isinstance(batch, FramePairBatch)
    assert batch.crops.shape == (10, 3, 4, 2)
    assert batch.pair_index.tolist() == [0] * 5 + [1] * 5
    assert batch.frame_side.tolist() == [0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
    assert batch.track_ids.tolist() == [0, 1, -1, -1, -1, 0, -1, -1, -1, -1]
    torch.testing.assert_close(batch.crops[5:6], samples[1].crops[0])
    assert batch.clip_index.tolist() == [0, 1] and batch.frame_ids.tolist() == [[5, 7], [9, 11]]
    assert batch.skipped == {"unreadable_video": 2, "too_few_people": 1}
    groups = frame_pair_groups(batch.pair_index, batch.frame_side)
    assert [len(a) for a, _ in groups] == [2, 1] and [len(b) for _, b in groups] == [3, 4]


def test_collate_crop_cap_drops_whole_pairs():
    batch = collate_frame_pairs([_sample(2, 2, 0, 1), _sample(3, 3, 0, 1), _sample(1, 1, 0, 1)], 7)
    assert batch.num_crops == 6 and batch.num_pairs == 2
    assert batch.skipped["crop_cap"] == 1


def test_batches_follow_contract_and_caps(corpus):
    stream = _stream(corpus, max_crops_per_pair=4, batch_size=5, max_crops_per_batch=12)
    batch = stream.make_batch(0, 0, 1, 1, 0)
    assert batch.crops.dtype == torch.float32 and batch.crops.shape[1:] == (3, 16, 8)
    # 3 people per frame, capped at 4 per pair (2 per frame); 12 crops per batch: 3 of the 5 pairs
    groups = frame_pair_groups(batch.pair_index, batch.frame_side)
    assert [(len(a), len(b)) for a, b in groups] == [(2, 2)] * 3
    assert batch.num_crops == 12 and batch.skipped["crop_cap"] == 2
    uncapped = _stream(corpus, max_crops_per_pair=None, batch_size=5, max_crops_per_batch=12).make_batch(0, 0, 1, 1, 0)
    groups = frame_pair_groups(uncapped.pair_index, uncapped.frame_side)
    assert [(len(a), len(b)) for a, b in groups] == [(3, 3)] * 2  # without the pair cap: everyone
    # gt sidecars exist: ids are the walking people 1..3
    assert set(batch.track_ids.tolist()) <= {1, 2, 3}


def test_instance_pairing_two_views_of_same_crops(corpus):
    stream = _stream(corpus, pairing="instance")
    batch = stream.make_batch(0, 0, 1, 1, 0)
    assert (batch.frame_ids[:, 0] == batch.frame_ids[:, 1]).all()
    for a, b in frame_pair_groups(batch.pair_index, batch.frame_side):
        assert len(a) == len(b) > 0
        torch.testing.assert_close(batch.boxes[a], batch.boxes[b])
        assert not torch.allclose(batch.crops[a], batch.crops[b])  # different augmentations


def _run(loader):
    return list(loader)


def _summary(batch):
    return (batch.clip_index.tolist(), batch.frame_ids.tolist())


def _later_frames(batches, window):
    """The later frames of the batches' pairs that lie in ``window``."""
    return sorted(
        u
        for batch in batches
        for clip, (_, u) in zip(batch.clip_index.tolist(), batch.frame_ids.tolist(), strict=True)
        if clip == window.clip and window.start <= u < window.stop
    )


@pytest.mark.parametrize("open_clips", [2, 6])
def test_streams_split_the_windows_between_ranks_and_workers(corpus, open_clips):
    # 8 clips x 3 windows of 8 frames over 2 ranks x 2 workers x open_clips streams: 6 windows a
    # worker a round, in 3 visits of 2 streams or 1 visit of 6
    options = {"batch_size": 2, "clips_per_batch": 2, "open_clips": open_clips, "batches_per_epoch": 48}
    visits, per_visit = 6 // open_clips, 8 * open_clips // 2  # batches a visit fills: 8 turns x streams / 2
    per_rank = []
    for rank in range(2):
        stream = _stream(corpus, **options)
        stream.rank, stream.world_size = rank, 2
        per_rank.append(_run(VideoPairLoader(stream, num_workers=2)))
    stream = _stream(corpus, **options)
    owners: dict[tuple[int, int], list] = {}
    for rank in range(2):
        for worker in range(2):
            for visit in range(visits):
                for window in stream.worker_windows(0, Shard(rank, 2, worker, 2), visit):
                    owners.setdefault((window.clip, window.start), []).append((rank, worker, visit))
    assert len(owners) == 24 and all(len(o) == 1 for o in owners.values())  # every window once a round
    for rank, batches in enumerate(per_rank):
        assert len(batches) == 48
        for worker in range(2):
            mine = batches[worker::2]  # the worker's batches
            for visit in range(visits):
                in_visit = mine[visit * per_visit : (visit + 1) * per_visit]
                # a batch's two pairs come from two streams (two windows)
                assert all(len(set(zip(b.clip_index.tolist(), (b.frame_ids[:, 1] - 1) // 8))) == 2 for b in in_visit)
                for window in stream.worker_windows(0, Shard(rank, 2, worker, 2), visit):
                    # every frame of the window with a partner (frame 1 has none) is a later frame, and the
                    # stream gives one pair at each of the visit's 8 turns (a short window repeats one)
                    later = _later_frames(in_visit, window)
                    assert set(later) == {f for f in range(window.start, window.stop) if f > 1} and len(later) == 8


def test_equal_batch_counts_with_uneven_and_tiny_corpus(corpus, tmp_path):
    clips = discover_clips(corpus)[:3]  # 3 clips for 4 shards: shards share clips
    counts = []
    for rank in range(2):
        stream = VideoPairStream(
            clips, SMALL, 2, 7, sampling=PairSampling(delta_frames=(1, 3)), boxes=BoxSelection(min_box_size=2)
        )
        stream.rank, stream.world_size = rank, 2
        counts.append(len(_run(VideoPairLoader(stream, num_workers=2))))
    assert counts == [7, 7]


def test_epochs_reseed_and_are_reproducible(corpus):
    a = _stream(corpus)
    loader = VideoPairLoader(a)
    e0, e1 = [_summary(b) for b in loader], [_summary(b) for b in loader]
    assert loader.epoch == 1 and e0 != e1
    again = VideoPairLoader(_stream(corpus))
    assert [_summary(b) for b in again] == e0


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_continues_with_the_next_batches(corpus, num_workers):
    full_loader = VideoPairLoader(_stream(corpus, batches_per_epoch=7), num_workers=num_workers)
    _run(full_loader)  # epoch 0
    full = _run(full_loader)  # epoch 1
    loader = VideoPairLoader(_stream(corpus, batches_per_epoch=7), num_workers=num_workers)
    _run(loader)
    head = []
    for batch in loader:  # epoch 1, killed after k=3 batches
        head.append(batch)
        if len(head) == 3:
            break
    state = (loader.epoch, loader.batches_consumed)
    assert state == (1, 3)
    resumed = VideoPairLoader(_stream(corpus, batches_per_epoch=7), num_workers=num_workers)
    resumed.resume(*state)
    tail = _run(resumed)
    assert len(tail) == 4
    for got, want in zip(head + tail, full, strict=True):
        assert _summary(got) == _summary(want)
        torch.testing.assert_close(got.crops, want.crops)
    assert [_summary(b) for b in resumed] != [_summary(b) for b in full]  # next epoch is fresh


def test_resume_does_not_decode_skipped_batches(corpus, monkeypatch):
    stream = _stream(corpus, batches_per_epoch=6)
    made = []
    original = stream.make_batch
    monkeypatch.setattr(stream, "make_batch", lambda *a: made.append(a[-1]) or original(*a))
    loader = VideoPairLoader(stream)
    loader.resume(0, 4)
    assert len(_run(loader)) == 2 and made == [4, 5]


def test_stream_is_picklable_for_spawned_workers(corpus):
    stream = _stream(corpus)
    stream.make_batch(0, 0, 1, 1, 0)
    clone = copy.deepcopy(stream)
    np.testing.assert_array_equal(clone.make_batch(0, 0, 1, 1, 1).crops, stream.make_batch(0, 0, 1, 1, 1).crops)


def test_forked_workers_do_not_share_the_parents_open_readers(corpus):
    warm = _stream(corpus, batches_per_epoch=4)
    for b in range(4):
        warm.make_batch(0, 0, 1, 2, b)  # the parent opens every clip
    assert warm.crops._open
    cold = [(*_summary(b), b.crops) for b in VideoPairLoader(_stream(corpus, batches_per_epoch=4), num_workers=2)]
    got = [(*_summary(b), b.crops) for b in VideoPairLoader(warm, num_workers=2)]
    for (c1, f1, x1), (c2, f2, x2) in zip(got, cold, strict=True):
        assert (c1, f1) == (c2, f2)
        torch.testing.assert_close(x1, x2)


def test_files_are_parsed_once_per_clip_when_readers_are_reopened(corpus, monkeypatch):
    import isr_lightning.data.clip_index as clip_index_module
    import isr_lightning.data.crop_source as stream_module

    calls = {"parse": 0, "open": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    # one frame a visit, one open reader: every visit opens its clips again
    reference = [_stream(corpus, reader_cache=64, pairs_per_visit=1).make_batch(0, 0, 1, 1, b) for b in range(6)]
    thrashing = _stream(corpus, reader_cache=1, pairs_per_visit=1)
    monkeypatch.setattr(clip_index_module, "read_mot_file", counting("parse", clip_index_module.read_mot_file))
    monkeypatch.setattr(stream_module, "open_reader", counting("open", stream_module.open_reader))
    for b, want in enumerate(reference):
        got = thrashing.make_batch(0, 0, 1, 1, b)
        assert _summary(got) == _summary(want)
        torch.testing.assert_close(got.crops, want.crops)
    visited = {c for batch in reference for c in batch.clip_index.tolist()}
    assert calls["open"] > 2 * len(visited)  # readers were reopened ...
    assert calls["parse"] == 2 * len(visited)  # ... but each detection and gt file was parsed once


def test_a_stream_decodes_its_clips_forward_once_and_gives_one_pair_to_each_batch(corpus, monkeypatch):
    import isr_lightning.data.crop_source as stream_module

    decodes = []

    def recording_reader(clip, *args, **kwargs):
        reader = open_reader(clip, *args, **kwargs)
        get_frames = reader.get_frames
        reader.get_frames = lambda indices: decodes.append((clip.source, list(indices))) or get_frames(indices)
        return reader

    open_reader = stream_module.open_reader
    monkeypatch.setattr(stream_module, "open_reader", recording_reader)
    # 3 streams; windows of 4 frames: 8 clips x 6 windows = 16 windows a stream a round
    stream = _stream(corpus, batch_size=3, open_clips=3, pairs_per_visit=4, batches_per_epoch=64)
    batches = [stream.make_batch(0, 0, 1, 1, b) for b in range(64)]
    assert len(decodes) == 3 * 16  # one decode call a stream a visit
    decoded = [(source, f) for source, indices in decodes for f in indices]
    # every frame decoded once (partners were kept), but for the partners' reach (delta_max + 1 frames)
    # before a stream that starts inside a clip, which another stream decodes too: 2 boundaries
    assert len(set(decoded)) == 8 * 24 and len(decoded) - len(set(decoded)) <= 2 * 5
    for indices in (i for _, i in decodes):
        assert indices == sorted(set(indices))
    for visit in range(16):
        mine = batches[visit * 4 : (visit + 1) * 4]
        windows = stream.worker_windows(0, Shard(), visit)
        for batch in mine:
            assert batch.num_pairs == 3
            for t, u in batch.frame_ids.tolist():
                assert 1 <= u - t <= 4
        for window in windows:  # every frame with a partner is a later frame; 4 pairs a stream a visit
            later = _later_frames(mine, window)
            assert set(later) == {f for f in range(window.start, window.stop) if f > 1} and len(later) == 4


def test_instance_pairs_carry_the_same_boxes_on_both_sides_when_capped(corpus):
    stream = _stream(corpus, pairing="instance", max_crops_per_pair=4)  # 3 people, 2 kept per frame
    batch = stream.make_batch(0, 0, 1, 1, 0)
    for p in range(batch.num_pairs):
        side_a = batch.boxes[(batch.pair_index == p) & (batch.frame_side == 0)]
        side_b = batch.boxes[(batch.pair_index == p) & (batch.frame_side == 1)]
        assert len(side_a) == 2
        torch.testing.assert_close(side_a, side_b)
        assert batch.frame_ids[p, 0] == batch.frame_ids[p, 1]
