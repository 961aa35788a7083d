"""Training corpus: synthetic street clips as H.264 mp4 with MOT-format sidecars.

Layout written by :func:`generate_corpus` (see ``docs/synthetic_data.md``)::

    ROOT/corpus.json          # generator config, seed, clip list, counts
    ROOT/clip00000.mp4        # H.264 (libx264, yuv420p), constant frame rate
    ROOT/clip00000.det.txt    # frame,-1,x,y,w,h,score,-1,-1,-1   (noisy "detector" output)
    ROOT/clip00000.gt.txt     # frame,id,x,y,w,h,1,1,visibility   (ground truth, ids per clip)

Frames are 1-based, boxes are in pixels (x, y = top-left corner) and lie inside the frame. A
clip's world, frames and detections come from :mod:`isr_lightning.synth.clip`; its settings from
:mod:`isr_lightning.synth.config`.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from isr_lightning.data.mot import detection_rows, format_mot_rows, ground_truth_rows, read_mot_rows
from isr_lightning.progress import Progress
from isr_lightning.synth.clip import ClipSimulator, simulate_detections
from isr_lightning.synth.config import CORPUS_FORMAT, CorpusConfig, DetectorNoise
from isr_lightning.synth.seeds import CORPUS_TAG, derive_rng

__all__ = ["CorpusInfo", "encode_mp4", "generate_clip", "generate_corpus", "write_preview"]

# decimals of the MOT sidecars' columns: gt frame,id,x,y,w,h,1,1,visibility; det frame,-1,x,y,w,h,score,-1,-1,-1
GT_DECIMALS = (0, 0, 0, 0, 0, 0, 0, 0, 3)
DET_DECIMALS = (0, 0, 1, 1, 1, 1, 3, 0, 0, 0)


@dataclass
class CorpusInfo:
    """What :func:`generate_corpus` produced.

    Attributes:
        root: the corpus folder.
        config: the configuration.
        clips: clip names (``ROOT/<name>.mp4`` and sidecars).
        num_frames: frames per clip.
        num_gt_boxes: total ground-truth rows.
        num_det_boxes: total detection rows.
        cached: ``True`` when an existing complete corpus was reused.

    """

    root: Path
    config: CorpusConfig
    clips: list[str]
    num_frames: int
    num_gt_boxes: int
    num_det_boxes: int
    cached: bool = False

    def video(self, clip: str) -> Path:
        """Path of a clip's mp4."""
        return self.root / f"{clip}.mp4"


def encode_mp4(path: str | os.PathLike, frames, width: int, height: int, fps: int, crf: int = 23) -> None:
    """Write RGB frames as H.264 mp4, deterministically (single-threaded libx264).

    Args:
        path: output file.
        frames: iterable of ``(img_h, img_w, 3)`` uint8 arrays.
        width: frame width (even).
        height: frame height (even).
        fps: frame rate.
        crf: libx264 constant rate factor.

    """
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "threads": "1",
            "x264-params": "sliced-threads=0:lookahead-threads=1",
        }
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generate_clip(root: str | os.PathLike, config: CorpusConfig, clip_index: int) -> tuple[str, int, int]:
    """Render, encode and annotate one clip.

    Files are written under temporary names and renamed at the end, so an interrupted run
    never leaves a truncated clip behind under its final name.

    Returns:
        ``(clip name, gt rows, detection rows)``.

    """
    root = Path(root)
    name = f"clip{clip_index:05d}"
    sim = ClipSimulator(config, clip_index)
    det_rng = derive_rng(config.seed, CORPUS_TAG, clip_index, 3)
    gt_rows: list[np.ndarray] = []
    det_rows: list[np.ndarray] = []

    def frames():
        for t in range(config.num_frames):
            img, _, ann = sim.render(t)
            gt_rows.append(ground_truth_rows(t + 1, ann.ids, ann.boxes, ann.visibility))
            dets = simulate_detections(det_rng, ann, sim.scene, config.detector)
            det_rows.append(detection_rows(t + 1, dets[:, :4], dets[:, 4]))
            yield img

    tmp = root / f"{name}.mp4.partial"
    encode_mp4(tmp, frames(), config.width, config.height, config.fps, config.crf)
    gt, det = np.concatenate(gt_rows), np.concatenate(det_rows)
    # a sidecar without rows holds one empty line, as the corpus has always written it
    (root / f"{name}.gt.txt").write_text(format_mot_rows(gt, GT_DECIMALS) or "\n")
    (root / f"{name}.det.txt").write_text(format_mot_rows(det, DET_DECIMALS) or "\n")
    os.replace(tmp, root / f"{name}.mp4")
    return name, len(gt), len(det)


