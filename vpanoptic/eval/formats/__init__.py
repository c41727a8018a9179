"""Readers and writers of the video panoptic benchmark formats.

`read_format(path, format)` returns a `SequenceSet` for any of `FORMATS`; `pair_sequences`
pairs ground truth with prediction by sequence and frame name. Writers produce the same
layouts (used by the tests, the experiments and for submissions).
"""

from __future__ import annotations

import os

from ...types import DatasetMeta
from .base import FormatError, FrameRef, LabelFrame, SequenceSet, pair_sequences
from .coco import (
    read_cityscapes_vps,
    read_coco_panoptic,
    read_vipseg,
    step_to_coco,
    write_cityscapes_vps,
    write_coco_panoptic,
    write_vipseg,
)
from .mots import read_mots, read_mots_png, read_mots_txt, write_mots_png, write_mots_txt
from .step import read_step, write_step

__all__ = [
    "FORMATS", "FormatError", "FrameRef", "LabelFrame", "SequenceSet", "pair_sequences", "read_format",
    "read_cityscapes_vps", "read_coco_panoptic", "read_mots", "read_mots_png", "read_mots_txt", "read_step",
    "read_vipseg", "step_to_coco", "write_cityscapes_vps", "write_coco_panoptic", "write_mots_png",
    "write_mots_txt", "write_step", "write_vipseg",
]

FORMATS = ("kitti-step", "motchallenge-step", "cityscapes-vps", "vipseg", "coco", "mots")


def read_format(path: str | os.PathLike, format: str, meta: DatasetMeta | None = None, *,
                prediction: bool = False) -> SequenceSet:
    """Read `path` in `format` (one of `FORMATS`); raises `FormatError` on anything unreadable.

    `meta` fixes the categories of COCO-style formats (pass the ground truth's when reading a
    prediction); otherwise they come from the JSON or the dataset's defaults. `prediction`
    makes COCO-style readers check that each PNG and its ``segments_info`` list the same ids.
    """
    if format in ("kitti-step", "motchallenge-step"):
        return read_step(path, format)
    if format == "coco":
        return read_coco_panoptic(path, meta, prediction=prediction)
    if format == "cityscapes-vps":
        return read_cityscapes_vps(path, meta, prediction=prediction)
    if format == "vipseg":
        return read_vipseg(path, meta, prediction=prediction)
    if format == "mots":
        return read_mots(path)
    raise FormatError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
