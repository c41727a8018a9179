"""The live display: a sink that shows each tracked frame with its overlay and a HUD.

`WindowSink` draws `viz.overlay` (colour fill, contours, labels: each a layer the user can
toggle) plus a heads-up display — display FPS, model time, end-to-end latency (capture →
display) and dropped frames — and hands the picture to a *backend*:

- `Cv2Window`: an OpenCV HighGUI window (``cv2.imshow`` / ``cv2.waitKey``);
- `VideoFileDisplay`: headless, the same pictures encoded to an MP4 at their display times;
- anything with the same three methods (tests inject a fake window).

The pipeline drives the sink like any other, on the caller's thread; `cv2.imshow` and
`cv2.waitKey` must stay on one thread, so `write()` refuses to be called from a second one.

Keys (see `KEYS`): ``q`` / Esc quit, space / ``p`` pause, ``s`` snapshot (PNG), ``f`` colour
fill, ``c`` contours, ``l`` labels, ``h`` HUD.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from .. import viz
from ..errors import UserError
from ..types import PanopticFrame
from .base import Sink

__all__ = ["KEYS", "Cv2Window", "DisplayBackend", "VideoFileDisplay", "WindowSink", "check_display"]

#: Key code → action.
KEYS: dict[int, str] = {
    ord("q"): "quit", 27: "quit", ord(" "): "pause", ord("p"): "pause", ord("s"): "snapshot",
    ord("f"): "fill", ord("c"): "contours", ord("l"): "labels", ord("h"): "hud",
}  # fmt: skip
#: Overlay layers a key can toggle, all on at the start.
LAYERS = ("fill", "contours", "labels", "hud")
#: Display latencies kept for percentiles (bounded memory).
LATENCY_WINDOW = 100_000
#: Smoothing of the HUD's FPS and latency readings (weight of the newest value).
HUD_SMOOTHING = 0.1

_FONT = cv2.FONT_HERSHEY_SIMPLEX


class DisplayBackend(Protocol):
    """Where the pictures go. `show` takes ``(H, W, 3) uint8`` BGR; `poll_key` returns a key code or -1."""

    def show(self, image_bgr: np.ndarray) -> None: ...

    def poll_key(self, wait_ms: int) -> int: ...

    def close(self) -> None: ...


def check_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> None:
    """Raise `UserError` when no window can be opened: Linux/BSD without X11 or Wayland.

    OpenCV's Qt backend aborts the whole process (no exception) when it finds no display,
    so this is checked before the first window.
    """
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform.startswith(("win", "darwin")):
        return
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); "
                        "use --headless OUT.mp4")


class Cv2Window:
    """An OpenCV window titled `title`, created on the first `show`."""

    def __init__(self, title: str = "vpanoptic"):
        self.title = title
        self._open = False

    def show(self, image_bgr: np.ndarray) -> None:
        if not self._open:
            check_display()
        try:
            if not self._open:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                self._open = True
            cv2.imshow(self.title, image_bgr)
        except cv2.error as e:
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else "cv2.error"
            raise UserError(f"cannot open a window ({reason}); no display here? use --headless OUT.mp4") from e

    def poll_key(self, wait_ms: int) -> int:
        if not self._open:
            return -1
        key = cv2.waitKey(max(1, int(wait_ms)))
        return -1 if key < 0 else key & 0xFF

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # lets HighGUI process the destroy event
            except cv2.error:
                pass


class VideoFileDisplay:
    """Headless display: pictures encoded to an H.264 MP4 at their display (wall-clock) times.

    Args:
        path: output ``.mp4`` (fragmented, playable up to the last keyframe if killed).
        fps: nominal rate for the encoder's rate control.
        crf: x264 quality, 0 (lossless) .. 51.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0, crf: int = 23):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"display fps is {fps}; expected a number > 0")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.frames_written = 0
        self._container: Any = None  # av OutputContainer once the first frame arrives
        self._stream: Any = None
        self._t0: float = 0.0
        self._last_pts = -1

    def show(self, image_bgr: np.ndarray) -> None:
        import av

        now = time.monotonic()
        image = np.ascontiguousarray(image_bgr[: image_bgr.shape[0] // 2 * 2, : image_bgr.shape[1] // 2 * 2])
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.path), "w", format="mp4",
                                      options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
            stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001000))
            stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
            stream.options = {"crf": str(self.crf), "preset": "veryfast", "bf": "0"}
            self._stream, self._t0 = stream, now
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        self._last_pts = max(self._last_pts + 1, round((now - self._t0) * 1000))
        frame.pts, frame.time_base = self._last_pts, Fraction(1, 1000)
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def poll_key(self, wait_ms: int) -> int:
        return -1

    def close(self) -> None:
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is not None:
            try:
                container.mux(stream.encode(None))
            finally:
                container.close()


