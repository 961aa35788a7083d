"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.videohelpers import MOT17_MINI, make_clip, person_boxes, synthetic_frames, write_mot, write_video


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 64x48 clips of 24 frames with 3 people each."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(8):
        make_clip(root / f"cam{i % 2}", f"clip{i}", seed=i, gt=True)
    return root


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good clip and one clip for each reason a clip is skipped (see test_bad_inputs.EXPECTED)."""
    root = tmp_path_factory.mktemp("bad")
    make_clip(root, "good", num_frames=20)
    (root / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    (root / "garbage.txt").write_text("1,-1,1,1,10,10,1\n")
    truncated = make_clip(root, "truncated", num_frames=20)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    # index at the front: the header opens, the frame data ends early
    faststart = make_clip(root, "truncated_data", num_frames=20)
    write_video(faststart, synthetic_frames(20, 48, 64), faststart=True)
    data = faststart.read_bytes()
    faststart.write_bytes(data[: int(len(data) * 0.9)])
    make_clip(root, "nodets", num_frames=20)
    (root / "nodets.txt").unlink()
    make_clip(root, "malformed", num_frames=20)
    (root / "malformed.txt").write_text("1,-1,foo,2,3\n")
    make_clip(root, "short", num_frames=3)
    lonely = make_clip(root, "lonely", num_frames=20)
    boxes = person_boxes(20, 64, 48, people=2)
    write_mot(lonely.with_suffix(".txt"), {f: rows[: f % 2] for f, rows in boxes.items()})  # 0 or 1 person
    return root


@pytest.fixture
def mot17_mini() -> Path:
    if not MOT17_MINI.is_dir():
        pytest.skip(f"{MOT17_MINI} not present")
    return MOT17_MINI.resolve()


SHARD_SIZE = (16, 8)
"""Crop size of the :func:`shards` fixture."""


@pytest.fixture(scope="session")
def shards(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`corpus` extracted by two LitData workers at :data:`SHARD_SIZE`."""
    from isr_lightning.data.extract import extract_corpus

    out = tmp_path_factory.mktemp("shards") / "out"
    summary = extract_corpus(str(corpus), out, size=SHARD_SIZE, workers=2)
    assert summary["status"] == "extracted" and summary["clips"] == 8 and summary["skipped"] == {}
    return out
