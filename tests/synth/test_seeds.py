"""The synthetic world's random streams: independent per key tuple, and pinned."""

from __future__ import annotations

import numpy as np

from isr_lightning.synth.seeds import BENCH_TAG, CORPUS_TAG, derive_rng


def test_same_keys_same_stream_other_keys_other_stream() -> None:
    a = derive_rng(3, CORPUS_TAG, 0, 1, 2).random(8)
    np.testing.assert_array_equal(a, derive_rng(3, CORPUS_TAG, 0, 1, 2).random(8))
    np.testing.assert_array_equal(a, derive_rng(np.int64(3), np.int64(CORPUS_TAG), 0, 1, np.int64(2)).random(8))
    for other in [(4, CORPUS_TAG, 0, 1, 2), (3, BENCH_TAG, 0, 1, 2), (3, CORPUS_TAG, 0, 2, 1), (3, CORPUS_TAG, 0, 1)]:
        assert not np.array_equal(a, derive_rng(*other).random(8)), other


def test_streams_are_pinned() -> None:
    """The generated corpus and benchmarks depend on these numbers (taken from the generator of
    corpus v3 and benchmark v3): a change needs new CORPUS_FORMAT and BENCHMARK_FORMAT versions."""
    assert CORPUS_TAG == 0xA11CE and BENCH_TAG == 0xB3AC4
    reference = np.random.default_rng(np.random.SeedSequence([7, CORPUS_TAG, 0, 1, 4])).random(4)
    np.testing.assert_array_equal(derive_rng(7, CORPUS_TAG, 0, 1, 4).random(4), reference)
    assert derive_rng(0, CORPUS_TAG, 3, 1).integers(0, 2**62, 2).tolist() == [898217864946695438, 1619715845824985823]
    assert derive_rng(1, BENCH_TAG, 3).integers(0, 2**62).item() == 3883692826466360807
