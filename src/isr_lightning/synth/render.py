"""Drawing people: articulated 2-D figures whose look depends on facing and walking phase.

A person is drawn once per (facing, walking phase) at a reference size with PIL, at twice
the size any frame needs (so downscaling antialiases), and cached as an RGBA sprite in a
:class:`SpriteBank`. Frames then only resize and alpha-blend sprites, which keeps rendering
fast on a CPU.

Facings: :data:`FRONT` (walking towards the camera: face, logo, open jacket, backpack
straps), :data:`BACK` (hair covers the head, backpack, no logo), :data:`RIGHT` and
:data:`LEFT` (profile: narrow torso, legs and arms swing, backpack sticks out behind).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage

from isr_lightning.synth.identity import Outfit

__all__ = [
    "BACK",
    "FACINGS",
    "FRONT",
    "LEFT",
    "NUM_PHASES",
    "REF_HEIGHT",
    "RIGHT",
    "STAND",
    "STYLES",
    "SpriteBank",
    "render_person",
]

FRONT, BACK, RIGHT, LEFT = 0, 1, 2, 3
FACINGS = ("front", "back", "right", "left")
NUM_PHASES = 8
STAND = -1  # phase index of the standing pose
STYLES = ("flat", "shaded", "outlined")  # ways of drawing a person (render_person)
REF_HEIGHT = 220  # body height (pixels) of the cached sprites; hats and hair add a margin
_TOP = 8.0  # margin above the head, in body units (1 unit = 1 % of the body height)
_CANVAS_W = 66.0
_CANVAS_H = 108.0

Color = tuple[int, int, int]


def _shade(color: Color, factor: float) -> Color:
    return tuple(int(max(0, min(255, c * factor))) for c in color)  # type: ignore[return-value]


class _Pen:
    """Body-unit drawing helpers on an RGBA canvas."""

    def __init__(self, height_px: int) -> None:
        self.u = height_px / 100.0
        self.size = (round(_CANVAS_W * self.u), round(_CANVAS_H * self.u))
        self.image = Image.new("RGBA", self.size, (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.u, (y + _TOP) * self.u)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        a, b = self.p(x0, y0), self.p(x1, y1)
        self.draw.ellipse([min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])], fill=(*color, 255))

    def poly(self, points: list[tuple[float, float]], color: Color) -> None:
        self.draw.polygon([self.p(x, y) for x, y in points], fill=(*color, 255))

    def limb(self, a: tuple[float, float], b: tuple[float, float], width: float, color: Color) -> None:
        """Draw a thick segment with round ends."""
        (ax, ay), (bx, by) = a, b
        dx, dy = bx - ax, by - ay
        n = math.hypot(dx, dy) or 1.0
        ox, oy = -dy / n * width / 2, dx / n * width / 2
        self.poly([(ax + ox, ay + oy), (bx + ox, by + oy), (bx - ox, by - oy), (ax - ox, ay - oy)], color)
        r = width / 2
        self.ellipse(ax - r, ay - r, ax + r, ay + r, color)
        self.ellipse(bx - r, by - r, bx + r, by + r, color)


def _torso_layer(pen: _Pen, outfit: Outfit, poly: list[tuple[float, float]], facing: int, cx: float) -> None:
    """Fill the torso polygon with the top's colour and pattern (masked to the torso)."""
    u = pen.u
    mask = Image.new("L", pen.size, 0)
    ImageDraw.Draw(mask).polygon([pen.p(x, y) for x, y in poly], fill=255)
    layer = Image.new("RGBA", pen.size, (*outfit.top, 255))
    d = ImageDraw.Draw(layer)
    pc = (*outfit.pattern_color, 255)
    w, h = pen.size
    kind = outfit.top_pattern
    if kind in ("hstripes", "checks"):
        y = (22 + _TOP) * u
        while y < h:
            d.rectangle([0, y, w, y + 2.6 * u], fill=pc)
            y += 6.5 * u
    if kind in ("vstripes", "checks"):
        x = (cx % 5.5) * u
        while x < w:
            d.rectangle([x, 0, x + 2.2 * u, h], fill=pc)
            x += 5.5 * u
    if kind == "block":
        d.rectangle([0, (37 + _TOP) * u, w, h], fill=pc)
    if kind == "dots":
        for yy in np.arange(25, 50, 5.5):
            for xx in np.arange(cx - 12, cx + 12, 5.5):
                x0, y0 = pen.p(xx, yy)
                d.ellipse([x0, y0, x0 + 1.8 * u, y0 + 1.8 * u], fill=pc)
    if facing == FRONT and outfit.open_jacket:
        b = outfit.build
        d.polygon(
            [pen.p(cx - 3.2 * b, 22), pen.p(cx + 3.2 * b, 22), pen.p(cx + 3.8 * b, 50), pen.p(cx - 3.8 * b, 50)],
            fill=(*outfit.inner_color, 255),
        )
    pen.image.paste(layer, (0, 0), mask)


