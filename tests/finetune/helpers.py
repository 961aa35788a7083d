"""Helpers of the fine-tuning tests."""

from __future__ import annotations

__all__ = ["NUM_TRAIN_IDENTITIES"]

# Rendered training identities: 2 cameras each, 1 to 3 images per camera (2 to 6 images).
NUM_TRAIN_IDENTITIES = 12
