"""Video readers: decord, PyAV and torchcodec give the frames a sequential decode gives; image folders."""

import numpy as np
import pytest

from isr_lightning.data.video import (
    DecordVideoReader,
    ImageFolderReader,
    PyAVVideoReader,
    TorchCodecVideoReader,
    UnreadableVideoError,
)
from tests.data.videohelpers import decode_reference, synthetic_frames, write_video


def _torchcodec_or_skip(video):
    try:
        return TorchCodecVideoReader(str(video))
    except UnreadableVideoError as err:  # no torchcodec, or no FFmpeg libraries: an optional backend
        pytest.skip(str(err))


READERS = [DecordVideoReader, PyAVVideoReader, TorchCodecVideoReader]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "v.mp4"
    return write_video(path, synthetic_frames(60, 90, 160, seed=3))


@pytest.mark.parametrize("reader_cls", READERS)
def test_seeking_readers_equal_sequential_pyav(video, reader_cls):
    ref = decode_reference(video)
    reader = _torchcodec_or_skip(video) if reader_cls is TorchCodecVideoReader else reader_cls(str(video))
    assert (reader.num_frames, reader.height, reader.width) == (60, 90, 160)
    for idx in ([0], [47, 3], [12, 12, 59], [30, 31, 58, 1], [11, 12, 13, 24, 25], [59, 0]):
        got = reader.get_frames(idx)
        assert got.shape == (len(idx), 90, 160, 3)
        np.testing.assert_array_equal(got, ref[idx])


@pytest.mark.parametrize("reader_cls", READERS)
def test_window_after_window_reads_continue_forward(video, reader_cls):
    # how a stream reads a clip: consecutive windows of frames, each call continuing the last
    ref = decode_reference(video)
    reader = _torchcodec_or_skip(video) if reader_cls is TorchCodecVideoReader else reader_cls(str(video))
    for start in range(0, 60, 8):
        idx = list(range(start, min(start + 8, 60)))
        np.testing.assert_array_equal(reader.get_frames(idx), ref[idx])
    np.testing.assert_allclose(reader.timestamps()[:3], [0, 1 / reader.fps, 2 / reader.fps])


def test_variable_frame_rate_timestamps_come_from_the_container(tmp_path):
    # frames 0-9 at 10 fps, then frames 10-19 at 2 fps (time base 1/100 s)
    pts = [10 * i for i in range(10)] + [90 + 50 * i for i in range(1, 11)]
    path = write_video(tmp_path / "vfr.mp4", synthetic_frames(20, 48, 64, seed=1), pts=pts)
    expected = np.array(pts, dtype=np.float64) / 100
    for reader in (DecordVideoReader(str(path)), PyAVVideoReader(str(path))):
        assert reader.num_frames == 20
        np.testing.assert_allclose(reader.timestamps(), expected, atol=0.011)


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
