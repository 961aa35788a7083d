"""Shards and checkpoints on object storage: a real S3 server (SeaweedFS) on loopback, no mocks."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

from isr_lightning.data.clip_index import BoxSelection, PairSampling
from isr_lightning.data.extract import extract_corpus
from isr_lightning.data.shards import SHARD_INDEX, ShardCrops, ShardIndex
from isr_lightning.data.sources import discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform
from isr_lightning.storage import FileCache, StorageError, read_bytes, write_bytes
from tests.data.test_shards import SIZE, STREAM
from tests.data.videohelpers import synthetic_frames, write_video
from tests.lightning_cli.helpers import TINY, command


@pytest.fixture(scope="module")
def s3_shards(corpus: Path, s3_store) -> str:
    url = "s3://isr/one-machine"
    summary = extract_corpus(str(corpus), url, size=SIZE, workers=2, chunk_bytes="16KB")  # ~14 chunks
    assert summary["status"] == "extracted" and summary["clips"] == 8
    return url


def _all_crops(root: str, cache_dir: Path | None = None) -> dict[tuple[int, int], torch.Tensor]:
    """Every stored crop of a shard folder, by (clip, frame)."""
    sampling = PairSampling(delta_frames=(1, 4))
    crops = ShardCrops(root, SIZE, BoxSelection(min_box_size=1), sampling, cache_dir=cache_dir)
    out = {}
    for clip in range(len(crops.shard_index.clips)):
        numbers, _, boxes = crops.shard_index.frames(clip)
        for f, fb in zip(numbers.tolist(), boxes, strict=True):
            [out[clip, f]] = crops.read(clip, [(f, np.arange(len(fb.boxes)))])
    return out


def test_shards_on_s3_train_exactly_like_local_ones(shards, s3_shards, tmp_path):
    local, remote = ShardIndex.read(shards), ShardIndex.read(s3_shards)
    assert remote.clips == local.clips
    for name, array in local.arrays.items():
        np.testing.assert_array_equal(remote.arrays[name], array)
    assert not Path("s3:").exists()
    transform = CropTransform(image_size=SIZE)
    want = VideoPairStream.from_shards(str(shards), transform, **STREAM)
    # a local copy of at most one chunk file: every read fetches (and evicts) again
    got = VideoPairStream.from_shards(s3_shards, transform, cache_dir=str(tmp_path), cache_gb=1e-9, **STREAM)
    for b in range(6):
        w, g = want.make_batch(0, 0, 1, 2, b), got.make_batch(0, 0, 1, 2, b)
        assert g.frame_ids.tolist() == w.frame_ids.tolist()
        torch.testing.assert_close(g.crops, w.crops, rtol=0, atol=0)
    cached = [p for p in tmp_path.rglob("chunk-*.bin")]
    assert len(cached) == 1  # bounded: the chunk read last


def test_a_folder_extracted_again_to_the_same_url_is_read_afresh(corpus, s3_store, tmp_path):
    # one clip, then the same clip, frames and boxes with other pixels: chunk files of the same sizes
    original, redrawn = tmp_path / "original", tmp_path / "redrawn"
    shutil.copytree(corpus / "cam0", original, ignore=shutil.ignore_patterns("clip[!0]*"))
    shutil.copytree(original, redrawn)
    write_video(redrawn / "clip0.mp4", synthetic_frames(24, 48, 64, seed=100))
    url, copies = "s3://isr/again", tmp_path / "copies"
    extract_corpus(str(original), url, size=SIZE)
    first = _all_crops(url, copies)  # fills this machine's local copy
    fsspec.filesystem("s3").rm("isr/again", recursive=True)
    extract_corpus(str(redrawn), url, size=SIZE)
    extract_corpus(str(redrawn), tmp_path / "local", size=SIZE)
    want, got = _all_crops(str(tmp_path / "local")), _all_crops(url, copies)
    assert got.keys() == want.keys() == first.keys()
    assert any(not torch.equal(first[key], crops) for key, crops in want.items())  # the pixels differ
    for key, crops in want.items():
        torch.testing.assert_close(got[key], crops, rtol=0, atol=0)
    assert len(list(copies.glob("*/*"))) == 1  # the first extraction's copy was deleted


def test_a_store_restarting_mid_epoch_delays_batches_and_changes_none(shards, s3_shards, s3_store, tmp_path):
    transform = CropTransform(image_size=SIZE)
    want = VideoPairStream.from_shards(str(shards), transform, **STREAM)
    got = VideoPairStream.from_shards(s3_shards, transform, cache_dir=str(tmp_path), cache_gb=1e-9, **STREAM)
    torch.testing.assert_close(got.make_batch(0, 0, 1, 2, 0).crops, want.make_batch(0, 0, 1, 2, 0).crops)
    s3_store.stop()  # down between two batches; the next chunk is not in the local copy
    restart = threading.Timer(3.0, s3_store.start)
    restart.start()
    t0 = time.monotonic()
    try:
        for b in range(1, 6):
            torch.testing.assert_close(got.make_batch(0, 0, 1, 2, b).crops, want.make_batch(0, 0, 1, 2, b).crops)
    finally:
        restart.join()
    assert time.monotonic() - t0 >= 3.0  # the batches waited for the store


def test_a_manifest_in_the_store_of_videos_in_the_store_gives_the_local_batches(corpus, s3_store):
    local = discover_clips(corpus)[:4]
    rows = ["video,detections,gt"]
    for clip in local:
        names = [Path(p).relative_to(corpus).as_posix() for p in (clip.source, clip.detections, clip.gt)]
        for path, name in zip((clip.source, clip.detections, clip.gt), names, strict=True):
            write_bytes(f"s3://isr/manifest/{name}", Path(path).read_bytes())
        rows.append(",".join(names))  # relative: resolved against the manifest's folder
    write_bytes("s3://isr/manifest/clips.csv", "\n".join(rows).encode())
    remote = discover_clips("s3://isr/manifest/clips.csv")
    assert [c.source for c in remote] == [f"s3://isr/manifest/cam{i % 2}/clip{i}.mp4" for i in (0, 2, 4, 6)]
    transform = CropTransform(image_size=SIZE)
    want, got = VideoPairStream(local, transform, **STREAM), VideoPairStream(remote, transform, **STREAM)
    for b in range(3):
        w, g = want.make_batch(0, 0, 1, 1, b), got.make_batch(0, 0, 1, 1, b)
        assert g.frame_ids.tolist() == w.frame_ids.tolist()
        torch.testing.assert_close(g.crops, w.crops, rtol=0, atol=0)


def _node(rank: int) -> list[str]:
    return ["--workers", "1", "--num_nodes", "2", "--node_rank", str(rank)]


def test_two_machines_extract_the_items_one_machine_extracts(corpus, s3_shards, s3_store):
    url = "s3://isr/two-machines"
    nodes = [
        subprocess.Popen(
            [*command("isr-lightning"), "extract", str(corpus), url, "--size", "[16,8]", *_node(rank)],
            env={**os.environ, **s3_store.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (1, 0)  # node 0 waits for node 1's part
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "this machine's part of 4 clips" in outputs[0][0] and "extracted 8 clips" in outputs[1][0]
    one, two = ShardIndex.read(s3_shards), ShardIndex.read(url)
    assert [c["chunks"] for c in two.clips] == ["chunks-0"] * 4 + ["chunks-1"] * 4
    assert [{**c, "chunks": None} for c in two.clips] == [{**c, "chunks": None} for c in one.clips]
    for name in ("frame_number", "box_start", "boxes", "scores", "ids"):
        np.testing.assert_array_equal(two.arrays[name], one.arrays[name])
    want, got = _all_crops(s3_shards), _all_crops(url)
    assert got.keys() == want.keys()
    for key, crops in want.items():
        torch.testing.assert_close(got[key], crops, rtol=0, atol=0)
    assert not fsspec.filesystem("s3").exists("isr/two-machines/parts/0.json")  # node 0 cleans up


def test_node_0_refuses_a_part_left_by_an_extraction_with_other_options(corpus, s3_store):
    url = "s3://isr/stale-part"
    stale = {"meta": {"size": [8, 4]}, "records": []}  # a part of an older run, at another crop size
    write_bytes(f"{url}/parts/1.json", json.dumps(stale).encode())
    with pytest.raises(ValueError, match=r"parts/1\.json was written by an extraction with other options"):
        extract_corpus(str(corpus), url, size=SIZE, num_nodes=2, node_rank=0, merge_timeout=60)
    assert not fsspec.filesystem("s3").exists(f"isr/stale-part/{SHARD_INDEX}")


def test_reads_retry_while_the_store_restarts_and_name_the_url_when_it_stays_down(s3_store):
    url = "s3://isr/restart/object.bin"
    write_bytes(url, b"payload")
    s3_store.stop()
    try:
        with pytest.raises(StorageError, match=r"s3://isr/restart/object\.bin"):
            read_bytes(url, retry_seconds=2)
        restart = threading.Timer(3.0, s3_store.start)
        restart.start()
        t0 = time.monotonic()
        assert read_bytes(url) == b"payload"  # retried until the server was back
        assert time.monotonic() - t0 >= 3.0
        restart.join()
    finally:
        if s3_store.process is None:
            s3_store.start()
    cache = FileCache("s3://isr/restart")
    with pytest.raises(FileNotFoundError):
        cache.path("missing.bin")  # not retried: it will not appear


@pytest.mark.slow  # ~40 s: extract, fit, resume and load, each a command
def test_extract_fit_and_resume_with_everything_in_the_store(run_cli, tiny_corpus, s3_store, tmp_path):
    shards, run = "s3://isr/cli/shards", "s3://isr/cli/run"
    result = run_cli("isr-lightning", "extract", str(tiny_corpus), shards, "--size", "[64,32]", "--fps", "6")
    assert "extracted 2 clips" in result.stdout and shards in result.stdout
    assert all(line.startswith("extract: ") for line in result.stderr.splitlines())  # progress only
    fit = ["fit", "--config", "cpu_demo", "--data.root", shards, "--trainer.default_root_dir", run, *TINY]
    first = run_cli("isr-lightning", *fit)
    assert f"checkpoint: {run}/checkpoints/last.ckpt" in first.stdout
    last = f"{run}/checkpoints/last.ckpt"
    resumed = run_cli("isr-lightning", *fit, "--trainer.max_steps=4", "--ckpt_path", last)
    assert f"checkpoint: {last}" in resumed.stdout
    assert not (tmp_path / "s3:").exists()  # nothing written under a folder named after the scheme
    checkpoint = torch.load(io.BytesIO(read_bytes(last)), weights_only=True)
    assert checkpoint["global_step"] == 4
    code = f"from isr_lightning import load_model; print(load_model({last!r}).hparams.embed_dim)"
    load = [sys.executable, "-c", code]
    assert subprocess.run(load, capture_output=True, text=True, check=True).stdout.strip() == "32"


def test_an_unreachable_store_is_one_line_naming_the_url(run_cli, tiny_corpus, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("ISR_LIGHTNING_RETRY_SECONDS", "1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries
    result = run_cli("isr-lightning", "extract", str(tiny_corpus), "s3://isr/nowhere", check=False)
    *retries, error = result.stderr.strip().splitlines()  # a warning per retry, then the error
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert error.startswith(f"isr-lightning extract: error: cannot read s3://isr/nowhere/{SHARD_INDEX}: ")
    assert all(line.startswith("reading s3://isr/nowhere/") for line in retries)


def test_missing_credentials_fail_at_once_naming_the_url(run_cli, tiny_corpus, s3_store, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    start = time.monotonic()
    result = run_cli("isr-lightning", "extract", str(tiny_corpus), "s3://isr/no-credentials", check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"isr-lightning extract: error: cannot read s3://isr/no-credentials/{SHARD_INDEX}: "
        "NoCredentialsError('Unable to locate credentials')"
    ]
    assert time.monotonic() - start < 60  # not retried for ISR_LIGHTNING_RETRY_SECONDS (120)
