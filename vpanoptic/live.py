"""`run_live`: a camera, stream or file shown live with its panoptic overlay.

    source ──latest frame──▶ model ──▶ tracker ──▶ WindowSink (window or headless MP4)
                                                  [+ the outputs of cfg.output.save]

Live means the newest frame wins: the frame policy is ``latest`` unless the config says
otherwise and the queues between the stages hold one frame (`LIVE_QUEUE_SIZE`), so latency
stays bounded whatever the speed of the model, the tracker or the display, and every frame
that is skipped is counted. A file is played at its native rate, as a
camera would deliver it (`realtime`). Network streams reconnect after drops (see
`vpanoptic.io.av_sources.StreamSource`); the tracker keeps its ids across a reconnection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .config import RunConfig
from .errors import UserError
from .io.source_base import Source
from .job import build_job
from .models.base import PanopticModel
from .sinks.window import Cv2Window, DisplayBackend, VideoFileDisplay, WindowSink, check_display
from .types import PanopticFrame

__all__ = ["LIVE_POLICY", "LIVE_QUEUE_SIZE", "run_live"]

#: Frame policy of a live run unless the config names one.
LIVE_POLICY = "latest"
#: Bound of the queues between the stages of a live run: a frame finished by one stage
#: waits for at most one other, so a slow tracker or display cannot build a backlog either.
LIVE_QUEUE_SIZE = 1


def run_live(
    source: str | os.PathLike | Source,
    cfg: RunConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    headless: str | os.PathLike | None = None,
    display: DisplayBackend | None = None,
    model: PanopticModel | None = None,
    realtime: bool = True,
    duration_s: float | None = None,
    snapshot_dir: str | os.PathLike | None = None,
    on_frame: Callable[[PanopticFrame], None] | None = None,
) -> dict:
    """Show `source` live with its overlay until it ends, the user quits or `duration_s` pass.

    The job of `vpanoptic.job.build_job` with a display sink in front of the file sinks,
    the ``latest`` frame policy (unless ``cfg.input.policy`` names one) and one-frame queues.

    Args:
        source: a spec for `vpanoptic.io.sources.open_source` (``webcam:0``, ``rtsp://...``,
            a file) or a `Source` (e.g. a `LiveSource`).
        cfg: run configuration; `cfg.output.save` outputs are written only with `out_dir`.
        out_dir: folder for ``summary.json`` and the saved outputs; None = nothing saved.
        headless: write the displayed pictures to this MP4 instead of opening a window.
        display: a `DisplayBackend` to use instead (overrides `headless`).
        model: a ready model (not closed here); None = build ``cfg.model``.
        realtime: play a file at its native rate, like a camera.
        duration_s: stop after this many seconds (None = until the end or quit).
        snapshot_dir: where the snapshot key saves PNGs (default `out_dir`, else ".").
        on_frame: called on the display thread with each finished frame.

    Returns the summary dict (also written to ``out_dir/summary.json``): `run_video`'s keys
    plus ``display`` (display latency percentiles, frames shown, snapshots, quit).
    """
    if duration_s is not None and not duration_s > 0:
        raise UserError(f"duration is {duration_s}; expected seconds > 0")
    if display is None and headless is None:
        check_display()  # before the camera and the model: fail fast, in one line
    windows: list[WindowSink] = []

    def display_sink(src: Source) -> list[WindowSink]:  # the display first: files must not delay it
        backend = display or (VideoFileDisplay(headless, fps=src.fps or 30.0) if headless is not None else Cv2Window())
        try:
            windows.append(WindowSink(backend, snapshot_dir=snapshot_dir or out_dir or "."))
        except BaseException:
            backend.close()
            raise
        return windows

    with build_job(source, cfg, out_dir=out_dir, sinks=display_sink, model=model, policy=LIVE_POLICY,
                   queue_size=LIVE_QUEUE_SIZE, realtime=realtime, on_frame=on_frame) as job:
        window = windows[0]
        window.on_quit = job.pipeline.stop
        timer = None
        if duration_s is not None:
            timer = threading.Timer(duration_s, job.pipeline.stop)
            timer.daemon = True
            timer.start()
        try:
            return job.run(extra=lambda: {"display": _closed_summary(window)})
        finally:
            if timer is not None:
                timer.cancel()


def _closed_summary(window: WindowSink) -> dict:
    window.close()  # flushes a headless file before its numbers are read
    return window.summary()