def _logo(pen: _Pen, outfit: Outfit, cx: float) -> None:
    c, k = outfit.logo_color, outfit.logo
    if k == "circle":
        pen.ellipse(cx - 3.5, 27, cx + 3.5, 34, c)
    elif k == "square":
        pen.poly([(cx - 3.5, 27), (cx + 3.5, 27), (cx + 3.5, 34), (cx - 3.5, 34)], c)
    elif k == "bars":
        for i in range(3):
            y = 27 + 2.6 * i
            pen.poly([(cx - 5, y), (cx + 5, y), (cx + 5, y + 1.4), (cx - 5, y + 1.4)], c)
    elif k == "triangle":
        pen.poly([(cx, 26), (cx + 4.5, 34), (cx - 4.5, 34)], c)


def _head_front_back(pen: _Pen, o: Outfit, cx: float, facing: int) -> None:
    pen.limb((cx, 18), (cx, 23), 4.2, o.skin)  # neck
    if facing == BACK:
        pen.ellipse(cx - 4.6, 8, cx + 4.6, 20.5, o.skin)
        if o.hair_style != "bald":
            pen.ellipse(cx - 4.9, 7.6, cx + 4.9, 19.5, o.hair)
        if o.hair_style == "long":
            pen.poly([(cx - 4.9, 13), (cx + 4.9, 13), (cx + 5.5, 31), (cx - 5.5, 31)], o.hair)
        if o.hair_style == "bun":
            pen.ellipse(cx - 2.6, 7.5, cx + 2.6, 12.5, o.hair)
    else:
        if o.hair_style == "long":
            for sd in (-1, 1):
                pen.poly([(cx + sd * 2.5, 11), (cx + sd * 5.3, 11), (cx + sd * 6.0, 28), (cx + sd * 3.2, 28)], o.hair)
        pen.ellipse(cx - 4.5, 8, cx + 4.5, 20.5, o.skin)
        if o.hair_style != "bald":
            pen.ellipse(cx - 4.8, 7.4, cx + 4.8, 13.2, o.hair)
        if o.hair_style == "bun":
            pen.ellipse(cx - 2.2, 5.4, cx + 2.2, 9.2, o.hair)
        eye = _shade(o.skin, 0.35)
        pen.ellipse(cx - 2.6, 14.2, cx - 1.2, 15.4, eye)
        pen.ellipse(cx + 1.2, 14.2, cx + 2.6, 15.4, eye)
        pen.ellipse(cx - 1.5, 17.6, cx + 1.5, 18.4, _shade(o.skin, 0.7))
    if o.hat == "beanie":
        pen.ellipse(cx - 5.1, 6.2, cx + 5.1, 15.2, o.hat_color)
        pen.poly([(cx - 5.1, 10.5), (cx + 5.1, 10.5), (cx + 5.1, 12.8), (cx - 5.1, 12.8)], o.hat_color)
    elif o.hat == "cap":
        pen.ellipse(cx - 4.9, 6.8, cx + 4.9, 14.5, o.hat_color)
        if facing == FRONT:
            pen.ellipse(cx - 5.6, 11.2, cx + 5.6, 14.2, _shade(o.hat_color, 0.8))


