"""Two nodes x one process on loopback (gloo), training from shards on a real S3 server.

Each node is its own ``python -m tests.multinode_fit`` process with Lightning's ``MASTER_ADDR``,
``MASTER_PORT`` and ``NODE_RANK``, exactly as two machines would start it.
"""

from __future__ import annotations

import collections
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
import torch

from isr_lightning.data.extract import extract_corpus
from isr_lightning.storage import read_bytes
from isr_lightning.testing import concat_batches
from tests.data.videohelpers import make_clip
from tests.multinode_fit import batch_loss, fixed_batch, tiny_model

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCHES_PER_EPOCH = 200, 50
PAIRS_PER_VISIT = 8  # PairSampling's default, which tests.multinode_fit keeps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def uneven_shards(s3_store, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Six clips of 24 to 240 frames: the nodes' shares of frames differ."""
    root = tmp_path_factory.mktemp("uneven")
    for i, frames in enumerate([240, 24, 120, 24, 240, 48]):
        make_clip(root, f"clip{i}", seed=i, gt=True, num_frames=frames)
    url = "s3://isr/uneven"
    extract_corpus(str(root), url, size=(32, 16))
    return url


def _launch(
    shards: str, run: str, out: Path, *extra: str, port: int, env: dict, steps: int = STEPS
) -> list[subprocess.Popen]:
    nodes = []
    for rank in range(2):
        node_env = {**os.environ, **env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(rank)}
        args = [sys.executable, "-m", "tests.multinode_fit", shards, run, str(out), "--steps", str(steps)]
        args += ["--batches_per_epoch", str(BATCHES_PER_EPOCH), *extra]
        log = open(out.parent / f"{out.name}-node{rank}.log", "w")  # noqa: SIM115 (closed with the process)
        nodes.append(subprocess.Popen(args, cwd=REPO, env=node_env, stdout=log, stderr=subprocess.STDOUT))
    return nodes


def _log(out: Path, rank: int) -> str:
    return (out.parent / f"{out.name}-node{rank}.log").read_text()


@pytest.mark.slow  # ~60 s: two nodes, 200 steps
def test_two_nodes_train_from_s3_with_disjoint_frames_equal_batches_and_the_single_process_loss(
    uneven_shards, s3_store, tmp_path
):
    out = tmp_path / "out"
    nodes = _launch(uneven_shards, "s3://isr/two-nodes", out, port=_free_port(), env=s3_store.env)
    assert [node.wait(timeout=400) for node in nodes] == [0, 0], _log(out, 0)[-3000:] + _log(out, 1)[-3000:]
    results = [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert [r["step"] for r in results] == [STEPS, STEPS]
    assert [len(r["batches"]) for r in results] == [STEPS, STEPS]  # equal counts on uneven data: no hang
    sampled = [collections.defaultdict(list) for _ in results]  # per node: epoch -> (clip, later frame)
    for node, r in zip(sampled, results, strict=True):
        for epoch, clips, later in r["batches"]:
            node[epoch] += list(zip(clips, later, strict=True))
    assert len(sampled[0]) == len(sampled[1]) == STEPS // BATCHES_PER_EPOCH
    for epoch in sampled[0]:
        assert not set(sampled[0][epoch]) & set(sampled[1][epoch])  # no frame on both nodes in an epoch
        for node in sampled:
            counts = collections.Counter(node[epoch])
            # on one node a frame comes twice only when its window has fewer pairs than the visit
            # deals: a clip's first window (frame 1 has no earlier partner); every clip has 8k frames
            assert all(f <= PAIRS_PER_VISIT for (_, f), n in counts.items() if n > 1)
            assert max(counts.values()) <= 2
    model = tiny_model()
    model.load_state_dict(results[0]["state"])
    single = batch_loss(model, concat_batches([fixed_batch(0), fixed_batch(1)]))
    assert (results[0]["loss"] + results[1]["loss"]).item() / 2 == pytest.approx(single.item(), rel=1e-5)


@pytest.mark.slow  # ~70 s: a run killed on one node, then both restarted
def test_a_killed_node_stops_the_other_and_both_resume_from_the_store(uneven_shards, s3_store, tmp_path):
    run, timeout_s, steps = "s3://isr/killed", 30, 60
    last = f"{run}/checkpoints/last.ckpt"
    out = tmp_path / "first"
    nodes = _launch(
        uneven_shards, run, out, "--timeout_s", str(timeout_s), port=_free_port(), env=s3_store.env, steps=steps
    )
    store = fsspec.filesystem("s3")
    deadline = time.monotonic() + 300
    while not store.exists(last.removeprefix("s3://")):  # the first checkpoint (step 10)
        assert time.monotonic() < deadline and nodes[0].poll() is None, _log(out, 0)[-3000:]
        time.sleep(1)
        store.invalidate_cache()
    nodes[1].kill()
    killed = time.monotonic()
    code = nodes[0].wait(timeout=300)
    stopped_after = time.monotonic() - killed
    assert code != 0 and stopped_after < timeout_s + 30, (code, stopped_after)
    saved = torch.load(io.BytesIO(read_bytes(last)), weights_only=False)["global_step"]
    assert 10 <= saved < steps
    again = tmp_path / "again"
    nodes = _launch(uneven_shards, run, again, "--resume", port=_free_port(), env=s3_store.env, steps=steps)
    assert [node.wait(timeout=400) for node in nodes] == [0, 0], _log(again, 0)[-3000:]
    results = [torch.load(again / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert [r["step"] for r in results] == [steps, steps]
    assert [len(r["batches"]) for r in results] == [steps - saved] * 2  # resumed after the saved step
