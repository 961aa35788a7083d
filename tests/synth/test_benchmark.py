"""The cross-domain benchmark parses as Market-1501 with the stated counts."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from isr_lightning.evaluation.datasets import parse_market_name
from isr_lightning.synth import generate_benchmark

MARKET = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
SMALL = dict(num_cameras=4, num_distractors=6, num_junk=5, num_train_identities=3)


def _parse(folder):
    out = []
    for p in sorted(folder.iterdir()):
        m = MARKET.match(p.name)
        assert m, p.name
        assert parse_market_name(p.name) == (int(m.group(1)), int(m.group(2)))
        out.append((int(m.group(1)), int(m.group(2)), p))
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate_benchmark(tmp_path_factory.mktemp("bench"), num_identities=10, seed=3, **SMALL)


def test_market_layout_and_counts(bench):
    root = bench.root
    query = _parse(root / "query")
    gallery = _parse(root / "bounding_box_test")
    train = _parse(root / "bounding_box_train")
    assert len(query) == bench.num_query > 0
    assert len(gallery) == bench.num_gallery
    assert len(train) == bench.num_train > 0
    assert sum(pid == 0 for pid, _, _ in gallery) == bench.num_distractors == 6
    assert sum(pid == -1 for pid, _, _ in gallery) == bench.num_junk == 5
    test_ids = {pid for pid, _, _ in gallery if pid > 0}
    assert test_ids == set(range(1, 11))
    assert {pid for pid, _, _ in query} <= test_ids
    assert all(pid > 0 for pid, _, _ in query)  # no junk/distractor queries
    assert not test_ids & {pid for pid, _, _ in train}
    assert {cam for _, cam, _ in query + gallery} <= set(range(1, 5))
    counts = json.loads((root / "benchmark.json").read_text())["counts"]
    assert counts["query"] == bench.num_query and counts["gallery"] == bench.num_gallery
    names = [p.name for _, _, p in query + gallery + train]
    assert len(set(names)) == len(names)
    with Image.open(query[0][2]) as im:
        assert im.size == (64, 128) and im.mode == "RGB"


def test_every_query_has_a_cross_camera_match(bench):
    gallery = defaultdict(set)
    for pid, cam, _ in _parse(bench.root / "bounding_box_test"):
        gallery[pid].add(cam)
    for pid, cam, _ in _parse(bench.root / "query"):
        assert gallery[pid] - {cam}, (pid, cam)
    per_id = defaultdict(int)
    for pid, _, _ in _parse(bench.root / "bounding_box_test"):
        per_id[pid] += 1
    assert all(per_id[pid] >= 2 for pid in range(1, 11))


def test_deterministic_and_cached(bench, tmp_path):
    again = generate_benchmark(tmp_path / "b", num_identities=10, seed=3, **SMALL)
    for sub in ("query", "bounding_box_test", "bounding_box_train"):
        a = {p.name: p.read_bytes() for p in (bench.root / sub).iterdir()}
        b = {p.name: p.read_bytes() for p in (again.root / sub).iterdir()}
        assert a == b
    assert generate_benchmark(tmp_path / "b", num_identities=10, seed=3, **SMALL).cached
    other = generate_benchmark(tmp_path / "b", num_identities=10, seed=4, **SMALL)
    assert not other.cached
    # a cache written by another generator version is rendered again
    meta_path = tmp_path / "b" / "benchmark.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": "isr-lightning synthetic Market-1501 benchmark v1"}))
    assert not generate_benchmark(tmp_path / "b", num_identities=10, seed=4, **SMALL).cached


def test_validation(tmp_path):
    with pytest.raises(ValueError):
        generate_benchmark(tmp_path, num_identities=5, num_cameras=10)
    with pytest.raises(ValueError, match="domain"):
        generate_benchmark(tmp_path, num_identities=5, domain="beach")


def test_street_control_same_people_other_domain(bench, tmp_path):
    street = generate_benchmark(tmp_path / "s", num_identities=10, seed=3, domain="street", **SMALL)
    assert {pid for pid, _, _ in _parse(street.root / "query")} == {pid for pid, _, _ in _parse(bench.root / "query")}
    meta = json.loads((street.root / "benchmark.json").read_text())
    assert meta["config"]["domain"] == "street"
    # street cameras are mild (training-video responses); mall cameras are not
    assert all(cam["response"]["blur"] == 0.0 for cam in meta["cameras"])
    mall_meta = json.loads((bench.root / "benchmark.json").read_text())
    assert any(cam["response"]["blur"] > 0.0 for cam in mall_meta["cameras"])


def test_no_train_folder_without_train_identities(tmp_path):
    info = generate_benchmark(tmp_path / "b", num_identities=4, seed=0, **{**SMALL, "num_train_identities": 0})
    assert not (info.root / "bounding_box_train").exists()
    from isr_lightning.evaluation import load_market_layout

    split = load_market_layout(info.root)
    assert len(split.query) == info.num_query and split.train == []


@pytest.mark.parametrize(("domain", "style"), [("station", "shaded"), ("park", "outlined")])
def test_other_domains_same_people_drawn_their_own_way(bench, tmp_path, domain, style):
    other = generate_benchmark(tmp_path / domain, num_identities=10, seed=3, domain=domain, preview=False, **SMALL)
    assert {pid for pid, _, _ in _parse(other.root / "query")} == {pid for pid, _, _ in _parse(bench.root / "query")}
    assert other.config.style == style and bench.config.style == "flat"
    name = sorted(p.name for p in (bench.root / "query").iterdir())[0]
    mine = np.asarray(Image.open(other.root / "query" / name), np.float32)
    mall = np.asarray(Image.open(bench.root / "query" / name), np.float32)
    assert np.abs(mine - mall).mean() > 10  # another place, camera and drawing


def test_person_style_overrides_the_domain_style(tmp_path):
    small = dict(SMALL, num_distractors=0, num_junk=0, num_train_identities=0)
    flat = generate_benchmark(tmp_path / "a", num_identities=2, seed=3, preview=False, **small)
    outlined = generate_benchmark(
        tmp_path / "b", num_identities=2, seed=3, person_style="outlined", preview=False, **small
    )
    assert outlined.config.style == "outlined"
    name = sorted(p.name for p in (flat.root / "query").iterdir())[0]
    a, b = (np.asarray(Image.open(info.root / "query" / name), np.float32) for info in (flat, outlined))
    assert np.abs(a - b).mean() > 3
    with pytest.raises(ValueError, match="person_style"):
        generate_benchmark(tmp_path / "c", num_identities=2, person_style="sketch")
