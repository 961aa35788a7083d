"""Frame readers that decode only the frames asked for.

:class:`DecordVideoReader` seeks and batch-decodes with decord (``VideoReader.get_batch``),
so the cost of reading frames ``t`` and ``t + delta`` does not grow with ``t``.
:class:`ImageFolderReader` reads numbered images (MOTChallenge ``img1/000001.jpg``).
Frame indices are 0-based here; MOT frame ``f`` is index ``f - 1``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from isr_lightning.data.sources import Clip
from isr_lightning.storage import is_url, read_bytes

__all__ = [
    "DEFAULT_VIDEO_BACKEND",
    "VIDEO_BACKENDS",
    "DecordVideoReader",
    "FrameReader",
    "ImageFolderReader",
    "PyAVVideoReader",
    "TorchCodecVideoReader",
    "UnreadableVideoError",
    "check_backend",
    "open_reader",
]


class UnreadableVideoError(RuntimeError):
    """A video or image sequence cannot be opened or decoded."""


class FrameReader(Protocol):
    """Random access to the frames of one clip."""

    num_frames: int
    fps: float
    width: int
    height: int

    def timestamps(self) -> np.ndarray:
        """``(num_frames,)`` float64 presentation times in seconds, from the first frame's."""
        ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames.

        Args:
            indices: 0-based frame indices, any order, repeats allowed.

        Returns:
            ``(K, H, W, 3)`` uint8 RGB frames in the order of ``indices``.
        """
        ...


def _video_input(source: str) -> str | bytes:
    """What a decoder opens: a local path, or the bytes of a URL (read once, retried)."""
    return read_bytes(source) if is_url(source) else source.removeprefix("file://")


def _sorted_read(reader: Any, indices: Sequence[int], decode: Any) -> np.ndarray:
    """Frames ``indices`` (any order, repeats allowed) from one ``decode(sorted unique indices)`` call.

    Raises:
        IndexError: an index outside ``[0, reader.num_frames)``.
        UnreadableVideoError: the decoder failed (the message names the file and the frames).
    """
    idx = [int(i) for i in indices]
    if any(i < 0 or i >= reader.num_frames for i in idx):
        raise IndexError(f"{reader.source}: frame index out of range [0, {reader.num_frames})")
    uniq = sorted(set(idx))
    try:
        frames = decode(uniq)
    except Exception as err:
        raise UnreadableVideoError(f"cannot decode frames {uniq} of {reader.source}: {err}") from err
    pos = {v: k for k, v in enumerate(uniq)}
    return frames[[pos[i] for i in idx]]


class DecordVideoReader:
    """Video reader backed by decord.

    Args:
        source: local path or fsspec URL (remote files are read into memory once).
        num_threads: decoder threads (0 = decord's default, 1 suits dataloader workers).

    Raises:
        UnreadableVideoError: the file cannot be opened or has no frames.
    """

    def __init__(self, source: str, num_threads: int = 1) -> None:
        import decord

        self.source = source
        try:
            data = _video_input(source)
            data = io.BytesIO(data) if isinstance(data, bytes) else data
            self._vr = decord.VideoReader(data, num_threads=num_threads)
            self.num_frames = len(self._vr)
            if self.num_frames <= 0:
                raise UnreadableVideoError(f"{source}: no frames")
            self.height, self.width = self._shape()
            self.fps = float(self._vr.get_avg_fps() or 0.0) or 25.0
        except UnreadableVideoError:
            raise
        except Exception as err:  # decord raises DECORDError / RuntimeError on bad files
            raise UnreadableVideoError(f"cannot open video {source}: {err}") from err

    def _shape(self) -> tuple[int, int]:
        # one decode of the first frame at open time; cheap next to a training pair
        shape = self._vr[0].shape
        self._vr.seek(0)
        return int(shape[0]), int(shape[1])

    def timestamps(self) -> np.ndarray:
        """Container timestamps of the frames (decord's index); see :class:`FrameReader`."""
        try:
            start = np.asarray(self._vr.get_frame_timestamp(np.arange(self.num_frames)), np.float64)[:, 0]
        except Exception:  # an index decord cannot time: the average rate
            return np.arange(self.num_frames, dtype=np.float64) / self.fps
        return start - start[0]

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode ``indices`` (0-based) with one seek + batch decode; see :class:`FrameReader`."""
        return _sorted_read(self, indices, lambda uniq: self._vr.get_batch(uniq).asnumpy())


class PyAVVideoReader:
    """Video reader backed by PyAV: seek to the keyframe before a frame, decode forward.

    At open, the packets are demuxed (not decoded) to list the frame timestamps and
    keyframes; frame ``i`` is the ``i``-th timestamp in presentation order. Reading frames
    ``t < u`` decodes from the keyframe before ``t`` and, when no keyframe lies between them,
    on to ``u`` without a second seek; the next call continues from where this one stopped when
    its first frame is ahead in the same run of frames. Only the requested frames are converted
    to RGB.

    Args:
        source: local path or fsspec URL (remote files are read into memory once).
        num_threads: decoder threads (0 = FFmpeg's default).

    Raises:
        UnreadableVideoError: the file cannot be opened or has no video frames.
    """

    def __init__(self, source: str, num_threads: int = 1) -> None:
        import av

        self.source = source
        try:
            data = _video_input(source)
            self._container = av.open(io.BytesIO(data) if isinstance(data, bytes) else data)
            self._stream = self._container.streams.video[0]
            if num_threads:
                self._stream.codec_context.thread_count = num_threads
            pts, keys = [], []
            for packet in self._container.demux(self._stream):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
            self._pts = np.array(sorted(pts), dtype=np.int64)
            self._keys = np.array(sorted(keys), dtype=np.int64)
            if len(self._pts) == 0:
                raise UnreadableVideoError(f"{source}: no frames")
            # a truncated file declares more frames than it holds: those fail when read
            self.num_frames = max(len(self._pts), int(self._stream.frames or 0))
            ctx = self._stream.codec_context
            self.width, self.height = int(ctx.width), int(ctx.height)
            rate = self._stream.average_rate or self._stream.guessed_rate
            self.fps = float(rate) if rate else 25.0
            self._frames: Iterator[av.VideoFrame] | None = None  # the decoder's output, kept between calls
            self._last: int | None = None  # pts of the last frame it gave
        except UnreadableVideoError:
            raise
        except Exception as err:
            raise UnreadableVideoError(f"cannot open video {source}: {err}") from err

    def timestamps(self) -> np.ndarray:
        """Container timestamps (pts x time base) of the frames; see :class:`FrameReader`."""
        base = float(self._stream.time_base or 0) or 1.0 / self.fps
        times = (self._pts - self._pts[0]).astype(np.float64) * base
        missing = self.num_frames - len(times)  # truncated: the declared rest at the average rate
        return np.concatenate([times, times[-1] + np.arange(1, missing + 1) / self.fps])

    def _key_before(self, pts: int) -> int:
        i = int(np.searchsorted(self._keys, pts, side="right")) - 1
        return int(self._keys[max(i, 0)]) if len(self._keys) else int(self._pts[0])

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode ``indices`` (0-based); see :class:`FrameReader`."""
        idx = [int(i) for i in indices]
        if any(i < 0 or i >= self.num_frames for i in idx):
            raise IndexError(f"{self.source}: frame index out of range [0, {self.num_frames})")
        uniq = sorted(set(idx))
        if uniq[-1] >= len(self._pts):
            raise UnreadableVideoError(
                f"{self.source}: truncated: frame {uniq[-1]} asked, the file holds {len(self._pts)} of its "
                f"{self.num_frames} frames"
            )
        found: dict[int, np.ndarray] = {}
        try:
            for i in uniq:
                target = int(self._pts[i])
                key = self._key_before(target)
                # continue decoding when the target is ahead and no keyframe lies between (a stream
                # reading a clip window after window); otherwise seek to the keyframe before it
                if self._frames is None or self._last is None or target <= self._last or key > self._last:
                    self._container.seek(key, stream=self._stream, backward=True, any_frame=False)
                    self._frames, self._last = self._container.decode(self._stream), None
                for frame in self._frames:
                    if frame.pts is None:
                        continue
                    self._last = int(frame.pts)
                    if frame.pts < target:
                        continue
                    if frame.pts > target:
                        raise UnreadableVideoError(f"{self.source}: frame {i} (pts {target}) not decodable")
                    found[i] = frame.to_ndarray(format="rgb24")
                    break
                if i not in found:
                    self._frames = None
                    raise UnreadableVideoError(f"{self.source}: stream ended before frame {i}")
        except UnreadableVideoError:
            self._frames = None
            raise
        except Exception as err:
            self._frames = None
            raise UnreadableVideoError(f"cannot decode frames {uniq} of {self.source}: {err}") from err
        return np.stack([found[i] for i in idx])


class TorchCodecVideoReader:
    """Video reader backed by torchcodec (PyTorch's decoder; NVDEC with ``device="cuda"``).

    An optional backend: ``pip install torchcodec`` and FFmpeg's shared libraries (on Debian,
    ``apt-get install libavcodec59 libavformat59 libavutil57 libswscale6 libavdevice59
    libavfilter8 libswresample4``). Frames are read with ``get_frames_at`` on sorted indices
    (exact seeks, decoding forward). Timestamps follow the average frame rate (torchcodec does
    not list each frame's time without decoding it).

    Args:
        source: local path or fsspec URL (remote files are read into memory once).
        num_threads: FFmpeg decoder threads (0 = FFmpeg's default).
        device: ``"cpu"`` or ``"cuda"`` (NVDEC).

    Raises:
        UnreadableVideoError: torchcodec or FFmpeg is missing, or the file cannot be opened.
    """

    def __init__(self, source: str, num_threads: int = 1, device: str = "cpu") -> None:
        self.source = source
        try:
            from torchcodec.decoders import VideoDecoder
        except (ImportError, OSError, RuntimeError) as err:  # the package, or FFmpeg's libraries
            raise UnreadableVideoError(
                f"video_backend='torchcodec' needs torchcodec and FFmpeg's shared libraries: {err}"
            ) from err
        try:
            data = _video_input(source)
            self._decoder = VideoDecoder(data, num_ffmpeg_threads=num_threads, dimension_order="NHWC", device=device)
            meta = self._decoder.metadata
            self.num_frames = int(meta.num_frames or 0)
            if self.num_frames <= 0:
                raise UnreadableVideoError(f"{source}: no frames")
            self.width, self.height = int(meta.width), int(meta.height)
            self.fps = float(meta.average_fps or 0.0) or 25.0
        except UnreadableVideoError:
            raise
        except Exception as err:  # torchcodec raises RuntimeError/ValueError on bad files
            raise UnreadableVideoError(f"cannot open video {source}: {err}") from err

    def timestamps(self) -> np.ndarray:
        """Frames at the average frame rate; see :class:`FrameReader`."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode ``indices`` (0-based) in one sorted call; see :class:`FrameReader`."""
        return _sorted_read(self, indices, lambda uniq: self._decoder.get_frames_at(uniq).data.cpu().numpy())


VIDEO_BACKENDS = {"decord": DecordVideoReader, "pyav": PyAVVideoReader, "torchcodec": TorchCodecVideoReader}
"""``video_backend`` name -> reader class."""

DEFAULT_VIDEO_BACKEND = "pyav"
"""The ``video_backend`` every reader of videos uses unless told otherwise. PyAV, because the
loader, which keeps one reader per open clip, measured as fast or faster with it than with
decord on every corpus, and a loader worker with decord readers held 2x the memory at 640x360
and passed 23 GB at 1080p (docs/benchmarks.md, "Loader throughput")."""


class ImageFolderReader:
    """Numbered image files ``{index + 1:06d}{ext}`` (the MOTChallenge layout).

    Args:
        folder: image folder path.
        ext: file extension.
        num_frames: number of frames; counted from the folder when ``None``.
        fps: frame rate (``seqinfo.ini``); 30 when unknown.

    Raises:
        UnreadableVideoError: the folder is missing or holds no images.
    """

    def __init__(self, folder: str, ext: str = ".jpg", num_frames: int | None = None, fps: float | None = None) -> None:
        self.folder = Path(folder)
        self.ext = ext
        if not self.folder.is_dir():
            raise UnreadableVideoError(f"image folder not found: {folder}")
        files = sorted(self.folder.glob(f"*{ext}"))
        if not files:
            raise UnreadableVideoError(f"no {ext} images in {folder}")
        self.num_frames = min(num_frames, len(files)) if num_frames else len(files)
        self.fps = float(fps or 30.0)
        try:
            with Image.open(self._path(0)) as im:
                self.width, self.height = im.size
        except Exception as err:
            raise UnreadableVideoError(f"cannot read {self._path(0)}: {err}") from err

    def timestamps(self) -> np.ndarray:
        """Frames at the sequence's frame rate; see :class:`FrameReader`."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def _path(self, index: int) -> Path:
        return self.folder / f"{index + 1:06d}{self.ext}"

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Read ``indices`` (0-based); see :class:`FrameReader`."""
        out = []
        for i in indices:
            if i < 0 or i >= self.num_frames:
                raise IndexError(f"{self.folder}: frame index {i} out of range")
            try:
                with Image.open(self._path(int(i))) as im:
                    out.append(np.asarray(im.convert("RGB")))
            except Exception as err:
                raise UnreadableVideoError(f"cannot read {self._path(int(i))}: {err}") from err
        return np.stack(out)


def check_backend(backend: str) -> None:
    """Raise ``ValueError`` for a ``video_backend`` that is not one of :data:`VIDEO_BACKENDS`."""
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"video_backend must be one of {sorted(VIDEO_BACKENDS)}, got {backend!r}")


def open_reader(clip: Clip, num_threads: int = 1, backend: str = DEFAULT_VIDEO_BACKEND) -> FrameReader:
    """Open the frame reader for ``clip``.

    Args:
        clip: the clip.
        num_threads: decoder threads for videos.
        backend: ``"decord"``, ``"pyav"`` or ``"torchcodec"`` for videos (image folders need none).

    Returns:
        A :class:`FrameReader`.
    """
    if clip.kind == "images":
        return ImageFolderReader(clip.source, clip.image_ext, clip.num_frames, clip.fps)
    check_backend(backend)
    reader = VIDEO_BACKENDS[backend](clip.source, num_threads=num_threads)
    if clip.fps:
        reader.fps = clip.fps
    return reader