def _clip_job(args: tuple[str, dict, int]) -> tuple[str, int, int]:
    root, cfg, i = args
    return generate_clip(root, CorpusConfig.from_dict(cfg), i)


def _count_lines(path: Path) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def write_preview(
    root: str | os.PathLike, clips: list[str], delta_seconds: float = 2.0, out: str | os.PathLike | None = None
) -> Path:
    """Draw frame ``t`` and ``t + delta`` of some clips with gt (green) and det (red) boxes.

    Args:
        root: corpus folder.
        clips: clip names, one row each.
        delta_seconds: gap between the two frames of a row.
        out: output PNG (``ROOT/preview.png`` by default).

    Returns:
        The PNG path.

    """
    root = Path(root)
    tiles: list[list[Image.Image]] = []
    for name in clips:
        gt, det = read_mot_rows(root / f"{name}.gt.txt"), read_mot_rows(root / f"{name}.det.txt")
        with av.open(str(root / f"{name}.mp4")) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 12)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        t0 = len(frames) // 4
        row = []
        for t in (t0, min(len(frames) - 1, t0 + round(delta_seconds * fps))):
            im = Image.fromarray(frames[t])
            d = ImageDraw.Draw(im)
            for r in det[det[:, 0] == t + 1]:
                d.rectangle([r[2], r[3], r[2] + r[4], r[3] + r[5]], outline=(255, 40, 40))
            for r in gt[gt[:, 0] == t + 1]:
                d.rectangle([r[2], r[3], r[2] + r[4], r[3] + r[5]], outline=(40, 255, 40))
                d.text((r[2] + 1, r[3] + 1), str(int(r[1])), fill=(255, 255, 0))
            row.append(im)
        tiles.append(row)
    w, h = tiles[0][0].size
    sheet = Image.new("RGB", (2 * w + 4, len(tiles) * (h + 4)), (255, 255, 255))
    for r, row in enumerate(tiles):
        for c, im in enumerate(row):
            sheet.paste(im, (c * (w + 4), r * (h + 4)))
    path = Path(out) if out is not None else root / "preview.png"
    sheet.save(path)
    return path


def _clip_complete(root: Path, name: str) -> bool:
    """Whether a clip's mp4 and both sidecars exist."""
    return all((root / f"{name}{ext}").exists() for ext in (".mp4", ".gt.txt", ".det.txt"))


def _cached_corpus(root: Path, config: CorpusConfig, names: list[str]) -> CorpusInfo | None:
    """The info of a complete corpus of ``config`` already in ``root``, or ``None``."""
    meta_path = root / "corpus.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    current = meta.get("format") == CORPUS_FORMAT and meta.get("config") == config.to_dict()
    if current and all(_clip_complete(root, n) for n in names):
        return CorpusInfo(
            root, config, names, config.num_frames, meta["num_gt_boxes"], meta["num_det_boxes"], cached=True
        )
    return None


