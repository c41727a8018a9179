"""Sources decoded by FFmpeg through PyAV: video files, network streams and webcams.

All three share one decode loop (`vpanoptic.io.av_decode.PyAVSource`); here they differ in
how they open their input and treat a lost connection: a `StreamSource` can reconnect with
back-off after a drop or a stall (see its docstring).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from urllib.parse import urlsplit, urlunsplit

import av
import av.device

from ..errors import SourceError
from .av_decode import LAST_RESORT_FPS, MAX_CONSECUTIVE_READ_ERRORS, TEXT_DEMUXERS  # noqa: F401 (re-exported)
from .av_decode import PyAVSource as _PyAVSource
from .av_decode import reason_of as _reason
from .source_base import POLICY_EVERY, POLICY_LATEST, POLICY_STREAM, Source  # noqa: F401

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
#: Reconnection of a dropped or stalled stream (`StreamSource(reconnect=True)`): the first
#: retry waits BACKOFF_INITIAL_S, each failure multiplies the wait by BACKOFF_FACTOR up to
#: BACKOFF_MAX_S; after RECONNECT_GIVE_UP_S without a connection the stream is lost.
BACKOFF_INITIAL_S = 0.25
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 4.0
RECONNECT_GIVE_UP_S = 30.0


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
        read_timeout_s: seconds to wait for each packet once connected; longer silence is a
            lost connection.
        reconnect: False: losing the connection raises `SourceError` from the iterator.
            True: a drop (read error, end of a live stream, silence past `read_timeout_s`)
            or a stall (packets but no decoded frame for `stall_timeout_s`, the watchdog)
            closes the connection and opens a new one, waiting `backoff_initial_s`, then
            `backoff_factor` times longer after each failure, at most `backoff_max_s`;
            `SourceError` once `give_up_s` pass without a connection.
        stall_timeout_s: watchdog limit; None = `read_timeout_s`.

    Across a reconnection the frames go on as one sequence: `Frame.index` keeps counting
    and `Frame.time` continues one frame interval after the last frame before the drop
    (the outage is not media time), so a tracker downstream keeps its ids. Only live streams
    (no known duration) reconnect, and they never end by themselves then: a recording served
    over the network (an HTTP MP4) ends at its end, and losing it raises as without
    `reconnect` (reading it again would start from its beginning). `reconnects` counts the
    successful reconnections.
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
        reconnect: bool = False,
        stall_timeout_s: float | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_factor: float = BACKOFF_FACTOR,
        backoff_max_s: float = BACKOFF_MAX_S,
        give_up_s: float = RECONNECT_GIVE_UP_S,
    ):
        super().__init__(url, fps=fps, options={**default_stream_options(url), **(options or {})})
        stall_timeout_s = read_timeout_s if stall_timeout_s is None else stall_timeout_s
        for key, value in (("open_timeout_s", open_timeout_s), ("read_timeout_s", read_timeout_s),
                           ("backoff_initial_s", backoff_initial_s), ("backoff_max_s", backoff_max_s),
                           ("give_up_s", give_up_s), ("stall_timeout_s", stall_timeout_s)):
            if not value > 0:
                raise SourceError(f"{key} is {value} for {_redact(url)}; expected seconds > 0")
        if not backoff_factor >= 1:
            raise SourceError(f"backoff_factor is {backoff_factor} for {_redact(url)}; expected >= 1")
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.reconnect = bool(reconnect)
        self.stall_timeout_s = float(stall_timeout_s)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_factor = float(backoff_factor)
        self.backoff_max_s = float(backoff_max_s)
        self.give_up_s = float(give_up_s)
        self.reconnects = 0
        self._closing = threading.Event()  # set by close(): ends back-off waits at once
        self._drop_reason: str | None = None

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
        if not self._reconnecting():
            raise SourceError(f"lost {self._describe()}: {reason}") from error
        self._drop_reason = reason
        return False  # drain the decoder; `_frames` then reconnects

    def _reconnecting(self) -> bool:
        """Whether a drop of the current connection is followed by a reconnection (caller holds the lock).

        Only live streams (no known duration) reconnect: a recording served over the network
        would start again from its beginning.
        """
        live = self._container is None or self._container.duration is None
        return self.reconnect and live and not self._closing.is_set()

    # ------------------------------------------------------------------ reconnection
    def open(self) -> None:
        if self._container is None:
            self._closing.clear()
        super().open()

    def close(self) -> None:
        self._closing.set()  # before the lock: a back-off wait or a reconnect gives up now
        super().close()

    def _frames(self) -> Iterator[av.VideoFrame]:
        last_frame = time.monotonic()
        while True:
            batch = self._decode_next()
            if batch is None:  # this connection ended (end of data, drop or watchdog)
                with self._lock:
                    again = self._reconnecting()
                if not again or not self._reconnect(self._drop_reason or "the server ended the stream"):
                    return
                last_frame = time.monotonic()
                continue
            if batch:
                last_frame = time.monotonic()
                yield from batch
            elif self.reconnect and time.monotonic() - last_frame > self.stall_timeout_s:
                # Watchdog: data arrives but no frame has decoded for too long.
                with self._lock:
                    if self._ended or self._stream is None or not self._reconnecting():
                        continue
                    self._drop_reason = f"no frame for {self.stall_timeout_s:g} s"
                    tail = self._flush()
                yield from tail

    def _reconnect(self, reason: str) -> bool:
        """Open a new connection with back-off; False if closed meanwhile.

        Raises `SourceError` after `give_up_s` seconds without a connection.
        """
        log.warning("%s dropped (%s); reconnecting", self._describe(), reason)
        rate = self._stream.average_rate if self._stream is not None else None
        interval = 1 / Fraction(rate or self.fps or self._fallback_fps or LAST_RESORT_FPS).limit_denominator(1001000)
        next_time = self._time_offset if self._previous_time is None else self._previous_time + interval
        with self._lock:
            self._release()
        started = time.monotonic()
        delay = self.backoff_initial_s
        attempts = 0
        while not self._closing.wait(delay):
            attempts += 1
            try:
                container, stream = self._open_checked()
            except SourceError as e:
                waited = time.monotonic() - started
                if waited + delay >= self.give_up_s:
                    raise SourceError(f"lost {self._describe()} ({reason}); {attempts} reconnection "
                                      f"attempts in {waited:.0f} s failed, the last: {e}") from e
                delay = min(delay * self.backoff_factor, self.backoff_max_s)
                continue
            with self._lock:
                if self._closing.is_set():
                    container.close()
                    return False
                self._install(container, stream)
                self._start_timeline(offset=next_time)
            self.reconnects += 1
            self._drop_reason = None
            log.warning("%s reconnected after %.1f s (%d attempts)", self._describe(),
                        time.monotonic() - started, attempts)
            return True
        return False


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

