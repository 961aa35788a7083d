"""What a synthetic training corpus renders: :class:`CorpusConfig` and its detector noise."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from isr_lightning.synth.render import STYLES

__all__ = ["CORPUS_FORMAT", "CorpusConfig", "DetectorNoise"]

# bumped whenever the generator renders different clips from the same config: caches made by
# another version are regenerated
CORPUS_FORMAT = "isr-lightning synthetic corpus v3"


@dataclass(frozen=True)
class DetectorNoise:
    """How the simulated detector departs from the ground truth.

    Attributes:
        miss_rate: base probability of missing a fully visible, large person.
        occlusion_miss: extra miss probability at zero visibility (scaled by
            ``(1 - visibility) ** 2``); people below 25 % visibility are missed at least
            half of the time.
        small_height: people shorter than this (pixels) are missed more often.
        small_miss: extra miss probability for a person of zero height (linear ramp).
        jitter: standard deviation of the box centre shift, as a fraction of box width and
            height.
        scale_jitter: standard deviation of the log box width and height.
        fp_per_frame: mean number of false positives (background patches of person size).
        merge_prob: probability that two detected people whose boxes overlap with
            IoU >= ``merge_iou`` come out as one box around both.
        merge_iou: overlap that makes a merge possible.

    """

    miss_rate: float = 0.04
    occlusion_miss: float = 0.6
    small_height: float = 40.0
    small_miss: float = 0.3
    jitter: float = 0.05
    scale_jitter: float = 0.06
    fp_per_frame: float = 0.35
    merge_prob: float = 0.5
    merge_iou: float = 0.2


@dataclass(frozen=True)
class CorpusConfig:
    """What :func:`generate_corpus` renders.

    Attributes:
        num_clips: number of clips.
        seconds: clip duration.
        fps: frame rate.
        width: frame width (even).
        height: frame height (even).
        min_people: fewest people per clip.
        max_people: most people per clip.
        seed: master seed.
        crf: libx264 constant rate factor (quality; 23 is the x264 default).
        detector: detection noise model.
        person_styles: drawing styles of people (:data:`~isr_lightning.synth.render.STYLES`);
            each clip draws one.
        look_variety: how much the look varies from clip to clip, 0 to 1: camera colour
            cast, tone curve, saturation, blur and noise, and the camera's zoom (people's
            size). 0 (default) gives every clip a mild street camera: ISR's positives never
            cross cameras, so a clip's camera teaches no invariance, and at the demo's budget
            variety 1 lowered every benchmark (docs/benchmarks.md).

    """

    num_clips: int = 40
    seconds: float = 10.0
    fps: int = 12
    width: int = 640
    height: int = 360
    min_people: int = 4
    max_people: int = 9
    seed: int = 0
    crf: int = 23
    detector: DetectorNoise = field(default_factory=DetectorNoise)
    person_styles: tuple[str, ...] = ("flat", "shaded")
    look_variety: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "person_styles", tuple(self.person_styles))
        if not self.person_styles or any(style not in STYLES for style in self.person_styles):
            raise ValueError(f"person_styles must be a non-empty subset of {STYLES}, got {self.person_styles}")
        if not 0.0 <= self.look_variety <= 1.0:
            raise ValueError(f"look_variety must be in [0, 1], got {self.look_variety}")
        if self.num_clips < 1:
            raise ValueError("num_clips must be >= 1")
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 64:
            raise ValueError("width and height must be even and at least 64")
        if not 1 <= self.min_people <= self.max_people:
            raise ValueError("need 1 <= min_people <= max_people")
        if self.fps < 1 or self.seconds <= 0:
            raise ValueError("fps must be >= 1 and seconds > 0")

    @property
    def num_frames(self) -> int:
        """Frames per clip."""
        return max(2, round(self.seconds * self.fps))

    def to_dict(self) -> dict:
        """JSON-serialisable form (equal to itself after a JSON round trip)."""
        d = asdict(self)
        d["person_styles"] = list(self.person_styles)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CorpusConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["detector"] = DetectorNoise(**d.get("detector", {}))
        return cls(**d)
