import json
from pathlib import Path

import pytest

from isr_lightning.data.sources import discover_clips
from tests.data.videohelpers import make_clip


def _mot_seq(folder: Path, name: str) -> None:
    (folder / name / "img1").mkdir(parents=True)
    (folder / name / "det").mkdir()
    (folder / name / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=14\nseqLength=3\nimWidth=64\nimHeight=48\nimExt=.jpg\n"
    )


def test_folder_of_videos_with_sidecars(tmp_path):
    make_clip(tmp_path / "a", "x", num_frames=4)
    make_clip(tmp_path / "b", "y", num_frames=4, gt=True)
    (tmp_path / "b" / "y.txt").rename(tmp_path / "b" / "y.det.txt")
    clips = discover_clips(tmp_path)
    assert [c.clip_id for c in clips] == ["a/x", "b/y"]
    assert clips[0].detections == str(tmp_path / "a" / "x.txt") and clips[0].gt is None
    assert clips[1].detections == str(tmp_path / "b" / "y.det.txt")
    assert clips[1].gt == str(tmp_path / "b" / "y.gt.txt")
    assert discover_clips(tmp_path, use_gt=False)[1].gt is None


def test_mot_sequence_folders(tmp_path):
    _mot_seq(tmp_path, "S1")
    clips = discover_clips(tmp_path)
    assert len(clips) == 1 and clips[0].kind == "images"
    assert clips[0].fps == 14 and clips[0].num_frames == 3
    assert clips[0].detections == str(tmp_path / "S1" / "det" / "det.txt")


def test_manifest_csv_and_jsonl(tmp_path):
    make_clip(tmp_path / "v", "x", num_frames=4)
    (tmp_path / "m.csv").write_text("video,detections\nv/x.mp4,v/x.txt\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": str(tmp_path / "v" / "x.mp4"), "clip_id": "c"}) + "\n")
    csv_clips = discover_clips(tmp_path / "m.csv")
    assert csv_clips[0].source == str(tmp_path / "v" / "x.mp4")
    assert csv_clips[0].detections == str(tmp_path / "v" / "x.txt")
    js = discover_clips(str(tmp_path / "m.jsonl"))
    assert js[0].clip_id == "c" and js[0].detections == str(tmp_path / "v" / "x.txt")


def test_setup_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        discover_clips(tmp_path / "missing_dir")
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        discover_clips(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        discover_clips(tmp_path / "empty")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl"):
        discover_clips(tmp_path / "bad.jsonl")
    # a folder of videos on object storage is refused by name, not read as the local path "s3:/bucket/videos"
    with pytest.raises(ValueError, match=r"s3://bucket/videos is a URL, which is read only as a shard folder"):
        discover_clips("s3://bucket/videos")
