"""Sources decoded by FFmpeg through PyAV: video files, network streams and webcams.

All three share one decode loop (`_PyAVSource`): demux the first video stream, decode each
packet with codec threading on (``thread_type="AUTO"``), count damaged packets and keep
going, flush the decoder at the end so the last frames come out, convert to RGB and apply
the display matrix (rotation / flip) that the container asks players to apply.

Time always comes from the container: ``time = (pts - start) * time_base``, never from a
nominal frame rate, so variable frame rate just works.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from fractions import Fraction
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import av
import av.device
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import SourceError
from ..types import Frame
from .orientation import apply_display_matrix, frame_display_matrix
from .source_base import POLICY_EVERY, POLICY_LATEST, POLICY_STREAM, Source

__all__ = [
    "FileSource",
    "StreamSource",
    "WebcamSource",
    "STREAM_SCHEMES",
    "default_stream_options",
    "parse_webcam_spec",
]

log = logging.getLogger(__name__)

#: URL schemes opened as network streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
#: Seconds to wait for a stream to connect, and for each packet once connected.
STREAM_OPEN_TIMEOUT_S = 10.0
STREAM_READ_TIMEOUT_S = 10.0
#: Demuxer read errors in a row after which the input is treated as ended.
MAX_CONSECUTIVE_READ_ERRORS = 8
#: Frame step used for a frame without timestamp when neither the frame, the container
#: nor the caller give a rate. Only reached by broken inputs; a warning is logged.
LAST_RESORT_FPS = 25.0


def _reason(error: BaseException) -> str:
    """A short human reason for an FFmpeg / OS error (no errno prefix, no repeated path)."""
    text = getattr(error, "strerror", None)
    return text if text else (str(error) or type(error).__name__)


# --------------------------------------------------------------------------- decode loop
# FFmpeg demuxers that render text as pictures (ANSI art): a text file is a user mistake here.
TEXT_DEMUXERS = frozenset({"tty"})

class _PyAVSource(Source):
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
        self._packets: Iterator[av.Packet] | None = None
        self._reformatter = VideoReformatter()  # keeps its scaler between frames
        self._ended = False
        self._read_errors_in_row = 0

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
                        self._describe(), self._read_errors_in_row, _reason(error))
            return False
        return True

    # ------------------------------------------------------------------ open / close
    def open(self) -> None:
        if self._container is not None:
            return
        container = self._open_container()
        try:
            if container.format.name in TEXT_DEMUXERS:
                raise SourceError(f"cannot open {self._describe()} as video: it is a text file")
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["no streams"]
                raise SourceError(f"{self._describe()} has no video stream (it holds: {', '.join(kinds)})")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                stream.codec_context.open(strict=False)
            except (av.FFmpegError, ValueError) as e:
                raise SourceError(
                    f"cannot decode {self._describe()}: codec {stream.codec_context.name!r}: {_reason(e)}"
                ) from e
        except BaseException:
            container.close()
            raise
        self.fps = self._nominal_fps(stream) or self._fallback_fps
        self.num_frames = None if self.is_live else self._count_frames(container, stream)
        with self._lock:
            self._container, self._stream = container, stream
            self._packets = container.demux(stream)
            self._ended = False
            self._read_errors_in_row = 0

    def close(self) -> None:
        with self._lock:
            self._ended = True
            if self._packets is not None:
                self._packets.close()  # runs the demuxer's own clean-up before the container goes
            if self._container is not None:
                self._container.close()
            self._container = self._stream = self._packets = None

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
                self._packets = self._container.demux(self._stream)  # read on after the error
                return []
            self._read_errors_in_row = 0
            if packet.size == 0:
                # PyAV's end-of-stream packet (an empty packet drains the decoder). The
                # decoder is drained once, in `_flush`, also when the demuxer ends on an error.
                return []
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
        stream = self._stream
        time_base = stream.time_base
        origin = stream.start_time if self._time_from_stream_start else None
        previous_time: float | None = None
        for index, av_frame in enumerate(self._frames()):
            pts = av_frame.pts if av_frame.pts is not None else av_frame.dts  # dts: best effort
            if pts is not None and time_base is not None:
                if origin is None:
                    origin = pts
                seconds = float((pts - origin) * time_base)
            else:
                # No timestamp at all (some raw / AVI inputs): continue from the previous
                # frame by one frame duration (webcams: the wall clock since open()).
                seconds = self._time_without_pts(av_frame, previous_time, time_base)
            previous_time = seconds
            rgb = self._reformatter.reformat(av_frame, format="rgb24").to_ndarray()  # (H, W, 3)
            image = np.ascontiguousarray(apply_display_matrix(rgb, frame_display_matrix(av_frame)))
            yield Frame(index=index, pts=pts, time=seconds, capture_time=time.monotonic(), image=image)

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


# --------------------------------------------------------------------------- files
class FileSource(_PyAVSource):
    """Any container/codec FFmpeg reads, from a local path. Every frame, in order.

    Args:
        path: the file.
        fps: frame rate used only for frames that carry no timestamp and when the
            container declares no rate.
        options: FFmpeg demuxer options passed to ``av.open``.
    """

    kind = "file"
    is_live = False
    default_policy = POLICY_EVERY

    def __init__(self, path: str, *, fps: float | None = None, options: dict[str, str] | None = None):
        super().__init__(path, fps=fps, options=options)
        self.path = path

    def _open_container(self):
        try:
            return av.open(self.path, mode="r", options=self.options)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise SourceError(f"cannot open {self.path} as video: {_reason(e)}") from e


# --------------------------------------------------------------------------- streams
def _redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def default_stream_options(url: str) -> dict[str, str]:
    """FFmpeg options for a stream URL unless the caller overrides them."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return {"rtsp_transport": "tcp"}  # UDP loses packets (grey smears) behind NAT and on Wi-Fi
    return {}


