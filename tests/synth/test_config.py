"""Corpus settings are checked when made."""

from __future__ import annotations

import pytest

from isr_lightning.synth import CorpusConfig


def test_config_validation():
    with pytest.raises(ValueError):
        CorpusConfig(width=101)
    with pytest.raises(ValueError):
        CorpusConfig(min_people=5, max_people=2)


def test_look_validation():
    with pytest.raises(ValueError, match="person_styles"):
        CorpusConfig(person_styles=("flat", "oil"))
    with pytest.raises(ValueError, match="person_styles"):
        CorpusConfig(person_styles=())
    with pytest.raises(ValueError, match="look_variety"):
        CorpusConfig(look_variety=1.5)
