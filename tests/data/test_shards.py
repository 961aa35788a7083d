"""Crop shards: ``isr-lightning extract`` writes LitData chunks, training reads them like videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from isr_lightning.data.clip_index import BoxSelection, PairSampling, SkipItem, read_clip_boxes
from isr_lightning.data.extract import extract_corpus, kept_frames
from isr_lightning.data.loader import VideoPairLoader
from isr_lightning.data.sharding import Shard
from isr_lightning.data.shards import CHUNKS_DIR, CorruptShardError, ShardCrops, ShardIndex, decode_crops, encode_crops
from isr_lightning.data.sources import discover_clips
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.data.transforms import CropTransform, crop_boxes, resize_crops
from tests.data.conftest import SHARD_SIZE
from tests.data.videohelpers import decode_reference
from tests.lightning_cli.helpers import TINY

SIZE = SHARD_SIZE
SMALL = CropTransform(image_size=SIZE)
STREAM = {
    "batch_size": 3,
    "batches_per_epoch": 6,
    "sampling": PairSampling(delta_frames=(1, 4)),
    "boxes": BoxSelection(min_box_size=2),
}


def _summary(batch):
    return (batch.clip_index.tolist(), batch.frame_ids.tolist())


def test_stored_crops_and_boxes_are_the_decoded_video_cut_and_resized(corpus, shards):
    from litdata import StreamingDataset

    items = StreamingDataset(input_dir=str(shards / CHUNKS_DIR))
    index = ShardIndex.read(shards)
    selection = BoxSelection(score_threshold=None, min_box_size=1)
    clips = discover_clips(corpus)
    assert [c.source for c in index.clip_list()] == [c.source for c in clips]
    seen = 0
    for i, clip in enumerate(clips):
        frames = decode_reference(Path(clip.source))  # PyAV, sequential: independent of the extraction
        height, width = frames.shape[1:3]
        want = read_clip_boxes(clip, width, height, len(frames), selection)
        numbers, item_numbers, boxes = index.frames(i)
        assert numbers.tolist() == sorted(f for f, fb in want.items() if len(fb))
        for f, k, stored in zip(numbers.tolist(), item_numbers.tolist(), boxes, strict=True):
            item = items[k]
            assert (item["clip"], item["frame"], item["width"], item["height"]) == (i, f, width, height)
            assert item["timestamp"] == pytest.approx((f - 1) / item["fps"])
            for got in (item, {"boxes": stored.boxes, "ids": stored.ids, "scores": stored.scores}):
                np.testing.assert_array_equal(got["boxes"], want[f].boxes)
                np.testing.assert_array_equal(got["ids"], want[f].ids)
                np.testing.assert_array_equal(got["scores"], want[f].scores)
            reference = resize_crops(crop_boxes(frames[f - 1], want[f].boxes), SIZE).numpy()
            np.testing.assert_array_equal(item["crops"], reference)
            seen += 1
    assert seen == len(items) == 8 * 24


def test_batches_from_shards_equal_batches_from_video(corpus, shards):
    video = VideoPairStream(discover_clips(corpus), SMALL, **STREAM)
    stored = VideoPairStream.from_shards(str(shards), SMALL, **STREAM)
    for b in range(6):
        want, got = video.make_batch(0, 0, 1, 2, b), stored.make_batch(0, 0, 1, 2, b)
        assert _summary(got) == _summary(want)
        for name in ("crops", "boxes", "track_ids", "pair_index", "frame_side"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=0, atol=0)


def test_other_training_sizes_resize_the_stored_crops_and_training_filters_apply(shards):
    sampling = PairSampling(delta_frames=(1, 4))
    strict = ShardCrops(str(shards), (8, 4), BoxSelection(score_threshold=0.95, min_box_size=2), sampling)
    assert strict.shard_index.size == SIZE
    with pytest.raises(SkipItem) as skipped:  # every score is 0.9
        strict.clip_index(0)
    assert skipped.value.reason == "too_few_people"
    crops = ShardCrops(str(shards), (8, 4), BoxSelection(min_box_size=14), sampling)
    full = ShardCrops(str(shards), SIZE, BoxSelection(min_box_size=1), sampling)
    frames, every = crops.clip_index(0).frames, full.clip_index(0).frames
    wide = {f: [k for k, box in enumerate(fb.boxes) if box[2] - box[0] >= 14] for f, fb in every.items()}
    assert {f: len(fb) for f, fb in frames.items()} == {f: len(k) for f, k in wide.items()}
    f = next(f for f, k in wide.items() if 0 < len(k) < len(every[f]))  # 12.8 px boxes snap to 13 or 14 px
    kept = wide[f]
    [small] = crops.read(0, [(f, np.arange(len(frames[f])))])
    [stored] = full.read(0, [(f, np.array(kept))])
    assert small.shape == (len(kept), 3, 8, 4)
    torch.testing.assert_close(small, resize_crops([c.permute(1, 2, 0).numpy() for c in stored], (8, 4)))


def test_jpeg_crops_decode_to_their_shape_close_to_the_originals():
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(16), indexing="ij")
    smooth = torch.stack([rows * 6, cols * 12, (rows + cols) * 4]).clamp(0, 255)
    crops = torch.stack([smooth, smooth.flip(1), 255 - smooth]).to(torch.uint8)  # (3, 3, 32, 16)
    for quality, bound in ((95, 3.0), (50, 8.0)):
        data = encode_crops(crops, quality)
        assert data.dtype == np.uint8 and data.ndim == 1 and data[:2].tolist() == [0xFF, 0xD8]  # a JPEG
        decoded = decode_crops(data, (32, 16))
        assert decoded.shape == (3, 3, 32, 16) and decoded.dtype == np.uint8
        error = np.abs(decoded.astype(np.float64) - crops.numpy()).mean(axis=(1, 2, 3))
        assert (error < bound).all(), (quality, error)  # each crop decodes near itself, not a neighbour
    with pytest.raises(ValueError, match="jpeg_quality"):
        extract_corpus("unused", "unused", jpeg_quality=0)


def test_jpeg_shards_are_smaller_and_train_like_the_raw_ones(corpus, tmp_path):
    size, options = (32, 16), {"batch_size": 3, "batches_per_epoch": 4, "sampling": STREAM["sampling"]}
    folders = {}
    for name, quality in (("raw", None), ("jpeg", 90)):
        folders[name] = tmp_path / name
        extract_corpus(str(corpus), folders[name], size=size, jpeg_quality=quality)
    assert ShardIndex.read(folders["jpeg"]).meta["jpeg_quality"] == 90
    chunk_bytes = {n: sum(p.stat().st_size for p in (f / CHUNKS_DIR).glob("*.bin")) for n, f in folders.items()}
    assert chunk_bytes["jpeg"] < chunk_bytes["raw"] / 3, chunk_bytes
    raw, jpeg = (
        VideoPairStream.from_shards(str(f), CropTransform(size, train=False), **options) for f in folders.values()
    )
    for b in range(4):
        want, got = raw.make_batch(0, 0, 1, 1, b), jpeg.make_batch(0, 0, 1, 1, b)
        assert _summary(got) == _summary(want)
        for name in ("boxes", "track_ids", "pair_index", "frame_side"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=0, atol=0)
        difference = (got.crops - want.crops).abs().mean().item()
        assert 0 < difference < 0.08, difference  # lossy, but by a few grey levels (normalised units)
    # a damaged JPEG (its start marker overwritten) is an error naming the chunk file
    chunk = next((folders["jpeg"] / CHUNKS_DIR).glob("chunk-*.bin"))
    data = chunk.read_bytes()
    chunk.write_bytes(data.replace(b"\xff\xd8\xff", b"\x00\x00\x00"))
    damaged = VideoPairStream.from_shards(str(folders["jpeg"]), CropTransform(size, train=False), **options)
    with pytest.raises(CorruptShardError, match=f"corrupt chunk file .*{chunk.name}: item .*cannot identify image"):
        damaged.make_batch(0, 0, 1, 1, 0)


def test_two_ranks_two_workers_read_disjoint_clips_with_equal_batch_counts(shards):
    per_rank = []
    options = {**STREAM, "batches_per_epoch": 5, "sampling": PairSampling(delta_frames=(1, 4), clips_per_batch=2)}
    for rank in range(2):
        stream = VideoPairStream.from_shards(str(shards), SMALL, **options)
        stream.rank, stream.world_size = rank, 2
        batches = list(VideoPairLoader(stream, num_workers=2))
        assert len(batches) == 5
        per_rank.append(batches)
    stream = VideoPairStream.from_shards(str(shards), SMALL, **options)
    pairs: dict[tuple[int, int], set] = {}
    for rank, batches in enumerate(per_rank):
        for b, batch in enumerate(batches):
            worker = b % 2
            windows = stream.worker_windows(0, Shard(rank, 2, worker, 2), b // 2 // 8)
            for clip, (_, u) in zip(batch.clip_index.tolist(), batch.frame_ids.tolist(), strict=True):
                assert any(w.clip == clip and w.start <= u < w.stop for w in windows)  # its own streams' windows
                pairs.setdefault((rank, worker), set()).add((clip, u))
    assert len(pairs) == 4
    for a in pairs:
        for b in pairs:
            assert a == b or pairs[a].isdisjoint(pairs[b])


def test_a_resumed_loader_continues_with_the_next_batches(shards):
    full = list(VideoPairLoader(VideoPairStream.from_shards(str(shards), SMALL, **{**STREAM, "batches_per_epoch": 7})))
    loader = VideoPairLoader(VideoPairStream.from_shards(str(shards), SMALL, **{**STREAM, "batches_per_epoch": 7}))
    head = []
    for batch in loader:
        head.append(batch)
        if len(head) == 3:
            break
    resumed = VideoPairLoader(VideoPairStream.from_shards(str(shards), SMALL, **{**STREAM, "batches_per_epoch": 7}))
    resumed.resume(loader.epoch, loader.batches_consumed)
    tail = list(resumed)
    assert len(tail) == 4
    for got, want in zip(head + tail, full, strict=True):
        assert _summary(got) == _summary(want)
        torch.testing.assert_close(got.crops, want.crops, rtol=0, atol=0)


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_corrupt_chunk_file_is_reported_by_name(shards, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(shards, copy)
    chunk = sorted((copy / CHUNKS_DIR).glob("chunk-*.bin"))[0]
    data = chunk.read_bytes()
    if damage == "truncated":
        chunk.write_bytes(data[: len(data) // 2])
    else:  # same size: the item table at the start of the chunk is garbage
        chunk.write_bytes(b"\xff" * 64 + data[64:])
    stream = VideoPairStream.from_shards(str(copy), SMALL, **STREAM)
    with pytest.raises(CorruptShardError, match=chunk.name):
        for b in range(6):
            stream.make_batch(0, 0, 1, 1, b)


def test_kept_frames_subsample_to_at_most_fps_per_second():
    frames = list(range(1, 26))
    assert kept_frames(frames, 25.0, None) == frames
    assert kept_frames(frames, 25.0, 5.0) == [1, 6, 11, 16, 21]
    assert kept_frames([2, 3, 6, 8], 25.0, 5.0) == [6]  # slot 0 starts at frame 1, which has no box
    assert kept_frames(frames, 12.0, 30.0) == frames


@pytest.mark.slow  # ~25 s: two commands, one of them a 2-step fit
def test_extract_command_then_fit_from_the_shards(run_cli, tiny_corpus, tmp_path):
    out = tmp_path / "shards"
    result = run_cli("isr-lightning", "extract", str(tiny_corpus), str(out), "--size", "[64,32]", "--fps", "6")
    assert "extracted 2 clips" in result.stdout and "skipped: none" in result.stdout
    assert ShardIndex.read(out).meta["fps_cap"] == 6.0
    again = run_cli("isr-lightning", "extract", str(tiny_corpus), str(out))
    assert "is complete" in again.stdout
    run_cli("isr-lightning", "fit", "--config", "cpu_demo", "--data.root", str(out), *TINY)


def test_extract_errors_and_an_interrupted_run_restarts_to_the_same_bytes(run_cli, corpus, shards, tmp_path):
    missing = run_cli("isr-lightning", "extract", str(tmp_path / "nope"), str(tmp_path / "o"), check=False)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "not found" in missing.stderr
    # a store whose fsspec package is missing (gcsfs): one line naming the URL, never a local folder "gs:"
    remote = run_cli("isr-lightning", "extract", str(corpus), "gs://bucket/shards", check=False)
    assert remote.returncode == 1 and len(remote.stderr.strip().splitlines()) == 1
    assert "cannot open gs://bucket/shards/isr-crops.json" in remote.stderr and "gcsfs" in remote.stderr
    assert not (tmp_path / "gs:").exists()
    (tmp_path / "file").write_text("")
    unwritable = run_cli("isr-lightning", "extract", str(corpus), str(tmp_path / "file" / "out"), check=False)
    assert unwritable.returncode == 1 and unwritable.stderr.startswith("isr-lightning extract: error: cannot write to")
    assert len(unwritable.stderr.strip().splitlines()) == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    busy = run_cli("isr-lightning", "extract", str(corpus), str(other), check=False)
    assert busy.returncode == 1 and "not empty" in busy.stderr and (other / "notes.txt").exists()
    interrupted = tmp_path / "interrupted"
    (interrupted / ".extract").mkdir(parents=True)
    (interrupted / CHUNKS_DIR).mkdir()
    (interrupted / CHUNKS_DIR / "chunk-0-0.bin").write_bytes(b"half")
    summary = extract_corpus(str(corpus), interrupted, size=SIZE, workers=2)
    assert summary["status"] == "extracted" and not (interrupted / ".extract").exists()
    files = sorted(p.relative_to(shards) for p in shards.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(interrupted) for p in interrupted.rglob("*") if p.is_file())
    for name in files:  # deterministic: the same bytes as the fixture's extraction
        if name != Path(CHUNKS_DIR, "index.json"):  # LitData writes its updated_at time there
            assert (shards / name).read_bytes() == (interrupted / name).read_bytes(), name


def test_bad_clips_are_skipped_and_counted_as_training_from_video_counts_them(bad_corpus, tmp_path):
    from tests.data.test_bad_inputs import EXPECTED

    summary = extract_corpus(str(bad_corpus), tmp_path / "bad", size=SIZE)
    # decided at extraction; clip_too_short and too_few_people depend on training's options
    assert summary["skipped"] == {"unreadable_video": 3, "missing_detections": 1, "malformed_detections": 1}
    options = {
        "batch_size": 4,
        "batches_per_epoch": 5,
        "sampling": PairSampling(delta_frames=(5, 8)),
        "boxes": BoxSelection(min_box_size=2),
    }
    stored = VideoPairStream.from_shards(str(tmp_path / "bad"), SMALL, **options)
    reasons = {}
    for i, clip in enumerate(stored.clips):
        try:
            stored.crops.clip_index(i)
        except SkipItem as err:
            reasons[Path(clip.source).stem] = err.reason
    assert reasons == EXPECTED
    # decord refuses the truncated clips whole, as extraction does; PyAV (the default) would train on
    # the decodable half of truncated_data, which extraction drops with the clip
    video = VideoPairStream(discover_clips(bad_corpus), SMALL, video_backend="decord", **options)
    for b in range(5):
        want, got = video.make_batch(0, 0, 1, 1, b), stored.make_batch(0, 0, 1, 1, b)
        assert got.skipped == want.skipped and _summary(got) == _summary(want)


def test_the_datamodule_recognises_a_shard_folder(shards, corpus):
    from isr_lightning.data import VideoPairDataModule

    options = {"transform": SMALL, "num_workers": 0, **STREAM}
    stored, video = VideoPairDataModule(root=str(shards), **options), VideoPairDataModule(root=str(corpus), **options)
    stored.setup("fit")
    video.setup("fit")
    assert isinstance(stored.stream.crops, ShardCrops) and not isinstance(video.stream.crops, ShardCrops)
    assert [c.source for c in stored.clips] == [c.source for c in video.clips]
    got, want = next(iter(stored.train_dataloader())), next(iter(video.train_dataloader()))
    assert _summary(got) == _summary(want)
    torch.testing.assert_close(got.crops, want.crops, rtol=0, atol=0)


def test_extract_detects_clips_without_boxes_in_the_same_decode(tmp_path):
    # the reference: `isr-lightning detect` writes sidecars, then extraction reads them
    from isr_lightning.data.commands import detect
    from isr_lightning.data.detectors import BackgroundSubtractionDetector
    from tests.data.test_detectors import _scene
    from tests.data.videohelpers import write_video

    raw = tmp_path / "raw"
    raw.mkdir()
    colours = ((230, 230, 230), (20, 20, 200))
    for i in range(2):
        frames, _ = _scene([(10 + 20 * i, 20, 16, 60, colours, 4), (210, 30, 18, 60, colours, -4)], num_frames=40)
        write_video(raw / f"cam{i}.mp4", frames)
    detected = tmp_path / "detected"
    shutil.copytree(raw, detected)
    detect(detected, detector=BackgroundSubtractionDetector(), chunk=32)
    extract_corpus(str(detected), tmp_path / "two_passes", size=SIZE, chunk=32)

    detector = BackgroundSubtractionDetector()
    summary = extract_corpus(str(raw), tmp_path / "one_pass", size=SIZE, chunk=32, detector=detector)
    assert summary["decoded"] == 2 * 40  # every frame of each video decoded once, for boxes and crops
    assert summary["skipped"] == {} and summary["frames"] > 60
    one, two = ShardIndex.read(tmp_path / "one_pass"), ShardIndex.read(tmp_path / "two_passes")
    for name in ("frame_number", "box_start", "boxes", "scores"):
        np.testing.assert_allclose(one.arrays[name], two.arrays[name], rtol=0, atol=0.01, err_msg=name)
    assert one.meta["detector"] == "BackgroundSubtractionDetector"