def _start_run(root: Path, config: CorpusConfig, names: list[str], force: bool) -> list[int]:
    """Mark ``root`` as a run in progress and list the clips it must render.

    The finished clips of an interrupted run of the same config (``ROOT/.corpus.partial.json``)
    are kept unless ``force``.

    Returns:
        The indices of the clips to render.

    """
    meta_path, partial_path = root / "corpus.json", root / ".corpus.partial.json"
    partial = {"format": CORPUS_FORMAT, "config": config.to_dict()}
    resume = not force and partial_path.exists() and json.loads(partial_path.read_text()) == partial
    if meta_path.exists():
        meta_path.unlink()
    partial_path.write_text(json.dumps(partial))
    return [i for i, n in enumerate(names) if not (resume and _clip_complete(root, n))]


def _render_clips(root: Path, config: CorpusConfig, clip_indices: list[int], workers: int) -> None:
    """Generate the clips of ``clip_indices``, in ``workers`` processes when there are several."""
    jobs = [(str(root), config.to_dict(), i) for i in clip_indices]
    if not jobs:
        return
    with Progress("synth corpus", total=len(jobs), unit="clips", rate_unit="frames") as progress:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            # fork avoids re-importing the package (and torch) in every worker; clips use no torch.
            # A forked child must never finalise the parent's objects (a video decoder destroyed in
            # a child deadlocks): collect the parent's garbage here, freeze the rest for the child.
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            gc.collect()
            gc.freeze()
            try:
                with mp.get_context(method).Pool(workers) as pool:
                    for _ in pool.imap_unordered(_clip_job, jobs):
                        progress.advance(work=config.num_frames)
            finally:
                gc.unfreeze()
        else:
            for job in jobs:
                _clip_job(job)
                progress.advance(work=config.num_frames)


def generate_corpus(
    root: str | os.PathLike,
    num_clips: int = 40,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
    preview: bool = True,
    **kwargs,
) -> CorpusInfo:
    """Generate (or reuse) a training corpus of synthetic street clips.

    Args:
        root: output folder (created).
        num_clips: number of clips.
        seed: master seed; the same seed and config give byte-identical files.
        workers: processes rendering clips in parallel.
        force: regenerate even if a complete corpus with the same config exists.
        preview: write ``ROOT/preview.png`` (two frames of the first clips, with boxes).
        **kwargs: other :class:`CorpusConfig` fields (``seconds``, ``fps``, ``width``,
            ``height``, ``min_people``, ``max_people``, ``crf``, ``detector``).

    Returns:
        The :class:`CorpusInfo`. When ``ROOT/corpus.json`` holds the same config and all
        files exist, nothing is rendered and ``cached`` is ``True``. A run interrupted
        midway resumes: finished clips of the same config are kept.

    """
    if isinstance(kwargs.get("detector"), dict):
        kwargs["detector"] = DetectorNoise(**kwargs["detector"])
    config = CorpusConfig(num_clips=num_clips, seed=seed, **kwargs)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"clip{i:05d}" for i in range(config.num_clips)]
    if not force and (cached := _cached_corpus(root, config, names)) is not None:
        return cached
    _render_clips(root, config, _start_run(root, config, names, force), workers)
    n_gt = sum(_count_lines(root / f"{n}.gt.txt") for n in names)
    n_det = sum(_count_lines(root / f"{n}.det.txt") for n in names)
    meta = {
        "format": CORPUS_FORMAT,
        "config": config.to_dict(),
        "clips": names,
        "num_frames": config.num_frames,
        "fps": config.fps,
        "width": config.width,
        "height": config.height,
        "num_gt_boxes": n_gt,
        "num_det_boxes": n_det,
        "det_columns": "frame,-1,x,y,w,h,score,-1,-1,-1",
        "gt_columns": "frame,id,x,y,w,h,1,1,visibility",
    }
    if preview:
        write_preview(root, names[:3], delta_seconds=min(2.0, config.seconds / 2))
    (root / "corpus.json").write_text(json.dumps(meta, indent=2))
    (root / ".corpus.partial.json").unlink(missing_ok=True)
    return CorpusInfo(root, config, names, config.num_frames, n_gt, n_det)
