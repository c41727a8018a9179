"""Annotated video: overlays encoded as H.264 (libx264, yuv420p) in a fragmented MP4.

Timing comes from the frames, not from a frame rate: each frame's presentation time is its
`frame.time` (relative to the first written frame) on a 1/90000 s clock, so variable frame
rate input and dropped frames keep their real timing. `fps` is only the nominal rate given
to the encoder's rate control and the stream header.

Why a fragmented MP4 written straight to its final path: a regular MP4 has its index
(`moov`) at the end, written by `close()`, so a process killed mid-run would leave an
unplayable file, and writing to a temporary name and renaming at `close()` would leave no
file at all. A fragmented MP4 (`frag_keyframe+empty_moov`) has an empty index up front and
one self-contained fragment per keyframe interval, each flushed to disk as it completes: if
the process dies, every finished fragment still plays, and the growing file can be watched
while it is written.

No B-frames: a fragmented MP4 has no edit list to hide the encoder's reordering delay, so
with B-frames the muxer would shift every timestamp by that delay (it keeps decode times
non-negative). Without them presentation time equals decode time and `frame.time` is kept
exactly; the encoder also holds fewer frames back (lower latency, less lost on a crash),
at the cost of a slightly larger file for the same quality.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

# The module, not `overlay` itself: viz imports sinks.stats, so either may load first.
from .. import viz
from ..types import PanopticFrame
from .base import Sink

__all__ = ["VideoSink"]

# 90 kHz, the MPEG system clock: exact for 24/25/30/50/60 fps and 1001-based NTSC rates.
TIME_BASE = Fraction(1, 90000)
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
_DRAW_OPTIONS = ("alpha", "labels", "contours")
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


class VideoSink(Sink):
    """Writes `viz.overlay` of every frame to an H.264 MP4 that browsers can play.

    Args:
        path: output file (``.mp4``); parent folders are created. Written in place as a
            fragmented MP4 that stays playable up to the last keyframe interval if the
            process is killed before `close()`.
        fps: nominal frame rate (> 0), a hint for rate control; timestamps come from
            `frame.time`.
        crf: x264 constant rate factor, 0 (lossless) .. 51 (worst); 23 is x264's default.
        preset: x264 speed/size preset, one of `X264_PRESETS`.
        keyframe_interval: seconds between forced keyframes at the nominal rate (> 0); a
            fragment ends at each keyframe, so this bounds what a crash can lose.
        draw: keyword options of `viz.overlay` (``alpha``, ``labels``, ``contours``).

    Frames must all have the same size; odd widths or heights are padded to even (H.264
    4:2:0 needs even sizes) by repeating the last column or row.
    """

    name = "video"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: float = 30.0,
        crf: int = 23,
        preset: str = "veryfast",
        keyframe_interval: float = 2.0,
        draw: Mapping[str, Any] | None = None,
    ):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"video fps is {fps}; expected a number > 0")
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"video crf is {crf}; expected 0 <= crf <= 51")
        if preset not in X264_PRESETS:
            raise ValueError(f"video preset is {preset!r}; choose from {', '.join(X264_PRESETS)}")
        if not (math.isfinite(keyframe_interval) and keyframe_interval > 0):
            raise ValueError(f"video keyframe_interval is {keyframe_interval}; expected seconds > 0")
        draw = dict(draw or {})
        unknown = sorted(set(draw) - set(_DRAW_OPTIONS))
        if unknown:
            raise ValueError(f"unknown video draw options {unknown}; choose from {', '.join(_DRAW_OPTIONS)}")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = preset
        self.keyframe_interval = float(keyframe_interval)
        self.draw = draw
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (H, W) of the input frames
        self._t0 = 0.0  # media time of the first frame (set with it)
        self._last_pts: int | None = None
        self._closed = False
        self.frames_written = 0

    # ------------------------------------------------------------------ writing
    def write(self, pf: PanopticFrame) -> None:
        """Draw `pf` over its image and encode it at `pf.frame.time`."""
        if self._closed:
            raise RuntimeError(f"video sink {self.path} is closed; create a new VideoSink to write more")
        image = viz.overlay(pf.to_numpy(), **self.draw)  # [H, W, 3] uint8 RGB
        size = (image.shape[0], image.shape[1])
        if self._container is None:
            self._open(size)
        elif self._size is not None and size != self._size:
            raise ValueError(
                f"frame {pf.frame.index} is {size[1]}x{size[0]} but the video is "
                f"{self._size[1]}x{self._size[0]}; a video needs one frame size"
            )
        image = _pad_even(image)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self._next_pts(pf.frame.time)
        frame.time_base = TIME_BASE
        assert self._stream is not None and self._container is not None  # opened above
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def _open(self, size: tuple[int, int]) -> None:
        height, width = size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.path),
            mode="w",
            format="mp4",
            # flush_packets: hand each fragment to the OS as soon as it is complete.
            options={"movflags": _MOVFLAGS, "flush_packets": "1"},
        )
        try:
            stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001000))
            stream.width = width + width % 2
            stream.height = height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            stream.codec_context.gop_size = max(1, round(self.keyframe_interval * self.fps))
            # bf=0: no B-frames, so presentation times survive the fragmented muxer.
            stream.options = {"crf": str(self.crf), "preset": self.preset, "bf": "0"}
        except BaseException:
            container.close()
            raise
        self._container, self._stream, self._size = container, stream, size

    def _next_pts(self, time: float) -> int:
        """Presentation time in `TIME_BASE` units: `time` from the first frame, strictly increasing."""
        step = max(1, round(1.0 / (self.fps * TIME_BASE)))
        if self._last_pts is None:
            self._t0 = time if math.isfinite(time) else 0.0
            pts = 0
        elif math.isfinite(time):
            pts = max(round((time - self._t0) / TIME_BASE), self._last_pts + 1)
        else:  # no usable clock: fall back to the nominal rate
            pts = self._last_pts + step
        self._last_pts = pts
        return pts

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Flush the encoder and finish the file. Idempotent; safe after a failed `write()`."""
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None or stream is None:  # nothing was written: no file
            return
        try:
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Pad ``(H, W, 3)`` to even H and W by repeating the last row / column."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    return cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