def _head_side(pen: _Pen, o: Outfit, cx: float) -> None:
    """Profile facing +x."""
    pen.limb((cx, 18), (cx + 0.5, 23), 4.2, o.skin)
    if o.hair_style == "long":
        pen.poly([(cx - 4.8, 11), (cx + 0.5, 11), (cx - 0.5, 29), (cx - 5.8, 29)], o.hair)
    pen.ellipse(cx - 4.7, 8, cx + 4.9, 20.5, o.skin)
    pen.ellipse(cx + 3.9, 14.5, cx + 5.9, 17.0, o.skin)  # nose
    if o.hair_style != "bald":
        pen.ellipse(cx - 5.0, 7.4, cx + 3.5, 14.0, o.hair)
        pen.ellipse(cx - 5.0, 9.5, cx + 0.5, 18.5, o.hair)
    if o.hair_style == "bun":
        pen.ellipse(cx - 6.8, 8.0, cx - 2.8, 12.5, o.hair)
    pen.ellipse(cx + 2.4, 13.9, cx + 3.6, 15.1, _shade(o.skin, 0.35))
    if o.hat == "beanie":
        pen.ellipse(cx - 5.2, 6.2, cx + 5.0, 15.0, o.hat_color)
    elif o.hat == "cap":
        pen.ellipse(cx - 5.0, 6.8, cx + 4.8, 14.5, o.hat_color)
        pen.poly([(cx + 2, 11.8), (cx + 9.5, 12.6), (cx + 9.5, 14.0), (cx + 2, 14.0)], _shade(o.hat_color, 0.8))


def _leg(
    pen: _Pen,
    o: Outfit,
    hip: tuple[float, float],
    knee: tuple[float, float],
    ankle: tuple[float, float],
    width: float,
    factor: float,
    toe: float,
) -> None:
    lower = o.bottom_color if o.bottom == "trousers" else o.skin
    upper = o.skin if o.bottom == "skirt" else o.bottom_color
    pen.limb(knee, ankle, width * 0.85, _shade(lower, factor))
    pen.limb(hip, knee, width, _shade(upper, factor))
    ax, ay = ankle
    shoe = _shade(o.shoes, factor)
    if toe == 0:
        pen.ellipse(ax - 3.0, ay - 1.2, ax + 3.0, ay + 3.0, shoe)
    else:
        pen.ellipse(min(ax - 1.5 * toe, ax + 5.5 * toe), ay - 1.2, max(ax - 1.5 * toe, ax + 5.5 * toe), ay + 3.0, shoe)


def _skirt(pen: _Pen, o: Outfit, cx: float, half_top: float, half_bottom: float) -> None:
    pen.poly([(cx - half_top, 49), (cx + half_top, 49), (cx + half_bottom, 70), (cx - half_bottom, 70)], o.bottom_color)


def _arm(
    pen: _Pen,
    o: Outfit,
    shoulder: tuple[float, float],
    elbow: tuple[float, float],
    hand: tuple[float, float],
    width: float,
    factor: float,
) -> None:
    fore = o.top if o.long_sleeves else o.skin
    pen.limb(elbow, hand, width * 0.85, _shade(fore, factor))
    pen.limb(shoulder, elbow, width, _shade(o.top, factor))
    hx, hy = hand
    pen.ellipse(hx - 1.8, hy - 1.0, hx + 1.8, hy + 2.8, _shade(o.skin, factor))


