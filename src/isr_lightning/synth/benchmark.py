"""Cross-domain ReID benchmark in the Market-1501 layout.

Rendered in the ``"mall"`` domain (indoor floors and walls, other lighting, strong
per-camera colour cast, gamma, blur, noise and JPEG quality), with identities drawn from a
seed space disjoint from the training corpus. Every camera also has its own viewpoint: a
preferred facing (one camera sees mostly fronts, another mostly backs or profiles), its own
resolution (person height in native pixels, so low-resolution cameras give blurry
upsampled crops) and a slight vertical squash (elevation). Other domains render the same
identities elsewhere: ``"street"``, the training videos' domain (an in-domain control);
``"station"`` and ``"park"``, other places, cameras and drawings of people (see
:data:`DOMAIN_PERSON_STYLE`), for measuring generalization beyond one test domain.

Layout (see ``docs/synthetic_data.md``)::

    ROOT/benchmark.json
    ROOT/query/0001_c1s1_000003_01.jpg
    ROOT/bounding_box_test/0001_c3s1_000017_01.jpg   # plus 0000_* distractors, -1_* junk
    ROOT/bounding_box_train/                         # only when num_train_identities > 0
    ROOT/preview.png                                 # contact sheet (optional)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from isr_lightning.synth.identity import sample_outfit
from isr_lightning.synth.render import NUM_PHASES, STAND, STYLES, SpriteBank
from isr_lightning.synth.scene import DOMAINS, CameraResponse, Scene, make_scene, sample_response
from isr_lightning.synth.seeds import BENCH_TAG, derive_rng

__all__ = ["DOMAIN_PERSON_STYLE", "BenchmarkConfig", "BenchmarkInfo", "generate_benchmark"]

# bumped whenever the generator renders different images from the same config
BENCHMARK_FORMAT = "isr-lightning synthetic Market-1501 benchmark v3"
DOMAIN_PERSON_STYLE = {"street": "flat", "mall": "flat", "station": "shaded", "park": "outlined"}
"""How each domain draws people by default (:data:`~isr_lightning.synth.render.STYLES`)."""
_SCENE_W, _SCENE_H = 480, 320


@dataclass(frozen=True)
class BenchmarkConfig:
    """What :func:`generate_benchmark` renders.

    Attributes:
        num_identities: test identities (ids ``0001`` ...).
        num_cameras: cameras (2 to 9; Market names hold one digit).
        seed: master seed.
        max_queries_per_identity: queries per identity, each from a different camera
            (at most the identity's number of cameras minus one).
        gallery_per_camera: most gallery images of an identity per camera (1 to this).
        num_distractors: gallery images of other people, id ``0000``.
        num_junk: gallery images of bad crops (partial bodies, mostly background), id ``-1``.
        num_train_identities: identities in ``bounding_box_train`` (disjoint from the test).
        image_width: saved crop width.
        image_height: saved crop height.
        domain: ``"mall"`` (default: another visual domain than the training videos),
            ``"street"`` (the training videos' domain with their mild camera responses: an
            in-domain control that separates the domain gap from the cross-camera task),
            ``"station"`` or ``"park"`` (other places and cameras).
        person_style: how people are drawn (``"flat"``, ``"shaded"``, ``"outlined"``);
            ``None``: the domain's own (:data:`DOMAIN_PERSON_STYLE`).

    """

    num_identities: int = 150
    num_cameras: int = 6
    seed: int = 0
    max_queries_per_identity: int = 2
    gallery_per_camera: int = 3
    num_distractors: int = 200
    num_junk: int = 100
    num_train_identities: int = 0
    image_width: int = 64
    image_height: int = 128
    domain: str = "mall"
    person_style: str | None = None

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.person_style is not None and self.person_style not in STYLES:
            raise ValueError(f"person_style must be one of {STYLES} or None, got {self.person_style!r}")
        if not 2 <= self.num_cameras <= 9:
            raise ValueError("num_cameras must be in [2, 9]")
        if not 1 <= self.num_identities <= 9999:
            raise ValueError("num_identities must be in [1, 9999]")
        if self.num_identities + self.num_train_identities > 9999:
            raise ValueError("num_identities + num_train_identities must be <= 9999")
        if self.max_queries_per_identity < 1 or self.gallery_per_camera < 1:
            raise ValueError("max_queries_per_identity and gallery_per_camera must be >= 1")
        if self.num_distractors < 0 or self.num_junk < 0 or self.num_train_identities < 0:
            raise ValueError("counts must be >= 0")

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)

    @property
    def style(self) -> str:
        """The drawing style of people in effect."""
        return self.person_style or DOMAIN_PERSON_STYLE[self.domain]


@dataclass
class BenchmarkInfo:
    """What :func:`generate_benchmark` produced.

    Attributes:
        root: the benchmark folder.
        config: the configuration.
        num_query: images in ``query/``.
        num_gallery: images in ``bounding_box_test/`` (distractors and junk included).
        num_distractors: gallery images with id ``0000``.
        num_junk: gallery images with id ``-1``.
        num_train: images in ``bounding_box_train/``.
        cached: ``True`` when an existing complete benchmark was reused.

    """

    root: Path
    config: BenchmarkConfig
    num_query: int
    num_gallery: int
    num_distractors: int
    num_junk: int
    num_train: int
    cached: bool = False


@dataclass
class _Camera:
    index: int  # 1-based
    scene: Scene
    response: CameraResponse
    facing_p: np.ndarray
    body_px: float
    squash: float


def _make_camera(seed: int, index: int, domain: str) -> _Camera:
    rng = derive_rng(seed, BENCH_TAG, 0, index)
    scene = make_scene(rng, _SCENE_W, _SCENE_H, domain, num_occluders=0)
    response = sample_response(rng, domain)
    facing_p = rng.dirichlet([0.6, 0.6, 0.6, 0.6]) + 0.05
    return _Camera(
        index, scene, response, facing_p / facing_p.sum(), float(rng.uniform(55, 150)), float(rng.uniform(0.88, 1.0))
    )


def _paste(canvas: np.ndarray, rgba: np.ndarray, left: int, top: int, gain: np.ndarray) -> None:
    ch, cw = canvas.shape[:2]
    h, w = rgba.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, cw), min(top + h, ch)
    if x0 >= x1 or y0 >= y1:
        return
    part = rgba[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.float32)
    a = part[..., 3:4] / 255.0
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - a) + a * part[..., :3] * gain


def _pose(rng: np.random.Generator, cam: _Camera) -> tuple[int, int]:
    facing = int(rng.choice(4, p=cam.facing_p))
    phase = STAND if rng.random() < 0.2 else int(rng.integers(NUM_PHASES))
    return facing, phase


def _render_crop(
    rng: np.random.Generator,
    bank: SpriteBank,
    cam: _Camera,
    passers: list[SpriteBank],
    out_size: tuple[int, int],
    junk: bool = False,
) -> Image.Image:
    """One detection-like crop of ``bank``'s person seen by ``cam``."""
    facing, phase = _pose(rng, cam)
    body = cam.body_px * float(rng.uniform(0.85, 1.15))
    rgba, fx, fy = bank.sprite(facing, phase, body)
    if cam.squash < 1:
        img = Image.fromarray(rgba).resize(
            (rgba.shape[1], max(1, int(rgba.shape[0] * cam.squash))), Image.Resampling.BILINEAR
        )
        fy *= cam.squash
        rgba = np.asarray(img)
    sh, _sw = rgba.shape[:2]
    box_h = sh * float(rng.uniform(1.02, 1.08))
    box_w = box_h * 0.5 * float(rng.uniform(0.9, 1.1))
    # the person in the box, with detector-like offsets
    cx = box_w / 2 + float(rng.normal(0, 0.05)) * box_w
    foot = box_h - (box_h - sh) * float(rng.uniform(0.2, 0.8)) + float(rng.normal(0, 0.03)) * sh
    if junk:
        mode = int(rng.integers(3))
        if mode == 0:  # only the upper body
            foot += sh * float(rng.uniform(0.45, 0.65))
        elif mode == 1:  # only the legs
            foot -= sh * float(rng.uniform(0.45, 0.6))
        else:  # mostly background, a sliver of the person at the border
            cx += box_w * float(rng.choice([-1, 1])) * float(rng.uniform(0.6, 0.8))
    bw, bh = int(np.ceil(box_w)), int(np.ceil(box_h))
    # background patch from the camera's scene, floor under the feet
    bg = cam.scene.background
    s_h, s_w = bg.shape[:2]
    scale = max(1.0, bh / (s_h * 0.9), bw / (s_w * 0.9))
    horizon = cam.scene.camera.horizon
    floor_row = float(rng.uniform(horizon + 0.35 * (s_h - horizon), s_h - 1))
    top_bg = int(np.clip(floor_row / 1 - (foot / scale), 0, s_h - bh / scale))
    left_bg = int(rng.uniform(0, max(1.0, s_w - bw / scale)))
    patch = Image.fromarray(
        bg[top_bg : top_bg + int(np.ceil(bh / scale)), left_bg : left_bg + int(np.ceil(bw / scale))]
    )
    canvas = np.asarray(patch.resize((bw, bh), Image.Resampling.BILINEAR), np.float32).copy()
    light = cam.scene.light[int(min(floor_row, s_h - 1)), min(left_bg + bw // 2, s_w - 1)]
    gain = light * float(rng.uniform(0.85, 1.15))
    occ = rng.random()
    if occ < 0.15 and passers:  # another person behind, overlapping
        other = passers[int(rng.integers(len(passers)))]
        o_rgba, ofx, ofy = other.sprite(*_pose(rng, cam), body * float(rng.uniform(0.8, 0.95)))
        ox = cx + float(rng.choice([-1, 1])) * box_w * float(rng.uniform(0.45, 0.8))
        _paste(canvas, o_rgba, int(ox - ofx), int(foot - 0.05 * sh - ofy), gain * 0.95)
    _paste(canvas, rgba, round(cx - fx), round(foot - fy), gain)
    if 0.15 <= occ < 0.27 and passers:  # another person in front, covering one side
        other = passers[int(rng.integers(len(passers)))]
        o_rgba, ofx, ofy = other.sprite(*_pose(rng, cam), body * float(rng.uniform(1.02, 1.15)))
        ox = cx + float(rng.choice([-1, 1])) * box_w * float(rng.uniform(0.6, 0.9))
        _paste(canvas, o_rgba, int(ox - ofx), int(foot + 0.05 * sh - ofy), gain)
    elif 0.27 <= occ < 0.35:  # low object in front (planter, counter)
        oh = int(bh * float(rng.uniform(0.2, 0.4)))
        col = np.array(rng.uniform(60, 220, 3), np.float32)
        x0 = int(rng.uniform(-0.3, 0.5) * bw)
        canvas[bh - oh :, max(0, x0) : max(0, x0) + int(bw * rng.uniform(0.5, 1.0))] = col
    crop = np.clip(canvas, 0, 255).astype(np.uint8)
    crop = cam.response.apply(crop, rng)
    return Image.fromarray(crop).resize(out_size, Image.Resampling.BILINEAR)


def _contact_sheet(root: Path, rows: list[list[str]], size: tuple[int, int]) -> None:
    w, h = size
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * (w + 2), len(rows) * (h + 2)), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, rel in enumerate(row):
            sheet.paste(Image.open(root / rel), (c * (w + 2), r * (h + 2)))
    sheet.save(root / "preview.png")


# the folder of each kind of image; the gallery holds test identities, distractors and junk
_KIND_FOLDER = {
    "query": "query",
    "gallery": "bounding_box_test",
    "distractors": "bounding_box_test",
    "junk": "bounding_box_test",
    "train": "bounding_box_train",
}


class _CropWriter:
    """Saves crops under Market-1501 names, numbering each camera's frames and counting each kind.

    Args:
        root: the benchmark folder.
        num_cameras: cameras (each numbers its own frames from 1, across all kinds).

    """

    def __init__(self, root: Path, num_cameras: int) -> None:
        self.root = root
        self.frame = [0] * num_cameras
        self.counts = dict.fromkeys(("query", "gallery", "distractors", "junk", "train"), 0)

    def save(self, img: Image.Image, kind: str, pid: int, cam: _Camera) -> str:
        """Save one crop as the camera's next frame.

        Args:
            img: the crop.
            kind: a :data:`_KIND_FOLDER` key (which folder, which count).
            pid: person id in the name (``0`` distractor, ``-1`` junk).
            cam: the camera that saw it.

        Returns:
            The file's path relative to the root, e.g. ``"query/0001_c1s1_000003_01.jpg"``.

        """
        # imported here: the evaluation datasets bring torch, which `import isr_lightning.synth` does without
        from isr_lightning.evaluation.datasets import format_market_name

        self.frame[cam.index - 1] += 1
        self.counts[kind] += 1
        rel = f"{_KIND_FOLDER[kind]}/{format_market_name(pid, cam.index, self.frame[cam.index - 1])}"
        img.save(self.root / rel, quality=cam.response.jpeg_quality)
        return rel


def _cached_info(root: Path, cfg: BenchmarkConfig) -> BenchmarkInfo | None:
    """The info of a complete benchmark of ``cfg`` already in ``root``, or ``None``."""
    meta_path = root / "benchmark.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("format") == BENCHMARK_FORMAT and meta.get("config") == cfg.to_dict():
        c = meta["counts"]
        return BenchmarkInfo(root, cfg, c["query"], c["gallery"], c["distractors"], c["junk"], c["train"], cached=True)
    return None


def _empty_folders(root: Path, with_train: bool) -> None:
    """Remove the image folders of an earlier benchmark and create empty ones."""
    for k in ("query", "bounding_box_test", "bounding_box_train"):
        if (root / k).exists():
            shutil.rmtree(root / k)
    # bounding_box_train/ exists only when it has images: Market loaders reject an empty folder.
    for k in ("query", "bounding_box_test") + (("bounding_box_train",) if with_train else ()):
        (root / k).mkdir(parents=True)


def _render_test_identities(
    cfg: BenchmarkConfig, cams: list[_Camera], passers: list[SpriteBank], out: _CropWriter
) -> list[list[str]]:
    """Queries and gallery images of the test identities; returns the first 12 identities' paths (preview rows)."""
    size = (cfg.image_width, cfg.image_height)
    sheet_rows: list[list[str]] = []
    for pid in range(1, cfg.num_identities + 1):
        bank = SpriteBank(sample_outfit(derive_rng(cfg.seed, BENCH_TAG, 1, pid)), style=cfg.style)
        rng = derive_rng(cfg.seed, BENCH_TAG, 2, pid)
        k = int(rng.integers(2, min(4, cfg.num_cameras) + 1))
        chosen = rng.choice(cfg.num_cameras, size=k, replace=False)
        n_q = min(cfg.max_queries_per_identity, k - 1)
        row = []
        for j, c in enumerate(chosen):
            cam = cams[int(c)]
            if j < n_q:
                row.append(out.save(_render_crop(rng, bank, cam, passers, size), "query", pid, cam))
            for _ in range(int(rng.integers(1, cfg.gallery_per_camera + 1))):
                row.append(out.save(_render_crop(rng, bank, cam, passers, size), "gallery", pid, cam))
        if len(sheet_rows) < 12:
            sheet_rows.append(row)
    return sheet_rows


def _render_distractors_and_junk(
    cfg: BenchmarkConfig, cams: list[_Camera], passers: list[SpriteBank], out: _CropWriter
) -> None:
    """Gallery images of other people (id ``0000``), then bad crops of passers-by (id ``-1``)."""
    size = (cfg.image_width, cfg.image_height)
    for i in range(cfg.num_distractors):
        rng = derive_rng(cfg.seed, BENCH_TAG, 4, i)
        bank = SpriteBank(sample_outfit(rng), style=cfg.style)
        cam = cams[int(rng.integers(cfg.num_cameras))]
        out.save(_render_crop(rng, bank, cam, passers, size), "distractors", 0, cam)
    for i in range(cfg.num_junk):
        rng = derive_rng(cfg.seed, BENCH_TAG, 5, i)
        bank = passers[int(rng.integers(len(passers)))]
        cam = cams[int(rng.integers(cfg.num_cameras))]
        out.save(_render_crop(rng, bank, cam, passers, size, junk=True), "junk", -1, cam)


def _render_train_identities(
    cfg: BenchmarkConfig, cams: list[_Camera], passers: list[SpriteBank], out: _CropWriter
) -> None:
    """Images of the training identities (ids after the test ones), each seen by two cameras."""
    size = (cfg.image_width, cfg.image_height)
    for t in range(cfg.num_train_identities):
        pid = cfg.num_identities + 1 + t
        bank = SpriteBank(sample_outfit(derive_rng(cfg.seed, BENCH_TAG, 6, t)), style=cfg.style)
        rng = derive_rng(cfg.seed, BENCH_TAG, 7, t)
        for c in rng.choice(cfg.num_cameras, size=2, replace=False):
            for _ in range(int(rng.integers(1, cfg.gallery_per_camera + 1))):
                out.save(_render_crop(rng, bank, cams[int(c)], passers, size), "train", pid, cams[int(c)])


def _camera_meta(cam: _Camera) -> dict:
    """JSON-serialisable description of one camera (for ``benchmark.json``)."""
    return {
        "index": cam.index,
        "response": asdict(cam.response),
        "facing_p": [round(float(p), 3) for p in cam.facing_p],
        "body_px": round(cam.body_px, 1),
        "squash": round(cam.squash, 3),
    }


def generate_benchmark(
    root: str | os.PathLike,
    num_identities: int = 150,
    seed: int = 0,
    force: bool = False,
    preview: bool = True,
    **kwargs,
) -> BenchmarkInfo:
    """Generate (or reuse) the cross-domain Market-1501-layout benchmark.

    Args:
        root: output folder.
        num_identities: test identities.
        seed: master seed (identities never overlap the training corpus's seed space).
        force: regenerate even if a complete benchmark with the same config exists.
        preview: write ``ROOT/preview.png`` (queries with their gallery images, per row).
        **kwargs: other :class:`BenchmarkConfig` fields.

    Returns:
        The :class:`BenchmarkInfo`. Every query's identity has gallery images in at least
        one other camera.

    """
    cfg = BenchmarkConfig(num_identities=num_identities, seed=seed, **kwargs)
    root = Path(root)
    if not force and (cached := _cached_info(root, cfg)) is not None:
        return cached
    # removed first: an interrupted run must not look complete
    (root / "benchmark.json").unlink(missing_ok=True)
    _empty_folders(root, with_train=cfg.num_train_identities > 0)
    cams = [_make_camera(cfg.seed, c + 1, cfg.domain) for c in range(cfg.num_cameras)]
    pool_rng = derive_rng(cfg.seed, BENCH_TAG, 3)
    passers = [SpriteBank(sample_outfit(pool_rng), style=cfg.style) for _ in range(24)]
    out = _CropWriter(root, cfg.num_cameras)
    sheet_rows = _render_test_identities(cfg, cams, passers, out)
    _render_distractors_and_junk(cfg, cams, passers, out)
    _render_train_identities(cfg, cams, passers, out)
    counts = out.counts
    counts["gallery"] += counts["distractors"] + counts["junk"]
    if preview and sheet_rows:
        _contact_sheet(root, sheet_rows, (cfg.image_width, cfg.image_height))
    meta = {
        "format": BENCHMARK_FORMAT,
        "config": cfg.to_dict(),
        "counts": counts,
        "cameras": [_camera_meta(c) for c in cams],
    }
    (root / "benchmark.json").write_text(json.dumps(meta, indent=2))
    return BenchmarkInfo(
        root, cfg, counts["query"], counts["gallery"], counts["distractors"], counts["junk"], counts["train"]
    )
