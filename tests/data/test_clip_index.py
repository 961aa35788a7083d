import numpy as np
import pytest

from isr_lightning.data.clip_index import ClipIndex, SkipItem, delta_range
from isr_lightning.data.mot import FrameBoxes


def _index(frames_with_people, delta, min_crops=2):
    boxes = FrameBoxes(np.zeros((2, 4), np.float32), np.full(2, -1), np.ones(2, np.float32))
    return ClipIndex.build({f: boxes for f in frames_with_people}, delta, min_crops)


def test_sample_pair_is_uniform_over_valid_pairs():
    index = _index([1, 2, 3, 5, 9], delta=(1, 3))
    # brute force: every (t, u) with both frames valid and 1 <= u - t <= 3
    valid = [(t, u) for t in index.valid for u in index.valid if 1 <= u - t <= 3]
    assert index.num_pairs() == len(valid) == 5
    rng = np.random.default_rng(0)
    draws = [index.sample_pair(rng) for _ in range(5000)]
    counts = {pair: draws.count(pair) for pair in valid}
    assert set(draws) == set(valid)
    assert max(counts.values()) / min(counts.values()) < 1.2


def test_a_visit_draws_its_pairs_from_one_window_around_the_first():
    index = _index(range(1, 301), delta=(5, 20))
    rng = np.random.default_rng(1)
    for _ in range(200):
        pairs = index.sample_visit(rng, 8)
        assert len(pairs) == 8
        assert all(5 <= u - t <= 20 for t, u in pairs)
        frames = [f for pair in pairs for f in pair]
        assert max(frames) - min(frames) <= 2 * 20  # inside one window of 2 * delta_max + 1
    # the first pairs of visits still cover the whole clip
    firsts = [index.sample_visit(rng, 2)[0][0] for _ in range(500)]
    assert min(firsts) < 20 and max(firsts) > 260


def test_instance_visits_and_unusable_clips():
    index = _index([4, 7], delta=(0, 0))
    assert all(t == u and t in (4, 7) for t, u in index.sample_visit(np.random.default_rng(0), 5))
    with pytest.raises(SkipItem) as err:
        _index([1, 2], delta=(5, 9)).check_usable("clip.mp4", num_frames=30, min_crops=2)
    assert err.value.reason == "too_few_people" and "clip.mp4" in str(err.value)
    with pytest.raises(SkipItem) as err:
        _index([1, 2], delta=(5, 9)).check_usable("clip.mp4", num_frames=3, min_crops=2)
    assert err.value.reason == "clip_too_short"


def test_delta_range_converts_seconds_with_the_clip_frame_rate():
    assert delta_range("temporal", 12.0, (1, 30), (0.5, 3.0)) == (6, 36)
    assert delta_range("temporal", 25.0, (0, 30), None) == (1, 30)
    assert delta_range("temporal", 2.0, (1, 30), (0.1, 0.2)) == (1, 1)
    assert delta_range("instance", 25.0, (1, 30), (0.5, 3.0)) == (0, 0)
