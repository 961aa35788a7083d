"""One synthetic clip, frame by frame.

Its people's tracks, the rendered frames with exact ground truth, and the noisy detections a
person detector would give.

Each clip is generated from its own ``numpy.random.Generator`` derived from
``(seed, clip index)``, so clips can be produced in parallel and reproduced individually.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from isr_lightning.data.boxes import box_iou
from isr_lightning.synth.config import CorpusConfig, DetectorNoise
from isr_lightning.synth.identity import sample_outfit
from isr_lightning.synth.render import BACK, FRONT, LEFT, NUM_PHASES, RIGHT, STAND, SpriteBank
from isr_lightning.synth.scene import CameraResponse, Scene, make_scene
from isr_lightning.synth.seeds import CORPUS_TAG, derive_rng

__all__ = ["ClipLook", "ClipSimulator", "FrameAnnotations", "sample_clip_look", "simulate_detections"]

BODY_METRES = 1.7
STRIDE_METRES = 1.4  # distance of one full walking cycle (two steps)
OCCLUDER_CODE = -1


@dataclass
class FrameAnnotations:
    """Ground truth of one rendered frame.

    Attributes:
        ids: ``(n,)`` track ids (1-based, per clip).
        boxes: ``(n, 4)`` full-body ``x, y, w, h`` clipped to the frame.
        visible_boxes: ``(n, 4)`` ``x, y, w, h`` of the visible pixels (zeros if none).
        visibility: ``(n,)`` fraction of the body's pixels visible in the frame.

    """

    ids: np.ndarray
    boxes: np.ndarray
    visible_boxes: np.ndarray
    visibility: np.ndarray


@dataclass(frozen=True)
class ClipLook:
    """How one clip looks: drawing style, camera response and zoom.

    Attributes:
        style: drawing style of the clip's people.
        response: camera response (colour cast, tone, saturation, blur, noise).
        z_near: depth (metres) seen at the bottom image row: larger zooms in.
    """

    style: str
    response: CameraResponse
    z_near: float


def sample_clip_look(rng: np.random.Generator, config: CorpusConfig) -> ClipLook:
    """Draw a clip's look; ``config.look_variety`` scales how far it departs from the mild default."""
    v = config.look_variety
    style = config.person_styles[int(rng.integers(len(config.person_styles)))]
    response = CameraResponse(
        gain=tuple(float(g) for g in rng.uniform(1 - 0.07 - 0.1 * v, 1 + 0.07 + 0.1 * v, 3)),
        gamma=float(rng.uniform(1 - 0.1 - 0.2 * v, 1 + 0.1 + 0.2 * v)),
        saturation=float(rng.uniform(1 - 0.1 - 0.3 * v, 1 + 0.1 + 0.2 * v)),
        blur=float(rng.uniform(0.0, 1.2 * v)),
        noise=float(rng.uniform(1.0, 3.0 + 3.0 * v)),
    )
    return ClipLook(style, response, float(rng.uniform(5.0 - 1.5 * v, 5.0 + 2.5 * v)))


def _facing(dx: float, dz: float) -> int:
    if abs(dz) > 0.8 * abs(dx):
        return FRONT if dz < 0 else BACK
    return RIGHT if dx > 0 else LEFT


