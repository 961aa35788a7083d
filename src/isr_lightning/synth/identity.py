"""Persistent identities of the synthetic world: body shape and outfit.

Colours come from one small shared palette (:data:`PALETTE`), so a colour alone never
identifies a person: identities differ by the *combination* of garments, patterns,
accessories and body shape. Some attributes are visible from one side only (a logo or an
open jacket from the front, a backpack from behind), which is what makes two frames of the
same person look different when the person turns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "BAGS",
    "BOTTOMS",
    "HAIR_STYLES",
    "HATS",
    "PALETTE",
    "PATTERNS",
    "Outfit",
    "sample_outfit",
]

Color = tuple[int, int, int]

# Shared clothing palette: 12 colours, so many people share each colour.
PALETTE: dict[str, Color] = {
    "black": (28, 28, 32),
    "white": (225, 225, 220),
    "grey": (128, 128, 132),
    "navy": (35, 45, 95),
    "blue": (50, 100, 185),
    "red": (175, 40, 40),
    "green": (45, 120, 60),
    "yellow": (215, 185, 50),
    "beige": (195, 170, 130),
    "brown": (110, 70, 40),
    "pink": (215, 130, 160),
    "olive": (105, 110, 55),
}
SKIN_TONES: tuple[Color, ...] = (
    (240, 205, 175),
    (225, 180, 140),
    (190, 140, 100),
    (145, 100, 70),
    (95, 65, 45),
)
HAIR_COLORS: tuple[Color, ...] = (
    (20, 18, 16),
    (70, 45, 25),
    (130, 90, 50),
    (200, 170, 110),
    (150, 150, 150),
    (120, 40, 25),
)
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "block", "dots")
BOTTOMS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder", "handbag")
HATS = ("none", "cap", "beanie")
HAIR_STYLES = ("short", "long", "bun", "bald")
LOGOS = ("none", "circle", "square", "bars", "triangle")


@dataclass(frozen=True)
class Outfit:
    """Everything that makes one identity look like itself.

    Attributes:
        height: body height factor (about 0.88 to 1.12; scales the rendered height).
        build: width factor of torso, hips and limbs (about 0.8 to 1.3).
        skin: skin RGB.
        hair: hair RGB.
        hair_style: one of :data:`HAIR_STYLES`.
        hat: one of :data:`HATS`.
        hat_color: hat RGB.
        top: top (shirt or jacket) RGB.
        top_pattern: one of :data:`PATTERNS`.
        pattern_color: second colour of the pattern RGB.
        long_sleeves: whether the sleeves cover the forearms.
        open_jacket: front shows an inner shirt of ``inner_color`` (the back does not).
        inner_color: colour of the inner shirt RGB.
        logo: front-only chest print, one of ``LOGOS``.
        logo_color: logo RGB.
        bottom: one of :data:`BOTTOMS`.
        bottom_color: trousers/shorts/skirt RGB.
        shoes: shoe RGB.
        bag: one of :data:`BAGS`.
        bag_color: bag RGB.
        bag_side: ``1`` when a shoulder bag or handbag hangs on the person's right.

    """

    height: float
    build: float
    skin: Color
    hair: Color
    hair_style: str
    hat: str
    hat_color: Color
    top: Color
    top_pattern: str
    pattern_color: Color
    long_sleeves: bool
    open_jacket: bool
    inner_color: Color
    logo: str
    logo_color: Color
    bottom: str
    bottom_color: Color
    shoes: Color
    bag: str
    bag_color: Color
    bag_side: int

    def to_dict(self) -> dict:
        """Return the outfit as a JSON-serialisable dict."""
        return asdict(self)


def _pick(rng: np.random.Generator, options: tuple | list, p: list[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]


def _color(rng: np.random.Generator, exclude: tuple[Color, ...] = ()) -> Color:
    names = [n for n, c in PALETTE.items() if c not in exclude]
    return PALETTE[names[int(rng.integers(len(names)))]]


def sample_outfit(rng: np.random.Generator) -> Outfit:
    """Draw one identity.

    Args:
        rng: the generator to draw from (the caller derives it from its seed).

    Returns:
        A new :class:`Outfit`.

    """
    top = _color(rng)
    bottom_kind = _pick(rng, BOTTOMS, [0.65, 0.15, 0.2])
    hair_style = _pick(rng, HAIR_STYLES, [0.4, 0.3, 0.15, 0.15])
    open_jacket = bool(rng.random() < 0.3)
    return Outfit(
        height=float(rng.uniform(0.88, 1.12)),
        build=float(rng.uniform(0.8, 1.3)),
        skin=_pick(rng, SKIN_TONES),
        hair=_pick(rng, HAIR_COLORS),
        hair_style=hair_style,
        hat=_pick(rng, HATS, [0.7, 0.15, 0.15]),
        hat_color=_color(rng),
        top=top,
        top_pattern=_pick(rng, PATTERNS, [0.4, 0.15, 0.1, 0.1, 0.15, 0.1]),
        pattern_color=_color(rng, exclude=(top,)),
        long_sleeves=bool(rng.random() < 0.55),
        open_jacket=open_jacket,
        inner_color=_color(rng, exclude=(top,)),
        logo="none" if open_jacket else _pick(rng, LOGOS, [0.5, 0.15, 0.1, 0.15, 0.1]),
        logo_color=_color(rng, exclude=(top,)),
        bottom=bottom_kind,
        bottom_color=_color(rng),
        shoes=_pick(
            rng,
            (PALETTE["black"], PALETTE["white"], PALETTE["brown"], PALETTE["grey"], PALETTE["red"], PALETTE["blue"]),
        ),
        bag=_pick(rng, BAGS, [0.4, 0.3, 0.15, 0.15]),
        bag_color=_color(rng),
        bag_side=int(rng.integers(2)),
    )
