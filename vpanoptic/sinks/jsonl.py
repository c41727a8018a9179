"""JSON Lines: one line per frame with its segments, flushed as it is written."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TextIO

from ..types import PanopticFrame
from .base import Sink
from .stats import segment_stats

__all__ = ["JsonlSink", "frame_record"]


def frame_record(pf: PanopticFrame) -> dict:
    """The JSON record of one frame.

    ``{"frame", "time", "pts", "width", "height", "segments": [{"id", "category_id",
    "category", "isthing", "track_id", "score", "area", "bbox": [x, y, w, h]}]}``; every
    listed segment is included, with area 0 and bbox ``[0, 0, 0, 0]`` if it has no pixels.
    `track_id` is -1 for stuff and untracked things (track ids start at 1; the KITTI-STEP
    PNGs write these as instance 0); a non-finite time or score becomes null.
    """
    areas, bboxes = segment_stats(pf.id_map_numpy(), pf.segment_ids)
    meta = pf.meta
    segments = [
        {
            "id": int(pf.segment_ids[i]),
            "category_id": int(pf.category_ids[i]),
            "category": meta.category(int(pf.category_ids[i])).name,
            "isthing": bool(pf.is_thing[i]),
            "track_id": int(pf.track_ids[i]),
            "score": _finite(round(float(pf.scores[i]), 6)),
            "area": int(areas[i]),
            "bbox": [int(v) for v in bboxes[i]],
        }
        for i in range(len(pf))
    ]
    frame = pf.frame
    return {
        "frame": int(frame.index),
        "time": _finite(float(frame.time)),
        "pts": None if frame.pts is None else int(frame.pts),
        "width": int(pf.width),
        "height": int(pf.height),
        "segments": segments,
    }


def _finite(value: float) -> float | None:
    """`value`, or None (JSON null) for NaN and infinities, which JSON cannot hold."""
    return value if math.isfinite(value) else None


class JsonlSink(Sink):
    """Appends `frame_record` of each frame as one line of `path` and flushes it.

    Each line is complete on disk once `write()` returns, so a reader can follow the file
    live, and a killed process loses at most the frame being written.

    Args:
        path: output file (``.jsonl``), truncated if it exists; parent folders are created.
    """

    name = "jsonl"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = open(self.path, "w", encoding="utf-8")
        self.frames_written = 0

    def write(self, pf: PanopticFrame) -> None:
        if self._file is None:
            raise RuntimeError(f"jsonl sink {self.path} is closed; create a new JsonlSink to write more")
        line = json.dumps(frame_record(pf), separators=(",", ":"), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        self.frames_written += 1

    def close(self) -> None:
        """Close the file. Idempotent."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