class WindowSink(Sink):
    """Shows each frame with its overlay and HUD on a `DisplayBackend`; handles the keys.

    Args:
        backend: `Cv2Window()`, `VideoFileDisplay(path)` or any `DisplayBackend`.
        on_quit: called once when the user quits (e.g. `Pipeline.stop`).
        snapshot_dir: where ``s`` saves ``snapshot_<frame>.png``.
        alpha: opacity of the colour fill, in [0, 1].
        key_wait_ms: how long each `write` waits for a key (>= 1; HighGUI draws meanwhile).
        min_label_fraction: things smaller than this fraction of the frame get no label.

    After `close()`, `summary()` gives the display statistics (``displayed``,
    ``display_latency_ms`` percentiles of capture → shown, ``snapshots``, ``quit``).
    """

    name = "window"

    def __init__(
        self,
        backend: DisplayBackend,
        *,
        on_quit: Callable[[], None] | None = None,
        snapshot_dir: str | os.PathLike = ".",
        alpha: float = 0.5,
        key_wait_ms: int = 1,
        min_label_fraction: float = 0.001,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"window alpha is {alpha}; expected 0 <= alpha <= 1")
        if key_wait_ms < 1:
            raise ValueError(f"key_wait_ms is {key_wait_ms}; expected >= 1")
        self.backend = backend
        self.on_quit = on_quit
        self.snapshot_dir = Path(snapshot_dir)
        self.alpha = float(alpha)
        self.key_wait_ms = int(key_wait_ms)
        self.min_label_fraction = float(min_label_fraction)
        self.layers = {name: True for name in LAYERS}
        self.paused = False
        self.quit_requested = False
        self.snapshots: list[Path] = []
        self.received = 0  # frames given to write()
        self.displayed = 0  # frames shown (not paused, not after quit)
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)  # capture → shown, seconds
        self._first_index: int | None = None
        self._last_index = -1
        self._fps: float | None = None
        self._latency: float | None = None
        self._last_shown: float | None = None
        self._picture: np.ndarray | None = None  # the last composed picture, BGR
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ frames
    @property
    def dropped(self) -> int:
        """Frames the source captured that never reached the display (gaps in `Frame.index`)."""
        if self._first_index is None:
            return 0
        return max(0, self._last_index - self._first_index + 1 - self.received)

    def write(self, pf: PanopticFrame) -> None:
        if self._thread is None:
            self._thread = threading.current_thread()
        elif threading.current_thread() is not self._thread:
            raise RuntimeError("WindowSink.write called from a second thread; HighGUI needs one thread")
        if self._closed or self.quit_requested:
            return
        self.received += 1
        if self._first_index is None:
            self._first_index = pf.frame.index
        self._last_index = max(self._last_index, pf.frame.index)
        if not self.paused:
            self._picture = self.compose(pf)
            self.backend.show(self._picture)
            shown = time.monotonic()
            latency = shown - pf.frame.capture_time
            self.latencies.append(latency)
            self._latency = _smooth(self._latency, latency)
            if self._last_shown is not None and shown > self._last_shown:
                self._fps = _smooth(self._fps, 1.0 / (shown - self._last_shown))
            self._last_shown = shown
            self.displayed += 1
        self._handle(self.backend.poll_key(self.key_wait_ms), pf)

    def compose(self, pf: PanopticFrame) -> np.ndarray:
        """The picture for `pf`: overlay with the enabled layers and the HUD, ``(H, W, 3) uint8`` BGR."""
        rgb = viz.overlay(
            pf,
            alpha=self.alpha if self.layers["fill"] else 0.0,
            labels=self.layers["labels"],
            contours=self.layers["contours"],
            min_label_fraction=self.min_label_fraction,
        )
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.layers["hud"]:
            self._draw_hud(bgr, pf)
        return bgr

    def hud_lines(self, pf: PanopticFrame) -> list[str]:
        """The HUD text for `pf` (what `compose` draws)."""
        fps = f"{self._fps:.1f}" if self._fps is not None else "-"
        model = pf.timings.get("inference")
        model_ms = f"{model * 1000:.0f} ms" if model is not None else "-"
        latency = f"{self._latency * 1000:.0f} ms" if self._latency is not None else "-"
        lines = [f"FPS {fps}  model {model_ms}", f"latency {latency}  dropped {self.dropped}"]
        if self.paused:
            lines.append("PAUSED (space)")
        return lines

    def _draw_hud(self, image: np.ndarray, pf: PanopticFrame) -> None:
        scale = max(0.4, min(image.shape[:2]) / 720.0 * 0.7)
        thickness = 1 if scale < 0.6 else 2
        y = 0
        for text in self.hud_lines(pf):
            (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
            y += th + base + 4
            cv2.rectangle(image, (0, y - th - base - 4), (tw + 8, y + 2), (0, 0, 0), -1)
            cv2.putText(image, text, (4, y - base), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)

    # ------------------------------------------------------------------ keys
    def _handle(self, key: int, pf: PanopticFrame) -> None:
        action = KEYS.get(key)
        if action is None:
            return
        if action == "quit":
            self.quit_requested = True
            if self.on_quit is not None:
                self.on_quit()
        elif action == "pause":
            self.paused = not self.paused
            if self.paused and self._picture is not None:  # `pf` is on screen: add the PAUSED mark
                self._picture = self.compose(pf)
                self.backend.show(self._picture)
        elif action == "snapshot":
            self.snapshot(pf.frame.index)
        else:
            self.layers[action] = not self.layers[action]

    def snapshot(self, index: int) -> Path | None:
        """Save the picture on screen as ``snapshot_<index>.png``; None if nothing was shown."""
        if self._picture is None:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.snapshot_dir / f"snapshot_{index:06d}.png"
        if not cv2.imwrite(str(path), self._picture):
            raise OSError(f"cannot write snapshot {path}")
        self.snapshots.append(path)
        return path

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.backend.close()

    def summary(self) -> dict:
        lat = np.asarray(self.latencies, dtype=np.float64) * 1000.0

        def pct(q: float):
            return round(float(np.percentile(lat, q)), 3) if lat.size else None

        return {
            "displayed": self.displayed,
            "display_latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                                   "max": round(float(lat.max()), 3) if lat.size else None},
            "dropped_before_display": self.dropped,
            "snapshots": [str(p) for p in self.snapshots],
            "quit": self.quit_requested,
        }


def _smooth(previous: float | None, value: float) -> float:
    return value if previous is None else (1.0 - HUD_SMOOTHING) * previous + HUD_SMOOTHING * value
