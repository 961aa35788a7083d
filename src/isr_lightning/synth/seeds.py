"""Random streams of the synthetic world: one generator of its own per ``(seed, keys)``."""

from __future__ import annotations

import numpy as np

__all__ = ["BENCH_TAG", "CORPUS_TAG", "derive_rng"]

CORPUS_TAG = 0xA11CE
"""Seed-space tag of the training world (first key of every corpus stream)."""
BENCH_TAG = 0xB3AC4
"""Seed-space tag of the benchmark world, disjoint from the corpus."""


def derive_rng(seed: int, *keys: int) -> np.random.Generator:
    """The random generator of ``(seed, *keys)``.

    Streams of different key tuples are independent (one NumPy ``SeedSequence`` over the
    whole tuple), so every part of the world (a clip, a person, a camera) draws from a stream
    of its own and can be rendered alone and in any order. By convention the first key is the
    world's tag, :data:`CORPUS_TAG` or :data:`BENCH_TAG`, and the next ones say what is drawn.

    Args:
        seed: master seed.
        *keys: non-negative integers that name the stream.

    Returns:
        A new ``numpy.random.Generator``.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]))
