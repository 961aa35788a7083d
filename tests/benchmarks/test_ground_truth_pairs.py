"""The ablation's upper-bound row mines exactly the ground-truth pairs."""

from __future__ import annotations

import torch

from tests.benchmarks.helpers import load_benchmark

ground_truth_pairs = load_benchmark("ground_truth_pairs").ground_truth_pairs


def test_pairs_join_equal_ids_within_each_frame_pair():
    # frame pair 0: t has ids [3, 5, -1], t+d has [5, 7, 3]; frame pair 1: t [1], t+d [-1, 1]
    ids = torch.tensor([3, 5, -1, 5, 7, 3, 1, -1, 1])
    pair_index = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1])
    side = torch.tensor([0, 0, 0, 1, 1, 1, 0, 1, 1])
    anchors, positives = ground_truth_pairs(ids, pair_index, side)
    assert sorted(zip(anchors.tolist(), positives.tolist(), strict=True)) == [(0, 5), (1, 3), (6, 8)]


def test_same_id_in_two_frame_pairs_is_not_a_pair():
    # track ids are per clip: id 4 in frame pair 0 and id 4 in frame pair 1 are two people
    ids = torch.tensor([4, 9, 4, 8])
    anchors, positives = ground_truth_pairs(ids, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    assert anchors.numel() == 0 and positives.numel() == 0
