"""Scenes: ground-plane cameras, backgrounds, static occluders, lighting and camera response.

Four visual domains share the code but not the look:

* ``"street"`` (the training videos): daylight street, building façades with windows and
  shop fronts, grey paving, sun shadows, lamp posts, benches, parked cars, bins.
* ``"mall"`` (the main benchmark): indoor hall, large checkered floor tiles, glass and
  tiled walls, columns and planters, warm or fluorescent light, and per-camera colour cast,
  gamma, blur and noise.
* ``"station"``: underground platform, concrete floor with a yellow safety strip, small
  wall tiles with posters and a dark tunnel mouth, cold fluorescent light; washed-out,
  noisy, blurry cameras.
* ``"park"``: grass, a gravel path, trees and hedges under the sky, low evening sun with
  long shadows; saturated consumer-camera colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "CameraResponse",
    "GroundCamera",
    "Occluder",
    "Scene",
    "make_scene",
    "sample_response",
]

Color = tuple[int, int, int]
DOMAINS = ("street", "mall", "station", "park")


@dataclass(frozen=True)
class GroundCamera:
    """A pinhole camera looking along a flat ground plane.

    World coordinates: ``x`` metres to the right, ``z`` metres of depth, ground at height 0,
    camera at ``cam_height`` metres. The horizon is image row ``horizon``.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        horizon: image row of the horizon.
        focal: focal length in pixels.
        cam_height: camera height above the ground in metres.

    """

    width: int
    height: int
    horizon: float
    focal: float
    cam_height: float = 3.0

    @classmethod
    def create(
        cls, width: int, height: int, horizon_frac: float = 0.3, z_near: float = 5.0, cam_height: float = 3.0
    ) -> GroundCamera:
        """Build a camera whose bottom image row sees the ground at depth ``z_near``."""
        horizon = height * horizon_frac
        focal = (height - horizon) * z_near / cam_height
        return cls(width, height, horizon, focal, cam_height)

    def foot(self, x: float, z: float) -> tuple[float, float]:
        """Image position of the ground point ``(x, z)``."""
        return self.width / 2 + self.focal * x / z, self.horizon + self.focal * self.cam_height / z

    def pixels_per_metre(self, z: float) -> float:
        """Image scale at depth ``z``."""
        return self.focal / z

    def depth_of_row(self, v: float) -> float:
        """Depth of the ground seen at image row ``v`` (below the horizon)."""
        return self.focal * self.cam_height / max(v - self.horizon, 1e-3)


@dataclass
class Occluder:
    """A static object standing on the ground, drawn in depth order with the people.

    Attributes:
        rgba: the sprite, ``(h, w, 4)`` uint8.
        left: image column of the sprite's left edge.
        top: image row of the sprite's top edge.
        foot_y: image row of its ground contact (depth order key).
        kind: what it is.

    """

    rgba: np.ndarray
    left: int
    top: int
    foot_y: float
    kind: str


@dataclass
class Scene:
    """A static background with its occluders and lighting.

    Attributes:
        camera: the camera geometry.
        background: ``(H, W, 3)`` uint8 image without people.
        light: ``(H, W, 3)`` float32 gain applied to a person standing at each ground pixel
            (sun and shadow, colour of the light).
        occluders: static objects in front of the background.
        domain: ``"street"`` or ``"mall"``.
        far_z: depth of the back wall (metres); people walk in front of it.

    """

    camera: GroundCamera
    background: np.ndarray
    light: np.ndarray
    occluders: list[Occluder]
    domain: str
    far_z: float


def _value_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1], upsampled from a coarse grid."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    coarse = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    img = Image.fromarray(((coarse + 1) * 127.5).astype(np.uint8), "L")
    img = img.resize((gw * cell, gh * cell), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)[:h, :w] / 127.5 - 1


def _jitter(rng: np.random.Generator, c: Color, amount: float = 18) -> Color:
    return tuple(int(np.clip(v + rng.uniform(-amount, amount), 0, 255)) for v in c)  # type: ignore[return-value]


STREET_WALLS: tuple[Color, ...] = (
    (150, 70, 55),
    (175, 165, 150),
    (120, 120, 125),
    (200, 185, 150),
    (95, 85, 80),
    (160, 120, 90),
)
STREET_GROUND: tuple[Color, ...] = ((125, 125, 122), (140, 135, 128), (105, 108, 110))
MALL_WALLS: tuple[Color, ...] = ((70, 130, 140), (215, 210, 195), (150, 175, 160), (180, 150, 190), (230, 220, 170))
MALL_FLOORS: tuple[tuple[Color, Color], ...] = (
    ((200, 180, 150), (150, 95, 70)),
    ((190, 200, 195), (90, 110, 105)),
    ((225, 215, 200), (60, 60, 70)),
)


def _draw_street(rng: np.random.Generator, cam: GroundCamera, wall_z: float) -> np.ndarray:
    w, h = cam.width, cam.height
    _, base = cam.foot(0, wall_z)
    img = Image.new("RGB", (w, h), _jitter(rng, STREET_GROUND[rng.integers(3)]))
    d = ImageDraw.Draw(img)
    # building façades: several buildings of different colours and heights
    x = -rng.uniform(0, 60)
    ppm = cam.pixels_per_metre(wall_z)
    while x < w:
        bw = rng.uniform(6, 14) * ppm
        wall = _jitter(rng, STREET_WALLS[rng.integers(len(STREET_WALLS))])
        d.rectangle([x, 0, x + bw, base], fill=wall)
        win = _jitter(rng, (60, 75, 95), 15)
        ww, wh = 1.2 * ppm, 1.5 * ppm
        floor_h = 3.2 * ppm
        for fy in np.arange(base - 2 * floor_h, -floor_h, -floor_h):
            for wx in np.arange(x + 0.8 * ppm, x + bw - ww, 2.4 * ppm):
                d.rectangle([wx, fy, wx + ww, fy + wh], fill=win)
                d.rectangle([wx, fy + wh, wx + ww, fy + wh + 0.15 * ppm], fill=(210, 210, 205))
        # shop front at street level
        shop = _jitter(rng, (40, 50, 55), 20)
        d.rectangle([x + 0.5 * ppm, base - 2.6 * ppm, x + bw - 0.5 * ppm, base], fill=shop)
        sign = _jitter(rng, ((190, 40, 40), (40, 90, 160), (230, 200, 60))[rng.integers(3)])
        d.rectangle([x + 0.5 * ppm, base - 3.2 * ppm, x + bw - 0.5 * ppm, base - 2.7 * ppm], fill=sign)
        d.line([x + bw, 0, x + bw, base], fill=_jitter(rng, (60, 60, 60)), width=2)
        x += bw
    # paving: lines at fixed depths and converging lines
    line = tuple(int(c * 0.72) for c in img.getpixel((0, h - 1)))
    for z in np.arange(cam.depth_of_row(h), wall_z, 1.5):
        _, v = cam.foot(0, z)
        d.line([0, v, w, v], fill=line, width=1)
    for xm in np.arange(-40, 40, 1.5):
        u0, v0 = cam.foot(xm, wall_z)
        u1, v1 = cam.foot(xm, 2.0)
        d.line([u0, v0, u1, v1], fill=line, width=1)
    # kerb and road strip at the bottom-far edge of the pavement
    d.rectangle([0, base, w, base + 0.35 * ppm], fill=(170, 170, 165))
    return np.asarray(img).astype(np.float32)


def _draw_mall(rng: np.random.Generator, cam: GroundCamera, wall_z: float) -> np.ndarray:
    w, h = cam.width, cam.height
    _, base = cam.foot(0, wall_z)
    ppm = cam.pixels_per_metre(wall_z)
    img = Image.new("RGB", (w, h), (0, 0, 0))
    d = ImageDraw.Draw(img)
    # floor: large checkered tiles in perspective
    c1, c2 = MALL_FLOORS[rng.integers(len(MALL_FLOORS))]
    c1, c2 = _jitter(rng, c1, 10), _jitter(rng, c2, 10)
    c2 = tuple(int(0.75 * a + 0.25 * b) for a, b in zip(c1, c2, strict=True))  # type: ignore[assignment]
    tile = rng.uniform(1.2, 2.2)
    xs = np.arange(-60, 60, tile)
    zs = np.arange(1.5, wall_z + tile, tile)
    for i, z0 in enumerate(zs[:-1]):
        z1 = zs[i + 1]
        for j, x0 in enumerate(xs[:-1]):
            x1 = xs[j + 1]
            pts = [cam.foot(x0, z0), cam.foot(x1, z0), cam.foot(x1, z1), cam.foot(x0, z1)]
            d.polygon(pts, fill=c1 if (i + j) % 2 == 0 else c2)
    # walls: glass panels or tiled wall with columns
    wall = _jitter(rng, MALL_WALLS[rng.integers(len(MALL_WALLS))])
    d.rectangle([0, 0, w, base], fill=wall)
    x = rng.uniform(-3, 0) * ppm
    while x < w:
        pw = rng.uniform(2.5, 4.5) * ppm
        glass = rng.random() < 0.6
        if glass:
            top = _jitter(rng, (150, 190, 210), 25)
            for k in range(6):
                t = k / 6
                col = tuple(int(a * (1 - 0.4 * t)) for a in top)
                d.rectangle([x + 2, base * t, x + pw - 2, base * (t + 1 / 6)], fill=col)
        d.rectangle([x, 0, x + 0.25 * ppm, base], fill=_jitter(rng, (90, 90, 95)))
        x += pw
    d.rectangle([0, 0, w, 0.08 * h], fill=_jitter(rng, (235, 235, 225)))  # ceiling lights
    d.rectangle([0, base - 0.3 * ppm, w, base], fill=_jitter(rng, (70, 60, 55)))
    return np.asarray(img).astype(np.float32)


def _draw_station(rng: np.random.Generator, cam: GroundCamera, wall_z: float) -> np.ndarray:
    w, h = cam.width, cam.height
    _, base = cam.foot(0, wall_z)
    ppm = cam.pixels_per_metre(wall_z)
    floor = _jitter(rng, (150, 150, 145), 15)
    img = Image.new("RGB", (w, h), floor)
    d = ImageDraw.Draw(img)
    # yellow safety strip and the dark platform edge, running across the view at one depth
    z_strip = float(rng.uniform(6.5, 9.0))
    _, v0 = cam.foot(0, z_strip)
    _, v1 = cam.foot(0, z_strip - 0.5)
    d.rectangle([0, v0, w, v1], fill=_jitter(rng, (215, 185, 40), 12))
    _, v2 = cam.foot(0, z_strip - 1.2)
    d.rectangle([0, v2, w, h], fill=_jitter(rng, (70, 68, 66), 8))
    # wall of small tiles with posters and a dark tunnel mouth
    tile_col = _jitter(rng, ((225, 225, 215), (190, 210, 220), (215, 200, 170))[rng.integers(3)], 10)
    d.rectangle([0, 0, w, base], fill=tile_col)
    grout = tuple(int(c * 0.82) for c in tile_col)
    step = max(3.0, 0.3 * ppm)
    for y in np.arange(0, base, step):
        d.line([0, y, w, y], fill=grout, width=1)
    for x in np.arange(rng.uniform(0, step), w, step):
        d.line([x, 0, x, base], fill=grout, width=1)
    band = _jitter(rng, ((40, 80, 160), (170, 40, 40), (40, 130, 70))[rng.integers(3)], 15)
    d.rectangle([0, base - 2.4 * ppm, w, base - 2.1 * ppm], fill=band)
    x = rng.uniform(0, 3) * ppm
    while x < w:
        pw = rng.uniform(1.2, 2.2) * ppm
        poster = _jitter(rng, tuple(int(c) for c in rng.integers(40, 230, 3)), 0)
        d.rectangle([x, base - 1.9 * ppm, x + pw, base - 0.5 * ppm], fill=poster)
        d.rectangle(
            [x + 0.1 * pw, base - 1.8 * ppm, x + 0.9 * pw, base - 1.4 * ppm], fill=_jitter(rng, (235, 235, 230))
        )
        x += pw + rng.uniform(1.5, 4.0) * ppm
    tx = rng.uniform(0.1, 0.7) * w
    d.rectangle([tx, base - 3.5 * ppm, tx + rng.uniform(3, 6) * ppm, base], fill=(18, 18, 22))
    d.rectangle([0, 0, w, 0.06 * h], fill=_jitter(rng, (240, 245, 250), 5))  # light strip
    return np.asarray(img).astype(np.float32)


def _draw_park(rng: np.random.Generator, cam: GroundCamera, wall_z: float) -> np.ndarray:
    w, h = cam.width, cam.height
    _, base = cam.foot(0, wall_z)
    ppm = cam.pixels_per_metre(wall_z)
    img = Image.new("RGB", (w, h), _jitter(rng, (95, 140, 60), 15))
    d = ImageDraw.Draw(img)
    # sky, distant tree line, then trees and hedges at the far edge of the lawn
    sky = _jitter(rng, (150, 190, 225), 15)
    for k in range(8):
        col = tuple(int(c * (0.85 + 0.15 * k / 7)) for c in sky)
        d.rectangle([0, base * k / 8, w, base * (k + 1) / 8], fill=col)
    d.rectangle([0, base - 3.0 * ppm, w, base], fill=_jitter(rng, (60, 95, 55), 10))
    for _ in range(int(w / (2.5 * ppm)) + 2):
        tx, r = rng.uniform(0, w), rng.uniform(1.2, 2.4) * ppm
        top = base - rng.uniform(4.0, 7.0) * ppm
        d.rectangle([tx - 0.15 * ppm, top + r, tx + 0.15 * ppm, base], fill=_jitter(rng, (90, 65, 45), 10))
        d.ellipse([tx - r, top, tx + r, top + 2 * r], fill=_jitter(rng, (50, 100, 45), 20))
    d.rectangle([0, base - 0.9 * ppm, w, base], fill=_jitter(rng, (45, 85, 40), 10))
    # a gravel path across the lawn, in perspective
    x0, width = float(rng.uniform(-6, 6)), float(rng.uniform(2.0, 3.5))
    slope = float(rng.uniform(-0.6, 0.6))
    pts = [cam.foot(x0 + slope * z, z) for z in (2.0, wall_z)]
    pts += [cam.foot(x0 + width + slope * z, z) for z in (wall_z, 2.0)]
    d.polygon(pts, fill=_jitter(rng, (190, 175, 140), 12))
    return np.asarray(img).astype(np.float32)


def _occluder_sprite(rng: np.random.Generator, kind: str, ppm: float, domain: str) -> np.ndarray:
    """Draw an occluder whose ground contact is the bottom-centre of the returned sprite."""
    if kind == "pole":
        w, hgt = 0.18, 4.5
    elif kind == "bench":
        w, hgt = 2.0, 0.9
    elif kind == "car":
        w, hgt = 4.2, 1.5
    elif kind == "bin":
        w, hgt = 0.6, 1.0
    elif kind == "column":
        w, hgt = 0.7, 5.0
    else:  # planter
        w, hgt = 1.2, 1.4
    pw, ph = max(2, int(w * ppm)), max(2, int(hgt * ppm))
    img = Image.new("RGBA", (pw, ph), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if kind == "pole":
        d.rectangle([0, 0, pw, ph], fill=(*_jitter(rng, (50, 55, 60), 10), 255))
        d.ellipse([-pw, 0, 2 * pw, pw], fill=(230, 225, 180, 255))
    elif kind == "bench":
        col = _jitter(rng, (120, 80, 50), 20)
        d.rectangle([0, 0, pw, ph * 0.25], fill=(*col, 255))
        d.rectangle([0, ph * 0.45, pw, ph * 0.6], fill=(*col, 255))
        for x in (pw * 0.1, pw * 0.85):
            d.rectangle([x, ph * 0.6, x + pw * 0.05, ph], fill=(40, 40, 40, 255))
    elif kind == "car":
        body = _jitter(
            rng, ((180, 30, 30), (30, 50, 120), (200, 200, 200), (30, 30, 30), (90, 100, 90))[rng.integers(5)], 15
        )
        d.rectangle([0, ph * 0.4, pw, ph * 0.85], fill=(*body, 255))
        d.polygon([(pw * 0.2, ph * 0.4), (pw * 0.3, 0), (pw * 0.72, 0), (pw * 0.85, ph * 0.4)], fill=(*body, 255))
        d.polygon(
            [(pw * 0.26, ph * 0.38), (pw * 0.33, ph * 0.06), (pw * 0.69, ph * 0.06), (pw * 0.79, ph * 0.38)],
            fill=(70, 90, 110, 255),
        )
        for x in (pw * 0.12, pw * 0.7):
            d.ellipse([x, ph * 0.65, x + ph * 0.35, ph], fill=(20, 20, 20, 255))
    elif kind == "bin":
        d.rectangle([0, 0, pw, ph], fill=(*_jitter(rng, (40, 90, 50), 20), 255))
        d.rectangle([0, 0, pw, ph * 0.12], fill=(30, 30, 30, 255))
    elif kind == "column":
        col = _jitter(rng, (200, 195, 185), 20)
        d.rectangle([0, 0, pw, ph], fill=(*col, 255))
        d.rectangle([0, 0, pw * 0.25, ph], fill=(*tuple(int(c * 0.8) for c in col), 255))
    else:
        pot = _jitter(rng, (220, 220, 215) if domain == "mall" else (150, 90, 60), 20)
        d.rectangle([pw * 0.1, ph * 0.5, pw * 0.9, ph], fill=(*pot, 255))
        d.ellipse([0, 0, pw, ph * 0.65], fill=(*_jitter(rng, (50, 110, 50), 20), 255))
    return np.asarray(img)


def make_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    domain: str = "street",
    num_occluders: int | None = None,
    horizon_frac: float | None = None,
    z_near: float = 5.0,
) -> Scene:
    """Build one static scene.

    Args:
        rng: random generator.
        width: image width.
        height: image height.
        domain: ``"street"`` (training videos) or ``"mall"`` (benchmark).
        num_occluders: static objects to place (random 2-5 when ``None``).
        horizon_frac: horizon row as a fraction of the height (random when ``None``).
        z_near: ground depth seen at the bottom row (metres).

    Returns:
        The scene.

    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    hf = float(rng.uniform(0.22, 0.36)) if horizon_frac is None else horizon_frac
    cam = GroundCamera.create(width, height, hf, z_near)
    wall_z = float(rng.uniform(15, 22)) if domain == "street" else float(rng.uniform(18, 26))
    if domain == "street":
        bg = _draw_street(rng, cam, wall_z)
        sun = np.array(_jitter(rng, (255, 245, 225), 10), np.float32) / 245
        shade = np.array([0.68, 0.72, 0.82], np.float32) * rng.uniform(0.9, 1.1)
    elif domain == "mall":
        bg = _draw_mall(rng, cam, wall_z)
        sun = np.array(((1.08, 1.0, 0.82), (0.92, 1.02, 1.02))[rng.integers(2)], np.float32)
        shade = sun * np.float32(0.75)
    elif domain == "station":
        bg = _draw_station(rng, cam, wall_z)
        sun = np.array((0.9, 0.98, 1.08), np.float32) * rng.uniform(0.8, 1.0)
        shade = sun * np.float32(0.7)
    else:
        bg = _draw_park(rng, cam, wall_z)
        sun = np.array(_jitter(rng, (255, 225, 180), 10), np.float32) / 230
        shade = np.array([0.55, 0.62, 0.78], np.float32) * rng.uniform(0.9, 1.1)
    # surface texture
    tex = _value_noise(rng, height, width, 24) * 10 + _value_noise(rng, height, width, 4) * 5
    bg += tex[..., None]
    # lighting: sun with shadow bands on the ground (street) or light pools (mall)
    shadow = np.zeros((height, width), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(int(rng.integers(0, 3))):
        slope = rng.uniform(-1.2, 1.2)
        x0 = rng.uniform(-0.3, 1.0) * width
        band = rng.uniform(0.08, 0.25) * width
        pos = xx - (x0 + slope * (height - yy))
        shadow = np.maximum(shadow, ((pos > 0) & (pos < band)).astype(np.float32))
    shadow_img = Image.fromarray((shadow * 255).astype(np.uint8), "L")
    shadow = np.asarray(shadow_img.filter(ImageFilter.GaussianBlur(6)), np.float32) / 255
    shadow[: int(cam.horizon)] = 0
    light = (1 - shadow)[..., None] * sun + shadow[..., None] * shade
    ground = yy >= cam.foot(0, wall_z)[1]
    bg = np.where(ground[..., None], bg * light, bg * sun)
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    # occluders
    occluders: list[Occluder] = []
    kinds = {
        "street": ("pole", "bench", "car", "bin", "planter"),
        "mall": ("column", "planter", "bench", "bin"),
        "station": ("column", "bench", "bin"),
        "park": ("pole", "bench", "bin", "planter"),
    }[domain]
    n_occ = int(rng.integers(2, 6)) if num_occluders is None else num_occluders
    for _ in range(n_occ):
        kind = kinds[int(rng.integers(len(kinds)))]
        z = float(rng.uniform(6.0, wall_z - 2))
        x = float(rng.uniform(-1, 1)) * z * width / (2 * cam.focal)
        u, v = cam.foot(x, z)
        rgba = _occluder_sprite(rng, kind, cam.pixels_per_metre(z), domain)
        occluders.append(Occluder(rgba, round(u - rgba.shape[1] / 2), round(v - rgba.shape[0]), v, kind))
    return Scene(cam, bg, light.astype(np.float32), occluders, domain, wall_z)


@dataclass(frozen=True)
class CameraResponse:
    """How a camera turns scene radiance into pixels.

    Attributes:
        gain: per-channel gain (colour cast).
        gamma: tone curve exponent.
        saturation: 1 keeps colours, lower washes them out.
        blur: Gaussian blur radius in pixels (0: none).
        noise: standard deviation of additive pixel noise.
        jpeg_quality: quality of the saved JPEG (benchmark images).

    """

    gain: tuple[float, float, float]
    gamma: float
    saturation: float
    blur: float
    noise: float
    jpeg_quality: int = 90

    def lut(self) -> np.ndarray:
        """``(256, 3)`` uint8 lookup table of gain and gamma."""
        x = np.arange(256, dtype=np.float32)[:, None] / 255
        y = np.clip(x**self.gamma * np.array(self.gain, np.float32), 0, 1)
        return (y * 255 + 0.5).astype(np.uint8)

    def apply(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Apply the response to an ``(H, W, 3)`` uint8 image."""
        lut = self.lut()
        out = np.stack([lut[image[..., c], c] for c in range(3)], axis=-1)
        if self.saturation != 1.0:
            f = out.astype(np.float32)
            gray = f.mean(axis=-1, keepdims=True)
            out = np.clip(gray + (f - gray) * self.saturation, 0, 255).astype(np.uint8)
        if self.blur > 0:
            out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(self.blur)))
        if self.noise > 0 and rng is not None:
            n = rng.normal(0, self.noise, out.shape).astype(np.float32)
            out = np.clip(out.astype(np.float32) + n, 0, 255).astype(np.uint8)
        return out


_Range = tuple[float, float]
# Per domain, the uniform ranges of a camera response in drawing order: gain (per channel),
# gamma, saturation, blur (None: no blur, not drawn), noise, JPEG quality (None: not drawn).
RESPONSE_RANGES: dict[str, tuple[_Range, _Range, _Range, _Range | None, _Range, tuple[int, int] | None]] = {
    "street": ((0.93, 1.07), (0.9, 1.1), (0.9, 1.1), None, (1.0, 3.0), None),
    "mall": ((0.88, 1.1), (0.8, 1.25), (0.75, 1.15), (0.0, 1.0), (2.0, 6.0), (70, 95)),
    "station": ((0.85, 1.12), (0.85, 1.3), (0.55, 0.95), (0.3, 1.2), (3.0, 8.0), (60, 90)),
    "park": ((0.92, 1.1), (0.75, 1.1), (1.05, 1.35), (0.0, 0.8), (1.0, 4.0), (75, 95)),
}


def sample_response(rng: np.random.Generator, domain: str) -> CameraResponse:
    """Draw a camera response typical of a domain (:data:`RESPONSE_RANGES`; unknown: ``mall``).

    Street cameras (training) are mild: small casts, near-linear tone. Mall cameras
    (benchmark) have strong casts, different gamma, desaturation, blur and noise. Station
    cameras are washed out, blurry and noisy; park cameras saturate colours.
    """
    gain, gamma, saturation, blur, noise, jpeg = RESPONSE_RANGES.get(domain, RESPONSE_RANGES["mall"])
    drawn_gain = tuple(float(g) for g in rng.uniform(*gain, 3))
    drawn_gamma, drawn_saturation = float(rng.uniform(*gamma)), float(rng.uniform(*saturation))
    drawn_blur = 0.0 if blur is None else float(rng.uniform(*blur))
    drawn_noise = float(rng.uniform(*noise))
    quality = {} if jpeg is None else {"jpeg_quality": int(rng.integers(*jpeg))}
    return CameraResponse(drawn_gain, drawn_gamma, drawn_saturation, drawn_blur, drawn_noise, **quality)
