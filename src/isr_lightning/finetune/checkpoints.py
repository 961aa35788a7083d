"""Telling a fine-tuned checkpoint from an ISR one, without importing the models."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["is_fine_tuned_checkpoint"]


def is_fine_tuned_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a Lightning checkpoint of a ``ReIDFineTuneModule`` (its weights have a BNNeck).

    Args:
        path: a ``.ckpt`` file.

    Returns:
        ``True`` when its ``state_dict`` has ``bnneck.*`` keys; ``False`` otherwise, also for a
        file that cannot be read (the loader of the other class then reports the problem).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unreadable file: not ours to diagnose
        return False
    state_dict = checkpoint.get("state_dict", {}) if isinstance(checkpoint, dict) else {}
    return any(str(key).startswith("bnneck.") for key in state_dict)
