"""Synthetic data: street videos for training and a cross-domain Market-1501 benchmark.

No real ReID data can be downloaded here, so the library renders its own world (see
``docs/synthetic_data.md``):

* :func:`generate_corpus` writes H.264 clips of people walking through street scenes,
  with MOT-format noisy detections (``<clip>.det.txt``) and ground truth
  (``<clip>.gt.txt``), for training from unlabeled video.
* :func:`generate_benchmark` writes a Market-1501-layout folder rendered in another visual
  domain, with identities never seen in training, for zero-shot evaluation.

Both are deterministic given a seed and reuse a complete cached output of the same config.
"""

from isr_lightning.synth.benchmark import (
    BenchmarkConfig,
    BenchmarkInfo,
    generate_benchmark,
)
from isr_lightning.synth.clip import ClipSimulator
from isr_lightning.synth.config import CorpusConfig, DetectorNoise
from isr_lightning.synth.identity import Outfit, sample_outfit
from isr_lightning.synth.render import SpriteBank, render_person
from isr_lightning.synth.video import CorpusInfo, generate_corpus, write_preview

__all__ = [
    "BenchmarkConfig",
    "BenchmarkInfo",
    "ClipSimulator",
    "CorpusConfig",
    "CorpusInfo",
    "DetectorNoise",
    "Outfit",
    "SpriteBank",
    "generate_benchmark",
    "generate_corpus",
    "render_person",
    "sample_outfit",
    "write_preview",
]
