"""Output sinks: annotated video, KITTI-STEP PNGs, COCO panoptic, JSON Lines.

`build_sinks` creates the sinks named on the command line inside one output folder::

    out_dir/video.mp4          "video"  VideoSink          H.264 MP4 of the overlays
    out_dir/panoptic_kitti/    "png"    KittiStepSink      {index:06d}.png STEP labels
    out_dir/coco/              "coco"   CocoPanopticSink   panoptic/*.png + panoptic.json
    out_dir/segments.jsonl     "jsonl"  JsonlSink          one line per frame
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..config import SAVE_KINDS
from ..errors import ConfigError
from .base import Sink
from .coco import CocoPanopticSink
from .jsonl import JsonlSink
from .kitti import KittiStepSink
from .stats import segment_stats
from .video import VideoSink

__all__ = [
    "SINK_KINDS",
    "CocoPanopticSink",
    "JsonlSink",
    "KittiStepSink",
    "Sink",
    "VideoSink",
    "build_sinks",
    "segment_stats",
]

#: The kinds `build_sinks` makes: the values `output.save` may name (one list, in config).
SINK_KINDS = SAVE_KINDS


def build_sinks(
    kinds: Iterable[str] | str,
    out_dir: str | os.PathLike,
    *,
    fps: float = 30.0,
    crf: int = 23,
) -> list[Sink]:
    """Create one sink per kind inside `out_dir` (created if missing), in the order given.

    Args:
        kinds: names from `SINK_KINDS`, or one comma-separated string ("video,jsonl").
        out_dir: output folder.
        fps: nominal frame rate of the video (timestamps come from the frames).
        crf: H.264 quality of the video, 0 (lossless) .. 51 (worst).

    Raises:
        ConfigError: an unknown or repeated kind; nothing is created then.
    """
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = list(kinds)
    for kind in kinds:
        if kind not in SINK_KINDS:
            raise ConfigError(f"unknown output {kind!r}; choose from {', '.join(SINK_KINDS)}")
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise ConfigError(f"output {repeated[0]!r} is listed more than once; list each output once")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks: list[Sink] = []
    try:
        for kind in kinds:
            if kind == "video":
                sinks.append(VideoSink(out_dir / "video.mp4", fps=fps, crf=crf))
            elif kind == "png":
                sinks.append(KittiStepSink(out_dir / "panoptic_kitti"))
            elif kind == "coco":
                sinks.append(CocoPanopticSink(out_dir / "coco"))
            else:
                sinks.append(JsonlSink(out_dir / "segments.jsonl"))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks
