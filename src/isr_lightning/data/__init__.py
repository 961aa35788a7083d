"""Streaming video data: corpus discovery, decoding, person crops, frame pairs.

Public names are imported on first use (PEP 562), so that the MOT format
(:mod:`~isr_lightning.data.mot`) and box geometry (:mod:`~isr_lightning.data.boxes`), which the
synthetic world uses too, come without torch and Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isr_lightning._lazy import lazy_exports

_EXPORTS = {
    "FramePairSample": "collate",
    "collate_frame_pairs": "collate",
    "VideoPairDataModule": "datamodule",
    "FrameBoxes": "mot",
    "MalformedDetectionsError": "mot",
    "read_mot_file": "mot",
    "read_seqinfo": "mot",
    "write_mot_file": "mot",
    "VIDEO_EXTENSIONS": "sources",
    "Clip": "sources",
    "DataRootError": "sources",
    "discover_clips": "sources",
    "read_manifest": "sources",
    "SKIP_REASONS": "clip_index",
    "BoxSelection": "clip_index",
    "PairSampling": "clip_index",
    "CropSource": "crop_source",
    "VideoCrops": "crop_source",
    "extract_corpus": "extract",
    "CorruptShardError": "shards",
    "ShardCrops": "shards",
    "is_shard_folder": "shards",
    "VideoPairLoader": "loader",
    "VideoPairStream": "stream",
    "IMAGENET_MEAN": "transforms",
    "IMAGENET_STD": "transforms",
    "CropTransform": "transforms",
    "crop_boxes": "transforms",
    "DecordVideoReader": "video",
    "FrameReader": "video",
    "ImageFolderReader": "video",
    "PyAVVideoReader": "video",
    "UnreadableVideoError": "video",
    "open_reader": "video",
}

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SKIP_REASONS",
    "VIDEO_EXTENSIONS",
    "BoxSelection",
    "Clip",
    "CorruptShardError",
    "CropSource",
    "CropTransform",
    "DataRootError",
    "DecordVideoReader",
    "FrameBoxes",
    "FramePairSample",
    "FrameReader",
    "ImageFolderReader",
    "MalformedDetectionsError",
    "PairSampling",
    "PyAVVideoReader",
    "ShardCrops",
    "UnreadableVideoError",
    "VideoCrops",
    "VideoPairDataModule",
    "VideoPairLoader",
    "VideoPairStream",
    "collate_frame_pairs",
    "crop_boxes",
    "discover_clips",
    "extract_corpus",
    "is_shard_folder",
    "open_reader",
    "read_manifest",
    "read_mot_file",
    "read_seqinfo",
    "write_mot_file",
]

if TYPE_CHECKING:
    from isr_lightning.data.clip_index import SKIP_REASONS, BoxSelection, PairSampling
    from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
    from isr_lightning.data.crop_source import CropSource, VideoCrops
    from isr_lightning.data.datamodule import VideoPairDataModule
    from isr_lightning.data.extract import extract_corpus
    from isr_lightning.data.loader import VideoPairLoader
    from isr_lightning.data.mot import (
        FrameBoxes,
        MalformedDetectionsError,
        read_mot_file,
        read_seqinfo,
        write_mot_file,
    )
    from isr_lightning.data.shards import CorruptShardError, ShardCrops, is_shard_folder
    from isr_lightning.data.sources import VIDEO_EXTENSIONS, Clip, DataRootError, discover_clips, read_manifest
    from isr_lightning.data.stream import VideoPairStream
    from isr_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD, CropTransform, crop_boxes
    from isr_lightning.data.video import (
        DecordVideoReader,
        FrameReader,
        ImageFolderReader,
        PyAVVideoReader,
        UnreadableVideoError,
        open_reader,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