def _draw_front_back(pen: _Pen, o: Outfit, facing: int, phase: float, walking: bool) -> None:
    cx = _CANVAS_W / 2
    b = o.build
    s = math.sin(phase) if walking else 0.0
    bob = 0.8 * abs(s)
    # legs: the swinging leg's foot lifts, the stance leg stays on the ground
    for side, lift in ((-1, max(0.0, s)), (1, max(0.0, -s))):
        hx = cx + side * 4.4 * b
        hip = (hx, 54 - bob)
        knee = (hx + side * 0.4, 74 - bob - 0.5 * lift * 4)
        ankle = (hx + side * 0.8, 95.5 - lift * 4)
        _leg(pen, o, hip, knee, ankle, 7.0 * b**0.7, 1.0, 0.0)
    if o.bottom == "skirt":
        _skirt(pen, o, cx, 9.0 * b, 13.5 * b)
    else:
        pen.poly(
            [(cx - 9.2 * b, 48), (cx + 9.2 * b, 48), (cx + 9.6 * b, 57 - bob), (cx - 9.6 * b, 57 - bob)], o.bottom_color
        )
    torso = [(cx - 11 * b, 22.5), (cx + 11 * b, 22.5), (cx + 9.2 * b, 50.5), (cx - 9.2 * b, 50.5)]
    # shoulder bag hangs on the person's right: image left in front view, right in back view
    bag_x_sign = (-1 if o.bag_side else 1) * (1 if facing == FRONT else -1)
    _torso_layer(pen, o, torso, facing, cx)
    if facing == FRONT:
        _logo(pen, o, cx)
    if o.bag == "backpack" and facing == FRONT:
        for side in (-1, 1):
            pen.limb((cx + side * 6.5 * b, 22.5), (cx + side * 6.0 * b, 40), 1.8, o.bag_color)
    if o.bag == "shoulder":
        pen.limb((cx - bag_x_sign * 8.5 * b, 23), (cx + bag_x_sign * 8.5 * b, 48), 1.6, _shade(o.bag_color, 0.8))
    # arms: swing shows as a small fore-aft foreshortening in these views
    for side, swing in ((-1, s), (1, -s)):
        sx = cx + side * 10.2 * b
        shoulder = (sx, 25)
        elbow = (sx + side * 1.6, 40 - 1.0 * swing)
        hand = (sx + side * 1.8, 55 - 3.0 * abs(swing))
        _arm(pen, o, shoulder, elbow, hand, 5.0 * b**0.6, 1.0)
        if o.bag == "handbag" and (side == -1) == bool(o.bag_side) ^ (facing == BACK):
            hx, hy = hand
            pen.limb((hx, hy), (hx, hy + 3.5), 0.9, _shade(o.bag_color, 0.7))
            pen.poly(
                [(hx - 4.0, hy + 3.5), (hx + 4.0, hy + 3.5), (hx + 4.5, hy + 11), (hx - 4.5, hy + 11)], o.bag_color
            )
    if o.bag == "shoulder":
        bx = cx + bag_x_sign * 10.5 * b
        pen.poly([(bx - 4.5, 45), (bx + 4.5, 45), (bx + 4.5, 55), (bx - 4.5, 55)], o.bag_color)
    _head_front_back(pen, o, cx, facing)
    if o.bag == "backpack" and facing == BACK:
        pen.poly([(cx - 8.5 * b, 24), (cx + 8.5 * b, 24), (cx + 8.0 * b, 46), (cx - 8.0 * b, 46)], o.bag_color)
        pen.poly(
            [(cx - 6.0 * b, 36), (cx + 6.0 * b, 36), (cx + 6.0 * b, 44), (cx - 6.0 * b, 44)], _shade(o.bag_color, 0.75)
        )


def _draw_side(pen: _Pen, o: Outfit, phase: float, walking: bool) -> None:
    """Profile facing +x (image right)."""
    cx = _CANVAS_W / 2 - 1
    b = o.build
    s, c = (math.sin(phase), math.cos(phase)) if walking else (0.0, 0.0)
    bob = 0.8 * abs(s)
    thigh, shin = 20.0, 21.0
    amp = math.radians(28)

    def leg_points(sign: float):
        a1 = amp * s * sign
        bend = math.radians(28) * max(0.0, c * sign) if walking else 0.0
        hip = (cx, 54 - bob)
        knee = (hip[0] + thigh * math.sin(a1), hip[1] + thigh * math.cos(a1))
        a2 = a1 - bend
        ankle = (knee[0] + shin * math.sin(a2), knee[1] + shin * math.cos(a2))
        return hip, knee, ankle

    def arm_points(sign: float):
        a1 = -math.radians(22) * s * sign
        shoulder = (cx, 25)
        elbow = (shoulder[0] + 15 * math.sin(a1), shoulder[1] + 15 * math.cos(a1))
        a2 = a1 + math.radians(12 + 10 * max(0.0, -s * sign))
        hand = (elbow[0] + 15 * math.sin(a2), elbow[1] + 15 * math.cos(a2))
        return shoulder, elbow, hand

    far_leg, near_leg = leg_points(-1), leg_points(1)
    far_arm, near_arm = arm_points(-1), arm_points(1)
    _arm(pen, o, *far_arm, 4.8 * b**0.6, 0.72)
    _leg(pen, o, *far_leg, 7.0 * b**0.7, 0.72, 1.0)
    _leg(pen, o, *near_leg, 7.0 * b**0.7, 1.0, 1.0)
    if o.bottom == "skirt":
        pen.poly(
            [(cx - 6.2 * b, 49), (cx + 6.2 * b, 49), (cx + 8.5 * b + 3 * s, 70), (cx - 8.5 * b + 3 * s, 70)],
            o.bottom_color,
        )
    else:
        pen.poly(
            [(cx - 6.0 * b, 48), (cx + 6.0 * b, 48), (cx + 6.0 * b, 57 - bob), (cx - 6.0 * b, 57 - bob)], o.bottom_color
        )
    if o.bag == "backpack":
        pen.poly(
            [(cx - 5.5 * b - 7.5, 24), (cx - 5.0 * b, 24), (cx - 5.0 * b, 46), (cx - 5.5 * b - 7.0, 46)], o.bag_color
        )
    torso = [(cx - 5.8 * b, 22.5), (cx + 5.2 * b, 22.5), (cx + 6.0 * b, 33), (cx + 5.4 * b, 50.5), (cx - 5.6 * b, 50.5)]
    _torso_layer(pen, o, torso, RIGHT, cx)
    if o.bag == "backpack":
        pen.limb((cx + 1.0, 23), (cx - 1.0 * b, 40), 1.6, o.bag_color)
    if o.bag == "shoulder":
        pen.limb((cx - 1, 23), (cx + 1.5, 45), 1.5, _shade(o.bag_color, 0.8))
        pen.poly([(cx - 4.5, 44), (cx + 5.5, 44), (cx + 5.5, 54), (cx - 4.5, 54)], o.bag_color)
    _arm(pen, o, *near_arm, 4.8 * b**0.6, 1.0)
    if o.bag == "handbag":
        hx, hy = near_arm[2]
        pen.limb((hx, hy), (hx, hy + 3.5), 0.9, _shade(o.bag_color, 0.7))
        pen.poly([(hx - 4.5, hy + 3.5), (hx + 4.5, hy + 3.5), (hx + 5.0, hy + 11), (hx - 5.0, hy + 11)], o.bag_color)
    _head_side(pen, o, cx)


