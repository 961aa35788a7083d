"""Video readers: decord and PyAV seek to the frames a sequential decode gives; image folders."""

import numpy as np
import pytest

from isr_lightning.data.video import DecordVideoReader, ImageFolderReader, PyAVVideoReader
from tests.data.videohelpers import decode_reference, synthetic_frames, write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "v.mp4"
    return write_video(path, synthetic_frames(60, 90, 160, seed=3))


@pytest.mark.parametrize("reader_cls", [DecordVideoReader, PyAVVideoReader])
def test_seeking_readers_equal_sequential_pyav(video, reader_cls):
    ref = decode_reference(video)
    reader = reader_cls(str(video))
    assert (reader.num_frames, reader.height, reader.width) == (60, 90, 160)
    for idx in ([0], [47, 3], [12, 12, 59], [30, 31, 58, 1], [11, 12, 13, 24, 25], [59, 0]):
        got = reader.get_frames(idx)
        assert got.shape == (len(idx), 90, 160, 3)
        np.testing.assert_array_equal(got, ref[idx])


def test_decord_reads_only_requested_frames(video, monkeypatch):
    reader = DecordVideoReader(str(video))
    asked = []
    original = reader._vr.get_batch
    monkeypatch.setattr(reader._vr, "get_batch", lambda idx: asked.append(list(idx)) or original(idx))
    reader.get_frames([40, 7, 40])
    assert asked == [[7, 40]]


def test_image_folder_reader(tmp_path):
    from PIL import Image

    frames = synthetic_frames(3, 20, 30)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i + 1:06d}.png")
    reader = ImageFolderReader(str(tmp_path), ".png")
    assert (reader.num_frames, reader.width, reader.height) == (3, 30, 20)
    np.testing.assert_array_equal(reader.get_frames([2, 0]), frames[[2, 0]])
