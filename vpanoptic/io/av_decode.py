"""The PyAV decode loop shared by files, network streams and webcams (`PyAVSource`).

Demux the first video stream, decode each packet with codec threading on
(``thread_type="AUTO"``), count damaged packets and keep going, flush the decoder at the
end so the last frames come out, convert to RGB and apply the display matrix (rotation /
flip) that the container asks players to apply.

Time always comes from the container: ``time = offset + (pts - start) * time_base``, never
from a nominal frame rate, so variable frame rate just works.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import SourceError
from ..types import Frame
from .orientation import apply_display_matrix, frame_display_matrix
from .source_base import Source

__all__ = ["PyAVSource", "LAST_RESORT_FPS", "MAX_CONSECUTIVE_READ_ERRORS", "TEXT_DEMUXERS", "reason_of"]

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_READ_ERRORS = 8
#: Frame step used for a frame without timestamp when neither the frame, the container
#: nor the caller give a rate. Only reached by broken inputs; a warning is logged.
LAST_RESORT_FPS = 25.0



def reason_of(error: BaseException) -> str:
    """A short human reason for an FFmpeg / OS error (no errno prefix, no repeated path)."""
    text = getattr(error, "strerror", None)
    return text if text else (str(error) or type(error).__name__)




# FFmpeg demuxers that render text as pictures (ANSI art): a text file is a user mistake here.
TEXT_DEMUXERS = frozenset({"tty"})

class PyAVSource(Source):
    """Shared PyAV decode loop. Subclasses open the container and may treat read errors.

    Thread safety: the producer thread holds ``_lock`` only while inside FFmpeg (reading a
    packet, decoding it); `close()` takes the same lock, so it can be called from another
    thread and waits at most for one read (bounded by the read timeout for streams).
    """

    #: True: time 0 is the stream's declared start; False: time 0 is the first frame's pts.
    _time_from_stream_start = True

    def __init__(self, name: str, *, fps: float | None = None, options: dict[str, str] | None = None):
        super().__init__(name)
        if fps is not None and not fps > 0:
            raise SourceError(f"fps is {fps} for {name}; expected a number > 0")
        self._fallback_fps = fps
        self.options: dict[str, str] = {str(k): str(v) for k, v in (options or {}).items()}
        self._lock = threading.Lock()
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._packets: Any = None  # the demuxer's generator of av.Packet (closed in _release)
        self._reformatter = VideoReformatter()  # keeps its scaler between frames
        self._ended = False
        self._read_errors_in_row = 0
        # Timeline: time = offset + (pts - origin) * time_base; a reconnecting stream moves
        # the offset so that time continues across connections.
        # Kept as exact fractions, so a stitched timeline gives the very floats of an unbroken one.
        self._origin: int | None = None
        self._time_offset = Fraction(0)
        self._previous_time: Fraction | None = None

    # ------------------------------------------------------------------ hooks
    def _open_container(self) -> av.container.InputContainer:
        """Open and return the container; raise `SourceError` naming the input on failure."""
        raise NotImplementedError

    def _describe(self) -> str:
        """How messages name this input."""
        return self.name

    def _on_read_error(self, error: av.FFmpegError) -> bool:
        """Called (under the lock) when the demuxer fails. Return True to keep reading.

        The default counts the error as damage and goes on reading, up to
        `MAX_CONSECUTIVE_READ_ERRORS` in a row. A reconnecting stream would reopen here.
        """
        self.damaged += 1
        self._read_errors_in_row += 1
        if self._read_errors_in_row >= MAX_CONSECUTIVE_READ_ERRORS:
            log.warning("%s: %d read errors in a row (%s); treating it as the end",
                        self._describe(), self._read_errors_in_row, reason_of(error))
            return False
        return True

    # ------------------------------------------------------------------ open / close
    def open(self) -> None:
        if self._container is not None:
            return
        container, stream = self._open_checked()
        self.fps = self._nominal_fps(stream) or self._fallback_fps
        self.num_frames = None if self.is_live else self._count_frames(container, stream)
        with self._lock:
            self._install(container, stream)

    def _open_checked(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        """Open the container and its first video stream's decoder; `SourceError` on failure."""
        container = self._open_container()
        try:
            if container.format.name in TEXT_DEMUXERS:
                raise SourceError(f"cannot open {self._describe()} as video: it is a text file")
            if not container.streams.video:
                kinds: list[str] = sorted({s.type for s in container.streams}) or ["no streams"]
                raise SourceError(f"{self._describe()} has no video stream (it holds: {', '.join(kinds)})")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                stream.codec_context.open(strict=False)
            except (av.FFmpegError, ValueError) as e:
                raise SourceError(
                    f"cannot decode {self._describe()}: codec {stream.codec_context.name!r}: {reason_of(e)}"
                ) from e
        except BaseException:
            container.close()
            raise
        return container, stream

    def _install(self, container, stream) -> None:
        """Make an opened container the one being read (caller holds ``_lock``)."""
        self._container, self._stream = container, stream
        self._packets = container.demux(stream)
        self._ended = False
        self._read_errors_in_row = 0

    def _release(self) -> None:
        """Close the container being read (caller holds ``_lock``)."""
        if self._packets is not None:
            self._packets.close()  # runs the demuxer's own clean-up before the container goes
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._packets = None

    def close(self) -> None:
        with self._lock:
            self._ended = True
            self._release()

    @staticmethod
    def _nominal_fps(stream) -> float | None:
        rate = stream.average_rate or stream.guessed_rate
        return float(rate) if rate else None

    @staticmethod
    def _count_frames(container, stream) -> int | None:
        if stream.frames:
            return int(stream.frames)
        rate = stream.average_rate
        if not rate:
            return None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / av.time_base
        else:
            return None
        return max(1, round(seconds * float(rate)))

    # ------------------------------------------------------------------ decoding
    def _decode_next(self) -> list[av.VideoFrame] | None:
        """Read one packet and decode it; None at the end. Holds the lock throughout."""
        with self._lock:
            if self._ended or self._packets is None:
                return None
            try:
                packet = next(self._packets)
            except StopIteration:
                return self._flush()
            except av.FFmpegError as e:
                if isinstance(e, MemoryError):
                    raise
                if not self._on_read_error(e):
                    return self._flush()
                assert self._container is not None and self._stream is not None
                self._packets = self._container.demux(self._stream)  # read on after the error
                return []
            self._read_errors_in_row = 0
            if packet.size == 0:
                # PyAV's end-of-stream packet (an empty packet drains the decoder). The
                # decoder is drained once, in `_flush`, also when the demuxer ends on an error.
                return []
            assert self._stream is not None
            try:
                frames = self._stream.codec_context.decode(packet)
            except av.FFmpegError as e:
                if isinstance(e, MemoryError):
                    raise
                self.damaged += 1  # the decoder rejected this packet; go on with the next
                return []
            if packet.is_corrupt:
                self.damaged += 1  # the demuxer flagged it; whatever decoded is still shown
            return frames

    def _flush(self) -> list[av.VideoFrame]:
        """Drain the decoder (frames held back for reordering / frame threading)."""
        self._ended = True
        assert self._stream is not None
        try:
            return self._stream.codec_context.decode(None)
        except av.FFmpegError as e:
            if isinstance(e, MemoryError):
                raise
            self.damaged += 1
            return []

    def _frames(self) -> Iterator[av.VideoFrame]:
        while True:
            batch = self._decode_next()
            if batch is None:
                return
            yield from batch

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            raise RuntimeError(f"{self.kind} source {self._describe()} is not open; "
                               "call open() or use `with`")
        self._start_timeline(offset=Fraction(0))
        self._previous_time = None
        for index, av_frame in enumerate(self._frames()):
            pts = av_frame.pts if av_frame.pts is not None else av_frame.dts  # dts: best effort
            seconds = self._frame_time(av_frame, pts)
            rgb = self._reformatter.reformat(av_frame, format="rgb24").to_ndarray()  # (H, W, 3)
            image = np.ascontiguousarray(apply_display_matrix(rgb, frame_display_matrix(av_frame)))
            yield Frame(index=index, pts=pts, time=seconds, capture_time=time.monotonic(), image=image)

    def _start_timeline(self, offset: Fraction) -> None:
        """Time `offset` seconds at the start of the container being read."""
        self._time_offset = offset
        stream = self._stream
        self._origin = stream.start_time if (self._time_from_stream_start and stream is not None) else None

    def _frame_time(self, av_frame: av.VideoFrame, pts: int | None) -> float:
        """Seconds since the start: from the container's clock (``pts * time_base``)."""
        time_base = av_frame.time_base or (self._stream.time_base if self._stream is not None else None)
        if pts is not None and time_base is not None:
            if self._origin is None:
                self._origin = pts
            exact = self._time_offset + (pts - self._origin) * Fraction(time_base)
        else:
            # No timestamp at all (some raw / AVI inputs): continue from the previous
            # frame by one frame duration (webcams: the wall clock since open()).
            previous = None if self._previous_time is None else float(self._previous_time)
            exact = Fraction(self._time_without_pts(av_frame, previous, time_base))
        self._previous_time = exact
        return float(exact)

    def _time_without_pts(self, av_frame: av.VideoFrame, previous: float | None,
                          time_base: Fraction | None) -> float:
        """Time of a frame that carries no timestamp at all (neither pts nor dts).

        Files and streams: continue from the previous frame by one frame duration (the
        frame's own, else 1 / the container's average rate, else the caller's fps).
        """
        if previous is None:
            return 0.0
        if av_frame.duration and time_base:
            return previous + float(av_frame.duration * time_base)
        rate = self.fps or self._fallback_fps
        if not rate:
            log.warning("%s: frame without timestamp and no known frame rate; assuming %g fps",
                        self._describe(), LAST_RESORT_FPS)
            rate = LAST_RESORT_FPS
        return previous + 1.0 / rate