class StreamSource(_PyAVSource):
    """A network stream (RTSP, RTMP, HTTP(S), UDP, TCP, SRT) read live.

    Args:
        url: the stream URL.
        fps: frame rate used only for frames that carry no timestamp.
        options: FFmpeg protocol/demuxer options; they override `default_stream_options`.
        open_timeout_s: seconds to wait for the connection.
        read_timeout_s: seconds to wait for each packet once connected; longer silence ends
            the stream with `SourceError`.

    Losing the connection after the open raises `SourceError` from the iterator; this is
    where reconnection will hook in (`_on_read_error`).
    """

    kind = "stream"
    is_live = True
    default_policy = POLICY_STREAM

    def __init__(
        self,
        url: str,
        *,
        fps: float | None = None,
        options: dict[str, str] | None = None,
        open_timeout_s: float = STREAM_OPEN_TIMEOUT_S,
        read_timeout_s: float = STREAM_READ_TIMEOUT_S,
    ):
        super().__init__(url, fps=fps, options={**default_stream_options(url), **(options or {})})
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s

    def _describe(self) -> str:
        return f"stream {_redact(self.url)}"

    def _open_container(self):
        try:
            return av.open(self.url, mode="r", options=self.options,
                           timeout=(self.open_timeout_s, self.read_timeout_s))
        except av.error.ExitError as e:
            raise SourceError(
                f"cannot open {self._describe()}: no answer within {self.open_timeout_s:g} s"
            ) from e
        except (av.FFmpegError, OSError, ValueError) as e:
            raise SourceError(f"cannot open {self._describe()}: {_reason(e)}") from e

    def _on_read_error(self, error: av.FFmpegError) -> bool:
        if isinstance(error, av.error.InvalidDataError):
            return super()._on_read_error(error)  # garbled packet: count it and read on
        reason = (f"no data for {self.read_timeout_s:g} s" if isinstance(error, av.error.ExitError)
                  else _reason(error))
        raise SourceError(f"lost {self._describe()}: {reason}") from error


