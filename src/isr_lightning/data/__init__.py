"""Streaming video data: corpus discovery, decoding, person crops, frame pairs."""

from isr_lightning.data.collate import FramePairSample, collate_frame_pairs
from isr_lightning.data.datamodule import VideoPairDataModule
from isr_lightning.data.mot import (
    FrameBoxes,
    MalformedDetectionsError,
    read_mot_file,
    read_seqinfo,
    write_mot_file,
)
from isr_lightning.data.sources import VIDEO_EXTENSIONS, Clip, DataRootError, discover_clips, read_manifest
from isr_lightning.data.stream import SKIP_REASONS, VideoPairLoader, VideoPairStream
from isr_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD, CropTransform, crop_boxes
from isr_lightning.data.video import (
    DecordVideoReader,
    FrameReader,
    ImageFolderReader,
    PyAVVideoReader,
    UnreadableVideoError,
    open_reader,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SKIP_REASONS",
    "VIDEO_EXTENSIONS",
    "Clip",
    "CropTransform",
    "DataRootError",
    "DecordVideoReader",
    "FrameBoxes",
    "FramePairSample",
    "FrameReader",
    "ImageFolderReader",
    "MalformedDetectionsError",
    "PyAVVideoReader",
    "UnreadableVideoError",
    "VideoPairDataModule",
    "VideoPairLoader",
    "VideoPairStream",
    "collate_frame_pairs",
    "crop_boxes",
    "discover_clips",
    "open_reader",
    "read_manifest",
    "read_mot_file",
    "read_seqinfo",
    "write_mot_file",
]
