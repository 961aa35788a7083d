"""Corpus discovery: videos with MOT sidecars, MOTChallenge sequence folders, manifests.

Sidecar naming for a video ``DIR/NAME.EXT`` (``EXT`` in :data:`VIDEO_EXTENSIONS`):

* detections: ``DIR/NAME.txt`` (what ``isr-lightning detect`` writes), else
  ``DIR/NAME.det.txt``;
* optional ground truth: ``DIR/NAME.gt.txt``.

Frame ``f`` of a sidecar (1-based, as in MOTChallenge) is the ``(f - 1)``-th decoded frame of
the video.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from isr_lightning.data.mot import read_seqinfo
from isr_lightning.storage import is_url, read_bytes

__all__ = ["VIDEO_EXTENSIONS", "Clip", "discover_clips", "local_path", "read_manifest"]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
MANIFEST_EXTENSIONS = (".csv", ".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class Clip:
    """One clip of the corpus.

    Attributes:
        clip_id: a stable name (the sequence or video stem, or the manifest's ``clip_id``).
        source: video file path/URL, or the image folder of a MOT sequence.
        kind: ``"video"`` (a video file, decoded by the stream's ``video_backend``: decord or
            PyAV) or ``"images"`` (numbered image files).
        detections: MOT text file with the boxes used for training (may not exist; the
            loader then skips the clip as ``missing_detections``).
        gt: optional MOT ground-truth file (diagnostic track ids only).
        fps: frame rate when known from metadata (``seqinfo.ini`` or the manifest).
        num_frames: number of frames when known from metadata.
        image_ext: file extension of an image sequence (``".jpg"``).
        width: frame width when known.
        height: frame height when known.
    """

    clip_id: str
    source: str
    kind: str = "video"
    detections: str | None = None
    gt: str | None = None
    fps: float | None = None
    num_frames: int | None = None
    image_ext: str = ".jpg"
    width: int | None = None
    height: int | None = None


#: What a data root may be, and how to make one: appended to every data-root error.
ROOT_HINT = (
    "root may be a folder of videos with MOT box files beside them, MOTChallenge sequence folders, "
    "or a .csv/.jsonl manifest (docs/data.md); no data yet? `isr-lightning synth corpus DIR` renders "
    "a synthetic corpus"
)


class DataRootError(ValueError):
    """The data root is missing, or holds no clip: a configuration error, with the fix in its message."""


def check_root(root: str | Path | None) -> None:
    """Raise :class:`DataRootError` for a missing root or a local path that does not exist.

    URLs (``s3://``, ``https://``, ``file://``...) are left to :func:`discover_clips`.

    Args:
        root: the configured data root.
    """
    if root is None:
        raise DataRootError(
            f"the data root is missing (--data.root DIR on the command line, root= in Python): {ROOT_HINT}"
        )
    if "://" not in str(root) and not Path(root).exists():
        raise DataRootError(f"data root not found: {root}. {ROOT_HINT}")


def local_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a local :class:`~pathlib.Path`; a URL is refused, never made a local folder.

    ``Path("s3://bucket/x")`` is the local path ``s3:/bucket/x``: writing there would put a
    folder named ``s3:`` in the working directory while the user believes the data went to the
    store.

    Args:
        path: the path the user gave.
        what: what the path is for, named in the error (``"the shard folder"``).

    Raises:
        DataRootError: ``path`` is a URL (``scheme://``) other than ``file://``.
    """
    text = os.fspath(path)
    if is_url(text):
        raise DataRootError(
            f"{what} {text} is a URL, which is read only as a shard folder written by `isr-lightning extract "
            "CORPUS URL` or as a manifest (.csv/.jsonl) listing videos; a folder of videos must be local"
        )
    return Path(text.removeprefix("file://"))


def _sidecar(video: Path) -> tuple[str, str | None]:
    stem = video.with_suffix("")
    det = stem.with_name(stem.name + ".txt")
    if not det.exists() and stem.with_name(stem.name + ".det.txt").exists():
        det = stem.with_name(stem.name + ".det.txt")
    gt = stem.with_name(stem.name + ".gt.txt")
    return str(det), (str(gt) if gt.exists() else None)


def _mot_sequence(folder: Path, use_gt: bool) -> Clip:
    info = read_seqinfo(str(folder / "seqinfo.ini")) if (folder / "seqinfo.ini").exists() else {}
    im_dir = folder / info.get("imdir", "img1")
    gt = folder / "gt" / "gt.txt"

    def _num(key: str, cast: type) -> float | int | None:
        try:
            return cast(info[key]) if key in info else None
        except ValueError:
            return None

    return Clip(
        clip_id=info.get("name", folder.name),
        source=str(im_dir),
        kind="images",
        detections=str(folder / "det" / "det.txt"),
        gt=str(gt) if use_gt and gt.exists() else None,
        fps=_num("framerate", float),  # type: ignore[arg-type]
        num_frames=_num("seqlength", int),  # type: ignore[arg-type]
        image_ext=info.get("imext", ".jpg"),
        width=_num("imwidth", int),  # type: ignore[arg-type]
        height=_num("imheight", int),  # type: ignore[arg-type]
    )


def _resolve(value: str, base: str) -> str:
    if is_url(value) or value.startswith("file://") or posixpath.isabs(value):
        return value
    if is_url(base):
        return posixpath.join(base, value)
    return str(Path(base) / value)


def read_manifest(path: str, use_gt: bool = True) -> list[Clip]:
    """Read a manifest of clips (CSV with a header row, or JSON lines).

    Columns/keys: ``video`` (required: path or fsspec URL of a video, or of a MOT image
    folder when ``kind`` is ``images``), ``detections`` (MOT text file; default: the video's
    sidecar ``NAME.txt``), optional ``gt``, ``clip_id``, ``fps``, ``kind``. Relative paths
    are resolved against the manifest's folder.

    Args:
        path: manifest path or URL (``.csv``, ``.jsonl``/``.ndjson``/``.json``).
        use_gt: keep the ``gt`` column.

    Returns:
        The clips in manifest order.

    Raises:
        FileNotFoundError: the manifest does not exist.
        ValueError: a row has no ``video`` or the manifest is malformed.
        StorageError: a manifest on object storage could not be read (after retries).
    """
    try:
        text = read_bytes(path).decode()
    except FileNotFoundError:
        raise FileNotFoundError(f"manifest not found: {path}") from None
    base = posixpath.dirname(path) if is_url(path) else str(Path(path).resolve().parent)
    if path.lower().endswith(".csv"):
        records = list(csv.DictReader(io.StringIO(text)))
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"manifest {path}: line {number} is not JSON: {err}") from err
    clips = []
    for number, rec in enumerate(records, start=1):
        video = (rec.get("video") or "").strip() if isinstance(rec, dict) else ""
        if not video:
            raise ValueError(f"manifest {path}: record {number} has no 'video' field")
        kind = rec.get("kind") or ("images" if not Path(video).suffix else "video")
        source = _resolve(video, base)
        det = rec.get("detections") or None
        if det:
            det = _resolve(det, base)
        elif kind == "video":
            det = str(Path(source).with_suffix("")) + ".txt"
        gt = _resolve(rec["gt"], base) if use_gt and rec.get("gt") else None
        fps = float(rec["fps"]) if rec.get("fps") not in (None, "") else None
        clips.append(
            Clip(
                clip_id=str(rec.get("clip_id") or Path(video).stem or f"clip{number}"),
                source=source,
                kind=kind,
                detections=det,
                gt=gt,
                fps=fps,
            )
        )
    return clips


def discover_clips(root: str | Path, use_gt: bool = True) -> list[Clip]:
    """Find every clip under ``root``.

    ``root`` may be a manifest file (see :func:`read_manifest`), a single video, a single
    MOT sequence folder, or a folder searched recursively for MOT sequence folders (a folder
    with ``seqinfo.ini`` or ``img1/``) and video files with their sidecars.

    Args:
        root: corpus location.
        use_gt: attach ground-truth files when present.

    Returns:
        Clips sorted by source path (deterministic, so every rank sees the same list).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DataRootError: no clip was found under ``root`` (a ``ValueError``).
    """
    root_str = str(root)
    if root_str.lower().endswith(MANIFEST_EXTENSIONS):
        clips = read_manifest(root_str, use_gt=use_gt)
        if not clips:
            raise DataRootError(f"manifest {root_str} lists no clips. {ROOT_HINT}")
        return clips
    path = local_path(root_str, "data root")
    if not path.exists():
        raise FileNotFoundError(f"data root not found: {root_str}")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataRootError(
                f"data root {root_str} is neither a folder, a video ({', '.join(VIDEO_EXTENSIONS)})"
                f" nor a manifest ({', '.join(MANIFEST_EXTENSIONS)}). {ROOT_HINT}"
            )
        det, gt = _sidecar(path)
        return [Clip(path.stem, str(path), "video", det, gt if use_gt else None)]
    clips: list[Clip] = []
    sequences: list[Path] = []
    for candidate in sorted(
        {p.parent for p in path.rglob("seqinfo.ini")} | {p.parent for p in path.rglob("img1") if p.is_dir()}
    ):
        sequences.append(candidate)
        clips.append(_mot_sequence(candidate, use_gt))
    for video in sorted(path.rglob("*")):
        if video.suffix.lower() not in VIDEO_EXTENSIONS or not video.is_file():
            continue
        if any(seq in video.parents for seq in sequences):
            continue
        det, gt = _sidecar(video)
        rel = video.relative_to(path).with_suffix("")
        clips.append(Clip(str(rel), str(video), "video", det, gt if use_gt else None))
    if not clips:
        raise DataRootError(
            f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or MOT sequence folders found under {root_str}. {ROOT_HINT}"
        )
    clips.sort(key=lambda c: c.source)
    return clips
