"""Helpers for the data tests: tiny H.264 videos with MOT sidecars, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MOT17_MINI = SHARED / "data" / "mot17-mini"


def synthetic_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients plus a frame-number bar, so every frame differs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, size=3)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        for c in range(3):
            frames[t, :, :, c] = (base[c] + 2.0 * xx + 1.5 * yy + 9.0 * t * (c + 1)) % 256
        frames[t, : height // 8, : max(1, (t * width) // max(1, num_frames))] = 255
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "libx264",
    faststart: bool = False,
    pts: list[int] | None = None,
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames (H.264, yuv420p, with B-frames).

    ``pts``: each frame's presentation time in 1/100 s (a variable frame rate); default ``fps``.
    """
    from fractions import Fraction

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "12", "bf": "2"}
        if pts is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 100)
        for k, frame in enumerate(frames):
            image = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pts is not None:
                image.pts, image.time_base = pts[k], Fraction(1, 100)
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_reference(path: Path) -> np.ndarray:
    """Decode every frame sequentially with PyAV (the independent reference)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def person_boxes(num_frames: int, width: int, height: int, people: int = 3, seed: int = 0) -> dict[int, np.ndarray]:
    """MOT frame -> (K, 6) rows ``id, x, y, w, h, score``: people walking right."""
    rng = np.random.default_rng(seed)
    out = {}
    starts = rng.uniform(0, width * 0.5, size=people)
    ys = rng.uniform(0, height * 0.4, size=people)
    for f in range(1, num_frames + 1):
        rows = []
        for p in range(people):
            x = (starts[p] + 0.7 * f) % (width * 0.7)
            rows.append([p + 1, x, ys[p], width * 0.2, height * 0.5, 0.9])
        out[f] = np.array(rows)
    return out


def write_mot(path: Path, boxes: dict[int, np.ndarray], with_ids: bool = False) -> Path:
    lines = []
    for f, rows in boxes.items():
        for tid, x, y, w, h, s in rows:
            tid_s = int(tid) if with_ids else -1
            if with_ids:
                lines.append(f"{f},{tid_s},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,1.0")
            else:
                lines.append(f"{f},{tid_s},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_clip(
    folder: Path,
    name: str,
    num_frames: int = 24,
    width: int = 64,
    height: int = 48,
    people: int = 3,
    seed: int = 0,
    gt: bool = False,
) -> Path:
    """Video ``name.mp4`` with sidecar ``name.txt`` (and ``name.gt.txt``)."""
    folder.mkdir(parents=True, exist_ok=True)
    video = write_video(folder / f"{name}.mp4", synthetic_frames(num_frames, height, width, seed))
    boxes = person_boxes(num_frames, width, height, people, seed)
    write_mot(folder / f"{name}.txt", boxes)
    if gt:
        write_mot(folder / f"{name}.gt.txt", boxes, with_ids=True)
    return video