def render_person(
    outfit: Outfit, facing: int, phase_index: int, height_px: int = REF_HEIGHT, style: str = "flat"
) -> Image.Image:
    """Draw one person.

    Args:
        outfit: the identity to draw.
        facing: :data:`FRONT`, :data:`BACK`, :data:`RIGHT` or :data:`LEFT`.
        phase_index: walking phase in ``[0, NUM_PHASES)``, or :data:`STAND`.
        height_px: body height in pixels (the canvas adds a margin above for hats).
        style: how the figure is drawn, one of :data:`STYLES`: ``"flat"`` (flat fills, a
            gentle light gradient), ``"shaded"`` (rounded volumes: the figure darkens towards
            its silhouette, light from one side) or ``"outlined"`` (ink lines around the
            silhouette and between garments, colours posterised, a stockier figure).

    Returns:
        An RGBA image whose bottom-centre pixel row is the ground line under the feet:
        the feet touch row ``round(100 * u) + _TOP * u`` where ``u = height_px / 100``.

    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    pen = _Pen(height_px)
    walking = phase_index != STAND
    phase = 2 * math.pi * (phase_index % NUM_PHASES) / NUM_PHASES
    if facing in (FRONT, BACK):
        _draw_front_back(pen, outfit, facing, phase, walking)
    else:
        _draw_side(pen, outfit, phase, walking)
    arr = np.asarray(pen.image).astype(np.float32)
    if style == "flat":
        arr = _soft_light(arr)
    elif style == "shaded":
        arr = _rounded_volumes(arr, pen.u)
    else:
        arr = _ink_outlines(arr, pen.u)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    if style == "outlined":  # a stockier figure, same ground point (the bottom centre)
        image = image.resize((round(image.width * 1.12), image.height), Image.Resampling.BILINEAR)
    if facing == LEFT:
        image = ImageOps.mirror(image)
    return image


def _soft_light(arr: np.ndarray) -> np.ndarray:
    """Light from above-left: a gentle horizontal and vertical gradient."""
    h, w = arr.shape[:2]
    gx = np.linspace(1.06, 0.86, w, dtype=np.float32)[None, :]
    gy = np.linspace(1.04, 0.92, h, dtype=np.float32)[:, None]
    arr[..., :3] *= (gx * gy)[..., None]
    return arr


def _rounded_volumes(arr: np.ndarray, u: float) -> np.ndarray:
    """Darken towards the silhouette (limbs and torso look round), light from the right."""
    inside = arr[..., 3] > 127
    depth = ndimage.distance_transform_edt(inside) / (2.5 * u)
    shade = 0.55 + 0.45 * np.clip(depth, 0, 1) ** 0.7
    w = arr.shape[1]
    side = np.linspace(0.9, 1.1, w, dtype=np.float32)[None, :]
    arr[..., :3] *= (shade * side)[..., None]
    return arr


def _ink_outlines(arr: np.ndarray, u: float) -> np.ndarray:
    """Posterised colours, dark lines between garments and around the silhouette."""
    rgb = np.round(arr[..., :3] / 40.0) * 40.0
    inside = arr[..., 3] > 127
    edge = np.zeros(inside.shape, bool)
    for axis in (0, 1):
        step = np.abs(np.diff(arr[..., :3], axis=axis)).sum(-1) > 60
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        edge |= np.pad(step, pad)
    edge = ndimage.binary_dilation(edge & inside, iterations=max(1, round(0.4 * u)))
    ring = ndimage.binary_dilation(inside, iterations=max(1, round(0.8 * u))) & ~inside
    ink = np.array([25, 22, 30], np.float32)
    rgb[edge] = ink
    rgb[ring] = ink
    alpha = np.where(inside | ring, 255.0, 0.0).astype(np.float32)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _crop_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


class SpriteBank:
    """Cached sprites of one outfit, scaled on demand.

    Args:
        outfit: the identity.
        ref_height: body height of the cached drawings (pixels).
        style: drawing style, one of :data:`STYLES` (see :func:`render_person`).

    """

    def __init__(self, outfit: Outfit, ref_height: int = REF_HEIGHT, style: str = "flat") -> None:
        self.outfit = outfit
        self.ref_height = ref_height
        self.style = style
        self._cache: dict[tuple[int, int], tuple[Image.Image, float, float]] = {}

    def _get(self, facing: int, phase_index: int) -> tuple[Image.Image, float, float]:
        key = (facing, phase_index)
        if key not in self._cache:
            img = render_person(self.outfit, facing, phase_index, self.ref_height, self.style)
            u = self.ref_height / 100.0
            foot_x, foot_y = img.width / 2.0, (100 + _TOP) * u  # every style keeps the bottom centre
            x0, y0, x1, y1 = _crop_box(np.asarray(img)[..., 3])
            img = img.crop((x0, y0, x1, y1))
            self._cache[key] = (img, foot_x - x0, foot_y - y0)
        return self._cache[key]

    def sprite(self, facing: int, phase_index: int, body_height: float) -> tuple[np.ndarray, float, float]:
        """Return a scaled sprite.

        Args:
            facing: one of the facing constants.
            phase_index: walking phase or :data:`STAND`.
            body_height: wanted body height in pixels (before the outfit's height factor).

        Returns:
            ``(rgba, foot_x, foot_y)``: a ``(h, w, 4)`` uint8 array and the position of the
            ground point under the feet inside it.

        """
        img, fx, fy = self._get(facing, phase_index)
        scale = body_height * self.outfit.height / self.ref_height
        w = max(1, round(img.width * scale))
        h = max(1, round(img.height * scale))
        small = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(small), fx * w / img.width, fy * h / img.height
