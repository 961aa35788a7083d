import numpy as np
import pytest

from isr_lightning.data.clip_index import ClipIndex, PairSampling, SkipItem
from isr_lightning.data.mot import FrameBoxes

BOXES = FrameBoxes(np.zeros((2, 4), np.float32), np.full(2, -1), np.ones(2, np.float32))


def _index(frames_with_people, delta, min_crops=2, times=None, grid=1):
    return ClipIndex.build({f: BOXES for f in frames_with_people}, delta, min_crops, times, grid)


def test_a_window_pairs_every_later_frame_with_a_partner_delta_before_it():
    index = _index([1, 2, 3, 5, 9, 10, 11, 12], delta=(1, 3))
    rng = np.random.default_rng(0)
    draws: dict[int, set[int]] = {}
    for _ in range(400):
        pairs = index.window_pairs(5, 12, rng)
        # brute force: the later frames with a valid frame 1-3 before them, in order
        assert [u for _, u in pairs] == [u for u in (5, 9, 10, 11) if any(1 <= u - t <= 3 for t in index.valid)]
        for t, u in pairs:
            assert t in index.valid and 1 <= u - t <= 3  # partners may lie before the window
            draws.setdefault(u, set()).add(t)
    assert draws == {5: {2, 3}, 10: {9}, 11: {9, 10}}  # 9 has no partner; every candidate is drawn
    assert index.num_pairs() == sum(1 for t in index.valid for u in index.valid if 1 <= u - t <= 3)


def test_partners_prefer_the_grid_so_fewer_frames_are_kept():
    index = _index(range(1, 41), delta=(2, 10), grid=4)
    rng = np.random.default_rng(1)
    pairs = [pair for _ in range(50) for pair in index.window_pairs(20, 30, rng)]
    assert all(t % 4 == 0 and 2 <= u - t <= 10 for t, u in pairs)


def test_pairs_are_placed_by_timestamps_when_delta_is_in_seconds():
    # a variable frame rate: frames 1-10 at 10 fps, then 11-20 at 2 fps
    times = np.concatenate([np.arange(10) * 0.1, 0.9 + np.arange(1, 11) * 0.5])
    index = _index(range(1, 21), delta=(0.45, 0.55), times=times)
    rng = np.random.default_rng(2)
    for t, u in index.window_pairs(1, 21, rng):
        assert 0.45 - 1e-9 <= times[u - 1] - times[t - 1] <= 0.55 + 1e-9
    pairs = index.window_pairs(1, 21, rng)
    assert (6, 11) not in pairs and (12, 13) in pairs  # 5 frames at 10 fps are 0.5 s; 1 frame at 2 fps too


def test_instance_windows_and_unusable_clips():
    index = _index([4, 7], delta=(0, 0))
    assert index.window_pairs(1, 10, np.random.default_rng(0)) == [(4, 4), (7, 7)]
    with pytest.raises(SkipItem) as err:
        _index([1, 2], delta=(5, 9)).check_usable("clip.mp4", span=29, min_crops=2)
    assert err.value.reason == "too_few_people" and "clip.mp4" in str(err.value)
    with pytest.raises(SkipItem) as err:
        _index([1, 2], delta=(5, 9)).check_usable("clip.mp4", span=2, min_crops=2)
    assert err.value.reason == "clip_too_short"


def test_index_clip_measures_delta_in_seconds_on_the_timestamps():
    frames = {f: BOXES for f in range(1, 101)}
    index = PairSampling(delta_seconds=(0.5, 3.0), partner_candidates=16).index_clip(frames, 25.0, 100, "clip.mp4")
    assert index.delta == (0.5, 3.0)
    np.testing.assert_allclose(index.position, (np.arange(1, 101) - 1) / 25.0)
    assert index.grid == 4 and index.reach == 76  # ceil(62.5 frames / 16); 3 s back at 25 fps, and the frame
    in_frames = PairSampling(delta_frames=(1, 30)).index_clip(frames, 25.0, 100, "clip.mp4")
    assert in_frames.delta == (1.0, 30.0) and in_frames.reach == 31 and in_frames.grid == 2
    np.testing.assert_array_equal(in_frames.position, np.arange(1, 101))
    with pytest.raises(SkipItem, match="shorter than delta"):
        PairSampling(delta_seconds=(5.0, 6.0)).index_clip(frames, 25.0, 100, "clip.mp4")
