"""Loader workers survive a process that used video decoders before (the demo's pattern).

A process that decoded frames (here: a first data module, then dropped) holds decord
readers whose decoding threads live in that process. Forked workers inherit them, and a
worker that garbage-collects one deadlocks in its destructor: with
``multiprocessing_context="fork"`` this script hangs. The loader's default must not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import gc, sys
from pathlib import Path
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.data.loader import VideoPairLoader
SIZE = CropTransform(image_size=(32, 16))

def used_once(root):
    data = VideoPairDataModule(root=root, transform=SIZE, batch_size=2, batches_per_epoch=2,
                               num_workers=0, sampling=PairSampling(delta_frames=(1, 3)))
    for _ in data.train_dataloader():
        pass

def collect(_):
    gc.collect()  # what a busy worker does sooner or later

if __name__ == "__main__":
    root = Path(sys.argv[1])
    gc.disable()  # the used module's readers stay as garbage until the workers start
    used_once(root)
    data = VideoPairDataModule(root=root, transform=SIZE, batch_size=2, batches_per_epoch=4,
                               num_workers=2, sampling=PairSampling(delta_frames=(1, 3)))
    data.setup("fit")
    loader = VideoPairLoader(data.stream, num_workers=2, worker_init_fn=collect)
    print(sum(1 for _ in loader), "batches")
"""


def test_workers_do_not_deadlock_on_inherited_decoders(corpus: Path, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(corpus)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("4 batches")


UNGUARDED = """
import os, sys
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
SIZE = CropTransform(image_size=(32, 16))

print("top level runs", flush=True)
data = VideoPairDataModule(root=sys.argv[1], transform=SIZE, batch_size=2, batches_per_epoch=2,
                           num_workers=1, sampling=PairSampling(delta_frames=(1, 3)))
print(sum(1 for _ in data.train_dataloader()), "batches")
"""


GUARDED = """
import os, sys
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
SIZE = CropTransform(image_size=(32, 16))

if __name__ == "__main__":
    print("top level runs", flush=True)
    data = VideoPairDataModule(root=sys.argv[1], transform=SIZE, batch_size=2, batches_per_epoch=2,
                               num_workers=1, sampling=PairSampling(delta_frames=(1, 3)))
    print(sum(1 for _ in data.train_dataloader()), "batches")
"""


def test_unguarded_script_is_stopped_before_workers_rerun_it(corpus: Path, tmp_path: Path) -> None:
    """Without the guard a forkserver worker would import the script and run it again."""
    script = tmp_path / "train.py"
    script.write_text(UNGUARDED)
    result = subprocess.run([sys.executable, str(script), str(corpus)], capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert result.stdout.count("top level runs") == 1  # no worker ran the script again
    last = result.stderr.strip().splitlines()[-1]
    assert "UnguardedEntryPointError" in last and f"{script}, line 9" in last
    assert 'if __name__ == "__main__":' in last and "docs/data.md" in last
    # The same lines under the guard run (the loader only refuses unguarded top-level calls).
    script.write_text(GUARDED)
    result = subprocess.run([sys.executable, str(script), str(corpus)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("2 batches")
