"""KITTI-STEP / MOTChallenge-STEP label PNGs, one per frame."""

from __future__ import annotations

import os
from pathlib import Path

from ..io.formats import write_kitti_step
from ..types import PanopticFrame
from .base import Sink

__all__ = ["KittiStepSink"]


class KittiStepSink(Sink):
    """Writes ``out_dir/{frame.index:06d}.png`` per frame in the KITTI-STEP format.

    R = category id (void → `meta.void_id`), G * 256 + B = track id for tracked things and
    0 for stuff, untracked things and void (`PanopticFrame.to_labels("track")`): KITTI-STEP's
    "no instance", where the JSON outputs write -1 (a PNG channel has no negative values;
    track ids start at 1). Each file is
    written atomically (temporary name, then rename), so a crash never leaves half a PNG.

    Args:
        out_dir: folder for the PNGs, created if missing.
    """

    name = "png"

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._closed = False
        self.frames_written = 0

    def path_for(self, index: int) -> Path:
        """File name of frame `index`."""
        return self.out_dir / f"{index:06d}.png"

    def write(self, pf: PanopticFrame) -> None:
        if self._closed:
            raise RuntimeError(f"png sink {self.out_dir} is closed; create a new KittiStepSink to write more")
        semantic, instance = pf.to_labels("track")  # (H, W) int32 each
        if instance.size and instance.max() > 65535:
            raise ValueError(
                f"frame {pf.frame.index}: track id {int(instance.max())} does not fit a KITTI-STEP PNG (max 65535)"
            )
        write_kitti_step(self.path_for(pf.frame.index), semantic, instance)
        self.frames_written += 1

    def close(self) -> None:
        """Nothing is buffered; marks the sink closed. Idempotent."""
        self._closed = True
