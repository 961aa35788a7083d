"""Identities and their rendering: shared colours, distinct outfits, facing, depth, drawing styles."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import ndimage

from isr_lightning.synth import render_person, sample_outfit
from isr_lightning.synth.identity import PALETTE
from isr_lightning.synth.render import BACK, FRONT, RIGHT, STYLES, SpriteBank


def test_colours_are_shared_but_combinations_are_distinct():
    rng = np.random.default_rng(0)
    outfits = [sample_outfit(rng) for _ in range(300)]
    tops = Counter(o.top for o in outfits)
    assert set(tops) == set(PALETTE.values())  # every palette colour used
    assert min(tops.values()) >= 10  # each colour worn by many people
    combos = {
        (o.top, o.top_pattern, o.bottom, o.bottom_color, o.bag, o.hat, o.hair_style, o.long_sleeves) for o in outfits
    }
    assert len(combos) > 0.95 * len(outfits)


def test_same_outfit_is_deterministic_and_facing_changes_appearance():
    outfit = sample_outfit(np.random.default_rng(5))
    a = np.asarray(render_person(outfit, FRONT, 0, 120))
    b = np.asarray(render_person(outfit, FRONT, 0, 120))
    np.testing.assert_array_equal(a, b)
    back = np.asarray(render_person(outfit, BACK, 0, 120))
    assert np.abs(a.astype(int) - back).mean() > 1.0
    front = a[..., 3] > 0
    side, walking = (np.asarray(render_person(outfit, RIGHT, stride, 120))[..., 3] > 0 for stride in (0, 2))

    def extent(mask: np.ndarray) -> int:
        columns = np.nonzero(mask.any(axis=0))[0]
        return int(columns[-1] - columns[0] + 1)

    torso, legs = slice(int(0.35 * len(a)), int(0.5 * len(a))), slice(int(0.75 * len(a)), None)
    assert extent(side[torso]) < 0.75 * extent(front[torso])  # in profile the torso is narrow
    top = [int(np.nonzero(m.any(axis=1))[0][0]) for m in (front, side)]
    assert abs(top[0] - top[1]) <= 1  # the same person: the same height
    assert extent(walking[legs]) > 1.5 * extent(side[legs])  # a stride spreads the legs


def test_backpack_shows_from_behind_not_from_the_front():
    rng = np.random.default_rng(0)
    outfit = next(
        o
        for o in (sample_outfit(rng) for _ in range(500))
        if o.bag == "backpack"
        and o.bag_color not in (o.top, o.pattern_color, o.hair, o.bottom_color, o.inner_color, o.logo_color)
    )
    bank = SpriteBank(outfit, ref_height=120)

    def bag_pixels(facing: int) -> int:
        rgba, _, _ = bank.sprite(facing, 0, 120 / outfit.height)
        diff = np.abs(rgba[..., :3].astype(int) - np.array(outfit.bag_color)).sum(-1)
        return int(((diff < 60) & (rgba[..., 3] > 200)).sum())

    assert bag_pixels(BACK) > 2 * bag_pixels(FRONT)  # front: straps only


def test_sprite_scales_with_depth():
    bank = SpriteBank(sample_outfit(np.random.default_rng(1)))
    small, _, _ = bank.sprite(FRONT, 0, 40)
    large, _, fy_large = bank.sprite(FRONT, 0, 120)
    assert large.shape[0] > 2.5 * small.shape[0]
    assert abs(fy_large - large.shape[0]) < 0.1 * large.shape[0]


def test_drawing_styles_differ_and_keep_the_ground_point():
    outfit = sample_outfit(np.random.default_rng(2))
    flat, shaded, outlined = (SpriteBank(outfit, ref_height=120, style=s) for s in STYLES)
    sprites = [bank.sprite(FRONT, 0, 120) for bank in (flat, shaded, outlined)]
    (a, fx_a, fy_a), (b, _, fy_b), (c, fx_c, fy_c) = sprites
    assert fy_a == pytest.approx(fy_b, abs=1) and fy_a == pytest.approx(fy_c, abs=2)  # feet on the same row
    assert fx_c / c.shape[1] == pytest.approx(fx_a / a.shape[1], abs=0.05)  # still centred
    assert c.shape[1] > 1.05 * a.shape[1]  # the outlined figure is stockier
    # shading darkens the figure towards its silhouette, within the same alpha
    inside = a[..., 3] > 127
    np.testing.assert_array_equal(inside, b[..., 3] > 127)
    rim = inside & ~ndimage.binary_erosion(inside, iterations=2)
    core = ndimage.binary_erosion(inside, iterations=5)

    def rim_to_core(sprite: np.ndarray) -> float:
        return sprite[..., :3][rim].mean() / sprite[..., :3][core].mean()

    assert rim_to_core(b) < rim_to_core(a) - 0.1
    # outlines: the silhouette's border pixels are ink-dark
    border = (c[..., 3] > 127) & ~ndimage.binary_erosion(c[..., 3] > 127)
    assert c[..., :3][border].max(axis=-1).mean() < 80
    with pytest.raises(ValueError, match="style"):
        render_person(outfit, FRONT, 0, 120, style="watercolour")
