import copy

import numpy as np
import pytest
import torch

from isr_lightning.batch import FramePairBatch, frame_pair_groups
from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.loader import VideoPairLoader
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


@pytest.mark.parametrize("num_workers", [2])
def test_sharding_two_ranks_two_workers(corpus, num_workers):
    per_rank = []
    for rank in range(2):
        stream = _stream(corpus, batches_per_epoch=5, clips_per_batch=2)
        stream.rank, stream.world_size = rank, 2
        loader = VideoPairLoader(stream, num_workers=num_workers)
        batches = _run(loader)
        assert len(batches) == 5 == len(loader)
        per_rank.append(batches)
    # every batch's clips come from one (rank, worker) shard; shards are disjoint
    stream = _stream(corpus)
    shards = {(r, w): set(stream.shard(0, r, 2, w, 2)) for r in range(2) for w in range(2)}
    assert set().union(*shards.values()) == set(range(8))
    assert sum(len(s) for s in shards.values()) == 8
    seen = {}
    for rank, batches in enumerate(per_rank):
        for b, batch in enumerate(batches):
            clips = set(batch.clip_index.tolist())
            assert clips <= shards[(rank, b % 2)]
            seen.setdefault((rank, b % 2), set()).update(clips)
    assert set().union(*seen.values()) == set(range(8))


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

    # one pair per visit: every batch opens its clips again
    reference = [_stream(corpus, reader_cache=64, pairs_per_visit=1).make_batch(0, 0, 1, 1, b) for b in range(6)]
    monkeypatch.setattr(clip_index_module, "read_mot_file", counting("parse", clip_index_module.read_mot_file))
    monkeypatch.setattr(stream_module, "open_reader", counting("open", stream_module.open_reader))
    thrashing = _stream(corpus, reader_cache=1, pairs_per_visit=1)
    for b, want in enumerate(reference):  # 6 batches x 3 clips: every clip comes round again
        got = thrashing.make_batch(0, 0, 1, 1, b)
        assert _summary(got) == _summary(want)
        torch.testing.assert_close(got.crops, want.crops)
    num_clips = len(thrashing.clips)
    assert calls["open"] > num_clips  # readers were reopened ...
    assert calls["parse"] == 2 * num_clips  # ... but each detection and gt file was parsed once


def test_a_visit_decodes_each_clip_once_and_puts_one_pair_per_clip_in_a_batch(corpus, monkeypatch):
    import isr_lightning.data.crop_source as stream_module

    decodes = []

    def recording_reader(*args, **kwargs):
        reader = open_reader(*args, **kwargs)
        get_frames = reader.get_frames
        reader.get_frames = lambda indices: decodes.append(list(indices)) or get_frames(indices)
        return reader

    open_reader = stream_module.open_reader
    monkeypatch.setattr(stream_module, "open_reader", recording_reader)
    stream = _stream(corpus, batch_size=4, pairs_per_visit=3, batches_per_epoch=6)
    batches = [stream.make_batch(0, 0, 1, 1, b) for b in range(6)]
    assert len(decodes) == 2 * 4  # 2 visits x 4 clips, one decode call each
    for indices in decodes:  # all frames of a clip's 3 pairs in one sorted call
        assert indices == sorted(set(indices)) and 2 <= len(indices) <= 6
    for visit in (batches[:3], batches[3:]):
        clips = [b.clip_index.tolist() for b in visit]
        assert all(len(set(c)) == 4 for c in clips)  # one pair per clip in a batch
        assert clips[0] == clips[1] == clips[2]  # the visit's clips, in every batch of it
        frames = [b.frame_ids.tolist() for b in visit]
        assert frames[0] != frames[1] or frames[1] != frames[2]  # ... with their own pairs
        for pairs in frames:
            for t, u in pairs:  # within delta_frames
                assert 1 <= u - t <= 4
    assert set(batches[0].clip_index.tolist()).isdisjoint(batches[3].clip_index.tolist())


def test_instance_pairs_carry_the_same_boxes_on_both_sides_when_capped(corpus):
    stream = _stream(corpus, pairing="instance", max_crops_per_pair=4)  # 3 people, 2 kept per frame
    batch = stream.make_batch(0, 0, 1, 1, 0)
    for p in range(batch.num_pairs):
        side_a = batch.boxes[(batch.pair_index == p) & (batch.frame_side == 0)]
        side_b = batch.boxes[(batch.pair_index == p) & (batch.frame_side == 1)]
        assert len(side_a) == 2
        torch.testing.assert_close(side_a, side_b)
        assert batch.frame_ids[p, 0] == batch.frame_ids[p, 1]
