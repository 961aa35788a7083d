"""The background-shortcut benchmark cuts person-only and background-only crops exactly."""

from __future__ import annotations

import numpy as np
import torch

from tests.benchmarks.helpers import load_benchmark

GREY = load_benchmark("background_shortcut").GREY
crops_three_ways = load_benchmark("background_shortcut").crops_three_ways
hungarian_correct = load_benchmark("background_shortcut").hungarian_correct


def test_crops_split_each_box_into_its_person_and_the_rest():
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    idmap = np.zeros((6, 8), np.int32)
    idmap[1:4, 2:4] = 7  # person 7
    idmap[2:5, 4:6] = 9  # person 9, overlapping person 7's box
    boxes = np.array([[1, 0, 4, 5], [4, 2, 2, 3]])  # x, y, w, h
    crops = crops_three_ways(image, idmap, np.array([7, 9]), boxes)
    full, person, background = crops["full"][0], crops["person only"][0], crops["background only"][0]
    np.testing.assert_array_equal(full, image[0:5, 1:5])
    mine = idmap[0:5, 1:5] == 7
    np.testing.assert_array_equal(person[mine], full[mine])
    assert (person[~mine] == GREY).all()  # person 9's pixels inside the box are not person 7
    np.testing.assert_array_equal(background[~mine], full[~mine])
    assert (background[mine] == GREY).all()
    assert (crops["background only"][1] == GREY).all()  # person 9 fills its own box


def test_hungarian_counts_correct_matches():
    a = torch.eye(3)
    b = torch.eye(3)[[2, 0, 1]]  # b's rows are a's rows 2, 0, 1
    assert hungarian_correct(a, b, np.array([10, 11, 12]), np.array([12, 10, 11])) == (3, 3)
    assert hungarian_correct(a, b, np.array([10, 11, 12]), np.array([10, 11, 12])) == (0, 3)
