"""COCO panoptic output: one id PNG per frame and a `panoptic.json` written at `close()`.

Layout::

    out_dir/panoptic/{index:06d}.png    RGB, segment id = R + 256 G + 256² B, 0 = void
    out_dir/panoptic.json               images, annotations (segments_info), categories

The per-frame records are appended to a hidden file (`out_dir/.panoptic.json.parts`) as
frames arrive and assembled into `panoptic.json` at `close()`, so memory stays constant
however long the video is. The JSON is written to a temporary name and renamed, so
`panoptic.json` is either absent or complete.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..io.formats import encode_coco_ids, write_rgb_png
from ..types import DatasetMeta, PanopticFrame
from .base import Sink
from .stats import segment_stats

__all__ = ["CocoPanopticSink"]


class CocoPanopticSink(Sink):
    """Writes frames in the COCO panoptic format (panopticapi conventions).

    `images` entries: ``id`` (= frame index), ``file_name``, ``width``, ``height``, ``time``
    (seconds). Frames themselves are not exported; ``file_name`` names the frame as
    ``{index:06d}.png``. `annotations`: ``image_id``, ``file_name`` (the PNG under
    ``panoptic/``) and ``segments_info`` with ``id`` (the frame's segment id, as in the PNG),
    ``category_id``, ``iscrowd`` (0), ``bbox`` ``[x, y, w, h]``, ``area``, plus ``track_id``
    (-1 for stuff and untracked things: track ids start at 1, and the KITTI-STEP PNGs write
    these as instance 0) and ``score``. Segments with no pixels are left out
    (panopticapi requires every listed segment to appear in the PNG). `categories`: every
    category of the metadata with ``id``, ``name``, ``isthing`` (0/1), ``color``.

    Args:
        out_dir: output folder, created if missing.
        meta: metadata for `categories`; taken from the first frame when None.
    """

    name = "coco"

    def __init__(self, out_dir: str | os.PathLike, *, meta: DatasetMeta | None = None):
        self.out_dir = Path(out_dir)
        self.png_dir = self.out_dir / "panoptic"
        self.json_path = self.out_dir / "panoptic.json"
        self.png_dir.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self._parts_path = self.out_dir / ".panoptic.json.parts"
        self._parts = open(self._parts_path, "w", encoding="utf-8")
        self._closed = False
        self.frames_written = 0

    def write(self, pf: PanopticFrame) -> None:
        if self._closed:
            raise RuntimeError(f"coco sink {self.out_dir} is closed; create a new CocoPanopticSink to write more")
        if self.meta is None:
            self.meta = pf.meta
        elif pf.meta is not self.meta and pf.meta != self.meta:
            raise ValueError(
                f"frame {pf.frame.index} has dataset {pf.meta.name!r}; this COCO output holds {self.meta.name!r}"
            )
        id_map = pf.id_map_numpy()  # (H, W) int32
        areas, bboxes = segment_stats(id_map, pf.segment_ids)  # (N,) int64, (N, 4) int32
        if int(areas.sum()) != int(np.count_nonzero(id_map)):
            raise ValueError(f"frame {pf.frame.index}: id_map holds segment ids with no segment entry")
        index = int(pf.frame.index)
        png_name = f"{index:06d}.png"
        write_rgb_png(self.png_dir / png_name, encode_coco_ids(id_map))
        time = float(pf.frame.time)
        image = {
            "id": index,
            "file_name": png_name,
            "width": int(pf.width),
            "height": int(pf.height),
            "time": time if math.isfinite(time) else None,
        }
        segments_info = [
            {
                "id": int(pf.segment_ids[i]),
                "category_id": int(pf.category_ids[i]),
                "iscrowd": 0,
                "bbox": [int(v) for v in bboxes[i]],
                "area": int(areas[i]),
                "track_id": int(pf.track_ids[i]),
                "score": _finite(round(float(pf.scores[i]), 6)),
            }
            for i in np.flatnonzero(areas > 0)
        ]
        annotation = {"image_id": index, "file_name": png_name, "segments_info": segments_info}
        self._parts.write(json.dumps({"image": image, "annotation": annotation}, separators=(",", ":")) + "\n")
        self.frames_written += 1

    def close(self) -> None:
        """Write `panoptic.json` (atomically) from the frames written so far. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._parts.close()
        tmp = self.json_path.with_name(f".{self.json_path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                self._write_json(out)
            os.replace(tmp, self.json_path)
        finally:
            tmp.unlink(missing_ok=True)
        self._parts_path.unlink(missing_ok=True)

    def _write_json(self, out) -> None:
        """Stream the COCO JSON into `out`: the parts file is read twice, never held whole."""
        categories = [
            {"id": c.id, "name": c.name, "isthing": int(c.isthing), "color": list(c.color)}
            for c in (self.meta.categories if self.meta is not None else ())
        ]
        info = {"description": "vpanoptic panoptic output", "dataset": self.meta.name if self.meta else None}
        out.write('{"info":' + json.dumps(info) + ',"images":[')
        for key in ("image", "annotation"):
            if key == "annotation":
                out.write('],"annotations":[')
            with open(self._parts_path, encoding="utf-8") as parts:
                for n, line in enumerate(parts):
                    out.write(("," if n else "") + json.dumps(json.loads(line)[key], separators=(",", ":")))
        out.write('],"categories":' + json.dumps(categories) + "}\n")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