def _simulate_track(
    rng: np.random.Generator,
    scene: Scene,
    num_frames: int,
    fps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (x, z, facing, phase index) of one person.

    Walkers follow random waypoints (turning at each, sometimes pausing); standers stay and
    turn now and then.
    """
    cam = scene.camera
    wall_z = scene.far_z
    half = cam.width / (2 * cam.focal)

    def point() -> tuple[float, float]:
        z = 5.5 + float(rng.random()) ** 1.3 * (wall_z - 7.0)
        return float(rng.uniform(-1.25, 1.25) * half * z), z

    def near(x: float, z: float) -> tuple[float, float]:
        """A waypoint 1.5-5 m away, so that people turn every few seconds."""
        a, r = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(1.5, 5.0))
        nz = float(np.clip(z + r * math.sin(a), 5.5, wall_z - 1.5))
        nx = float(np.clip(x + r * math.cos(a), -1.25 * half * nz, 1.25 * half * nz))
        return nx, nz

    xs = np.zeros(num_frames)
    zs = np.zeros(num_frames)
    facing = np.zeros(num_frames, np.int64)
    phase = np.zeros(num_frames, np.int64)
    x, z = point()
    if rng.random() < 0.15:  # stander
        f = int(rng.integers(4))
        t = 0
        while t < num_frames:
            dur = int(rng.uniform(1.5, 4.0) * fps)
            xs[t : t + dur], zs[t : t + dur], facing[t : t + dur] = x, z, f
            phase[t : t + dur] = STAND
            f = int(rng.integers(4))
            t += dur
        return xs, zs, facing, phase
    speed = float(rng.uniform(0.9, 1.7)) / fps
    dist = float(rng.uniform(0, STRIDE_METRES))
    target = point()
    f = FRONT
    t = 0
    while t < num_frames:
        dx, dz = target[0] - x, target[1] - z
        d = math.hypot(dx, dz)
        if d < speed:
            if rng.random() < 0.35:  # pause, usually turning
                dur = int(rng.uniform(0.5, 2.0) * fps)
                pf = int(rng.integers(4)) if rng.random() < 0.7 else f
                xs[t : t + dur], zs[t : t + dur], facing[t : t + dur] = x, z, pf
                phase[t : t + dur] = STAND
                t += dur
            target = near(x, z)
            continue
        x += dx / d * speed
        z += dz / d * speed
        dist += speed
        f = _facing(dx, dz)
        xs[t], zs[t], facing[t] = x, z, f
        phase[t] = int(dist / STRIDE_METRES * NUM_PHASES) % NUM_PHASES
        t += 1
    return xs, zs, facing, phase


class ClipSimulator:
    """Renders one clip frame by frame, with exact per-pixel identity maps.

    Args:
        config: corpus configuration.
        clip_index: index of the clip (with ``config.seed`` it fixes everything).

    """

    def __init__(self, config: CorpusConfig, clip_index: int) -> None:
        self.config = config
        self.clip_index = clip_index
        c = config
        rng = derive_rng(c.seed, CORPUS_TAG, clip_index, 0)
        # the people and the look have their own streams: the same seed gives the same people at any variety
        n = int(derive_rng(c.seed, CORPUS_TAG, clip_index, 5).integers(c.min_people, c.max_people + 1))
        self.look = sample_clip_look(derive_rng(c.seed, CORPUS_TAG, clip_index, 4), c)
        self.scene = make_scene(rng, c.width, c.height, "street", z_near=self.look.z_near)
        self.response = self.look.response
        self._lut = self.response.lut()
        self.banks: list[SpriteBank] = []
        tracks = []
        for k in range(n):
            prng = derive_rng(c.seed, CORPUS_TAG, clip_index, 1, k)
            self.banks.append(SpriteBank(sample_outfit(prng), style=self.look.style))
            tracks.append(_simulate_track(prng, self.scene, c.num_frames, c.fps))
        self.tracks = tracks
        # slow global light changes (clouds) and a small pool of sensor noise frames
        t = np.arange(c.num_frames) / c.fps
        a, p = rng.uniform(0.03, 0.1), rng.uniform(4, 12)
        self.global_gain = 1 + a * np.sin(2 * np.pi * t / p + rng.uniform(0, 6.3))
        noise_rng = derive_rng(c.seed, CORPUS_TAG, clip_index, 2)
        self._noise = [
            noise_rng.normal(0, self.response.noise, (c.height, c.width, 3)).astype(np.int16) for _ in range(3)
        ]
        # the camera response is per pixel, so the empty background is processed once and
        # each frame only re-processes the rectangles where people and occluders are drawn
        self._bg = self.scene.background.astype(np.float32)
        bg = self._respond(self.scene.background)
        self._bg_out = [np.clip(bg + n, 0, 255).astype(np.uint8) for n in self._noise]

    def _respond(self, image: np.ndarray) -> np.ndarray:
        """Camera tone curve, colour cast and saturation (uint8 in, int16 out)."""
        out = self._lut[image, np.arange(3)].astype(np.int16)
        saturation = self.response.saturation
        if saturation != 1.0:
            gray = out.mean(axis=-1, keepdims=True)
            out = np.clip(gray + (out - gray) * saturation, 0, 255).astype(np.int16)
        return out

    @property
    def num_people(self) -> int:
        """Identities in the clip."""
        return len(self.banks)

    def render(self, frame_index: int) -> tuple[np.ndarray, np.ndarray, FrameAnnotations]:
        """Render one frame (0-based index).

        Returns:
            ``(image, idmap, annotations)``: the ``(H, W, 3)`` uint8 frame as the camera
            records it, the ``(H, W)`` int32 map of which person (track id) or occluder
            (``-1``) owns each pixel (0: background), and the ground truth.

        """
        sprites, totals = self._lit_people(frame_index)
        img = self._bg.copy()
        idmap = np.zeros((self.config.height, self.config.width), np.int32)
        rects = self._paint(img, idmap, sprites)
        ann = self._annotate(idmap, totals)
        return self._record(img, rects, frame_index), idmap, ann

    def _lit_people(
        self, frame_index: int
    ) -> tuple[dict[int, tuple[np.ndarray, int, int, float]], dict[int, tuple[int, tuple[int, int, int, int]]]]:
        """The people at least partly inside the frame, posed and lit.

        Returns:
            ``(sprites, totals)`` keyed by track id: ``sprites`` holds the ``(h, w, 4)`` float32
            lit RGBA sprite, its top-left corner ``left, top`` and the foot row; ``totals`` the
            body's pixel count and its ``x0, y0, x1, y1`` box (may stick out of the frame).

        """
        cam = self.scene.camera
        img_h, img_w = self.config.height, self.config.width
        gain = self.global_gain[frame_index]
        sprites: dict[int, tuple[np.ndarray, int, int, float]] = {}
        totals: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        for k, bank in enumerate(self.banks):
            xs, zs, facing, phase = self.tracks[k]
            x, z = xs[frame_index], zs[frame_index]
            u, v = cam.foot(x, z)
            rgba, fx, fy = bank.sprite(
                int(facing[frame_index]), int(phase[frame_index]), BODY_METRES * cam.pixels_per_metre(z)
            )
            left, top = round(u - fx), round(v - fy)
            h, w = rgba.shape[:2]
            if left >= img_w or top >= img_h or left + w <= 0 or top + h <= 0:
                continue
            light = self.scene.light[int(np.clip(v, 0, img_h - 1)), int(np.clip(u, 0, img_w - 1))]
            rgba = rgba.astype(np.float32)
            rgba[..., :3] *= light * gain
            mask = rgba[..., 3] > 127
            ys, xs_ = np.nonzero(mask)
            box = (left + int(xs_.min()), top + int(ys.min()), left + int(xs_.max()) + 1, top + int(ys.max()) + 1)
            totals[k + 1] = (int(mask.sum()), box)
            sprites[k + 1] = (rgba, left, top, v)
        return sprites, totals

    def _paint(
        self, img: np.ndarray, idmap: np.ndarray, sprites: dict[int, tuple[np.ndarray, int, int, float]]
    ) -> list[tuple[int, int, int, int]]:
        """Paint people and occluders far to near (by foot row) into ``img`` and ``idmap``, in place.

        Args:
            img: ``(H, W, 3)`` float32 frame before the camera response.
            idmap: ``(H, W)`` int32 owner of each pixel.
            sprites: the people, as :meth:`_lit_people` gives them.

        Returns:
            The ``x0, y0, x1, y1`` rectangles painted over (inside the frame).

        """
        img_h, img_w = idmap.shape
        items = [(foot_y, code, code) for code, (_, _, _, foot_y) in sprites.items()]  # (foot_y, order, code)
        for j, occ in enumerate(self.scene.occluders):
            items.append((occ.foot_y, 10_000 + j, OCCLUDER_CODE - j))
        items.sort()
        rects: list[tuple[int, int, int, int]] = []
        for _, _, code in items:
            if code > 0:
                rgba, left, top, _ = sprites[code]
            else:
                occ = self.scene.occluders[OCCLUDER_CODE - code]
                rgba, left, top = occ.rgba.astype(np.float32), occ.left, occ.top
            h, w = rgba.shape[:2]
            x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, img_w), min(top + h, img_h)
            if x0 >= x1 or y0 >= y1:
                continue
            rects.append((x0, y0, x1, y1))
            part = rgba[y0 - top : y1 - top, x0 - left : x1 - left]
            a = part[..., 3:4] / 255.0
            region = img[y0:y1, x0:x1]
            region *= 1 - a
            region += a * part[..., :3]
            idmap[y0:y1, x0:x1][part[..., 3] > 127] = code if code > 0 else OCCLUDER_CODE
        return rects

    @staticmethod
    def _annotate(idmap: np.ndarray, totals: dict[int, tuple[int, tuple[int, int, int, int]]]) -> FrameAnnotations:
        """Ground truth from the painted ``(H, W)`` id map and each person's pixel count and box."""
        img_h, img_w = idmap.shape
        ids, boxes, vboxes, vis = [], [], [], []
        for pid in sorted(totals):
            total, (bx0, by0, bx1, by1) = totals[pid]
            bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, img_w), min(by1, img_h)
            if bx1 - bx0 < 2 or by1 - by0 < 2:
                continue
            sub = idmap[by0:by1, bx0:bx1] == pid
            n_vis = int(sub.sum())
            if n_vis:
                ys, xs_ = np.nonzero(sub)
                vb = (bx0 + xs_.min(), by0 + ys.min(), xs_.max() - xs_.min() + 1, ys.max() - ys.min() + 1)
            else:
                vb = (0, 0, 0, 0)
            ids.append(pid)
            boxes.append((bx0, by0, bx1 - bx0, by1 - by0))
            vboxes.append(vb)
            vis.append(n_vis / max(total, 1))
        return FrameAnnotations(
            np.asarray(ids, np.int64),
            np.asarray(boxes, np.float64).reshape(-1, 4),
            np.asarray(vboxes, np.float64).reshape(-1, 4),
            np.asarray(vis, np.float64),
        )

    def _record(self, img: np.ndarray, rects: list[tuple[int, int, int, int]], frame_index: int) -> np.ndarray:
        """The camera's ``(H, W, 3)`` uint8 frame: its response and noise over the painted rectangles, then blur."""
        k = frame_index % len(self._noise)
        out = self._bg_out[k].copy()
        for x0, y0, x1, y1 in rects:
            part = self._respond(np.clip(img[y0:y1, x0:x1], 0, 255).astype(np.uint8))
            part += self._noise[k][y0:y1, x0:x1]
            out[y0:y1, x0:x1] = np.clip(part, 0, 255).astype(np.uint8)
        if self.response.blur > 0:  # the whole frame, noise included (a soft lens and in-camera denoising)
            out = np.array(Image.fromarray(out).filter(ImageFilter.GaussianBlur(self.response.blur)))
        return out


def _clip_box(x: float, y: float, w: float, h: float, img_w: int, img_h: int) -> tuple[float, ...]:
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(img_w), x + w), min(float(img_h), y + h)
    return x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)


def simulate_detections(
    rng: np.random.Generator, ann: FrameAnnotations, scene: Scene, noise: DetectorNoise
) -> np.ndarray:
    """Turn one frame's ground truth into detector-like boxes.

    Args:
        rng: random generator.
        ann: the frame's ground truth.
        scene: the scene (its camera gives person sizes for false positives).
        noise: the noise model.

    Returns:
        ``(n, 5)`` float array of ``x, y, w, h, score`` inside the frame.

    """
    cam = scene.camera
    img_w, img_h = cam.width, cam.height
    dets: list[list[float]] = []
    for i in range(len(ann.ids)):
        v = ann.visibility[i]
        x, y, w, h = ann.boxes[i]
        p_miss = noise.miss_rate + noise.occlusion_miss * (1 - v) ** 2
        p_miss += noise.small_miss * max(0.0, 1 - h / noise.small_height)
        if v < 0.25:
            p_miss = max(p_miss, 0.5)
        if rng.random() < min(p_miss, 0.98):
            continue
        if v < 0.8 and ann.visible_boxes[i, 2] > 0 and rng.random() < 0.6:
            x, y, w, h = ann.visible_boxes[i]  # detectors box what they see
        cx = x + w / 2 + rng.normal(0, noise.jitter) * w
        cy = y + h / 2 + rng.normal(0, noise.jitter) * h
        w2 = w * math.exp(rng.normal(0, noise.scale_jitter))
        h2 = h * math.exp(rng.normal(0, noise.scale_jitter))
        score = float(np.clip(0.55 + 0.4 * v + rng.normal(0, 0.08), 0.3, 0.99))
        dets.append([cx - w2 / 2, cy - h2 / 2, w2, h2, score])
    # merges of overlapping people
    merged: list[list[float]] = []
    used = [False] * len(dets)
    for i in range(len(dets)):
        if used[i]:
            continue
        for j in range(i + 1, len(dets)):
            if used[j]:
                continue
            a, b = np.array(dets[i][:4]), np.array(dets[j][:4])
            if box_iou(a[None], b[None], fmt="xywh")[0, 0] >= noise.merge_iou and rng.random() < noise.merge_prob:
                x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                dets[i] = [x0, y0, x1 - x0, y1 - y0, min(dets[i][4], dets[j][4]) * 0.9]
                used[j] = True
                break
        merged.append(dets[i])
    # false positives: person-sized background patches
    for _ in range(int(rng.poisson(noise.fp_per_frame))):
        v = float(rng.uniform(cam.horizon + 0.1 * (img_h - cam.horizon), img_h))
        z = cam.depth_of_row(v)
        h = BODY_METRES * cam.pixels_per_metre(z) * rng.uniform(0.6, 1.1)
        w = h * rng.uniform(0.3, 0.55)
        u = float(rng.uniform(0, img_w))
        merged.append([u - w / 2, v - h, w, h, float(rng.uniform(0.3, 0.7))])
    out = []
    for x, y, w, h, s in merged:
        x, y, w, h = _clip_box(x, y, w, h, img_w, img_h)
        if w >= 4 and h >= 8:
            out.append([round(x, 1), round(y, 1), round(w, 1), round(h, 1), round(s, 3)])
    return np.asarray(out, np.float64).reshape(-1, 5)