# --------------------------------------------------------------------------- webcams
def parse_webcam_spec(spec: str, platform: str | None = None) -> tuple[str, str]:
    """Map ``webcam:N``, ``webcam:NAME`` or ``/dev/videoN`` to an FFmpeg (input, format).

    Linux uses ``v4l2`` (``/dev/videoN``), macOS ``avfoundation`` (``"N:none"``: video
    device N, no audio), Windows ``dshow`` (``"video=NAME"``; an index is looked up among
    the video devices DirectShow lists).

    Raises:
        SourceError: a malformed spec, or one the platform cannot use.
    """
    platform = platform or sys.platform
    if spec.startswith("/dev/video"):
        if not platform.startswith("linux"):
            raise SourceError(f"webcam device paths like {spec} exist on Linux only; use webcam:N")
        return spec, "v4l2"
    if spec != "webcam" and not spec.startswith("webcam:"):
        raise SourceError(f"{spec!r} is not a webcam spec; expected webcam:N or /dev/videoN")
    device = spec[len("webcam:"):].strip() if spec != "webcam" else ""
    device = device or "0"
    if platform.startswith("linux"):
        if device.isdigit():
            return f"/dev/video{int(device)}", "v4l2"
        if device.startswith("/dev/"):
            return device, "v4l2"
        raise SourceError(f"webcam spec {spec!r}: on Linux use webcam:N or a device path /dev/videoN")
    if platform == "darwin":
        return (f"{int(device)}:none" if device.isdigit() else f"{device}:none"), "avfoundation"
    if platform.startswith("win"):
        if not device.isdigit():
            return f"video={device}", "dshow"
        return f"video={_dshow_camera_name(int(device), spec)}", "dshow"
    raise SourceError(f"webcams are not supported on platform {platform!r}; use a file or a stream URL")


def _dshow_camera_name(index: int, spec: str) -> str:
    """Name of the index-th DirectShow video device."""
    try:
        devices = [d for d in av.device.enumerate_input_devices("dshow") if "video" in d.media_types]
    except (av.FFmpegError, ValueError) as e:
        raise SourceError(f"cannot list cameras for {spec!r}: {_reason(e)}; use webcam:NAME") from e
    if index >= len(devices):
        names = ", ".join(repr(d.name) for d in devices) or "none"
        raise SourceError(f"no camera {index} for {spec!r}; cameras found: {names}")
    return devices[index].name


class WebcamSource(_PyAVSource):
    """A local camera through the platform's FFmpeg input device.

    Args:
        spec: ``webcam:N``, ``webcam:NAME`` or ``/dev/videoN``.
        fps: requested frame rate (FFmpeg option ``framerate``) unless `options` sets it.
        options: device options such as ``video_size="640x480"``, ``framerate="30"``,
            ``input_format="mjpeg"``.
        platform: ``sys.platform`` by default; decides the input device.

    Time is the device timestamp relative to the first frame, or, for a device that gives
    none, the monotonic time since `open()`.
    """

    kind = "webcam"
    is_live = True
    default_policy = POLICY_LATEST
    _time_from_stream_start = False

    def __init__(self, spec: str, *, fps: float | None = None, options: dict[str, str] | None = None,
                 platform: str | None = None):
        options = dict(options or {})
        if fps is not None:
            options.setdefault("framerate", f"{fps:g}")
        super().__init__(spec, fps=fps, options=options)
        self.spec = spec
        self.platform = platform or sys.platform
        self.device: str | None = None
        self.input_format: str | None = None
        if not self.platform.startswith("win"):
            # Validate now; on Windows resolving an index lists devices, which waits for open().
            self.device, self.input_format = parse_webcam_spec(spec, self.platform)
        self._opened_at = time.monotonic()

    def _describe(self) -> str:
        return f"webcam {self.spec!r}"

    def _open_container(self):
        if self.device is None:
            self.device, self.input_format = parse_webcam_spec(self.spec, self.platform)
        self._opened_at = time.monotonic()
        try:
            return av.open(self.device, mode="r", format=self.input_format, options=self.options)
        except (av.FFmpegError, OSError, ValueError) as e:
            reason = _reason(e)
            if isinstance(e, ValueError) and "container format" in str(e):
                reason = f"this FFmpeg build has no {self.input_format!r} input device"
            raise SourceError(f"cannot open webcam {self.spec!r} ({self.device}): {reason}") from e

    def _time_without_pts(self, av_frame, previous, time_base) -> float:
        return time.monotonic() - self._opened_at

