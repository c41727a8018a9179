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
import time
from pathlib import Path
from typing import Callable

from .config import RunConfig, config_to_dict
from .errors import StageError, UserError
from .io.source_base import Source
from .models.base import PanopticModel
from .pipeline import Pipeline
from .runner import SUMMARY_NAME, open_source_and_model, tracker_from_config, write_json_atomic
from .runtime import configure_threads
from .sinks import build_sinks
from .sinks.window import Cv2Window, DisplayBackend, VideoFileDisplay, WindowSink, check_display
from .types import PanopticFrame

__all__ = ["LIVE_POLICY", "run_live"]

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
    cfg = cfg or RunConfig()
    if duration_s is not None and not duration_s > 0:
        raise UserError(f"duration is {duration_s}; expected seconds > 0")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"output path exists and is not a directory: {out}")
    if display is None and headless is None:
        check_display()  # before the camera and the model: fail fast, in one line
    threads = configure_threads(cfg.model.threads)
    spec = source if isinstance(source, Source) else os.fspath(source)
    src, model, own_model = open_source_and_model(spec, cfg, model)
    backend = window = None
    try:
        backend = display or (VideoFileDisplay(headless, fps=src.fps or 30.0) if headless is not None else Cv2Window())
        tracker = tracker_from_config(cfg.tracker, model.device)
        sinks = []
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            sinks = build_sinks(cfg.output.save, out, fps=src.fps or 30.0, crf=cfg.output.video_crf)
        window = WindowSink(backend, snapshot_dir=snapshot_dir or out or ".")
        pipeline = Pipeline(
            src, model, tracker, [window, *sinks],  # the display first: files must not delay it
            policy=cfg.input.policy or LIVE_POLICY,
            queue_size=LIVE_QUEUE_SIZE,
            batch_size=cfg.model.batch_size,
            realtime=realtime,
            max_frames=cfg.input.max_frames,
            on_frame=on_frame,
        )
        window.on_quit = pipeline.stop
        timer = None
        if duration_s is not None:
            timer = threading.Timer(duration_s, pipeline.stop)
            timer.daemon = True
        status = "ok"
        started = time.time()
        try:
            if timer is not None:
                timer.start()
            pipeline.run()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except StageError as err:
            status = f"failed: {err}"
            raise
        finally:
            if timer is not None:
                timer.cancel()
            window.close()
            summary = {
                "status": status,
                "input": getattr(src, "name", str(spec)),
                "source": getattr(src, "kind", None),
                "model": cfg.model.name if own_model else type(model).__name__,
                "device": str(model.device),
                "torch_threads": threads,
                "policy": str(getattr(pipeline, "policy", cfg.input.policy or LIVE_POLICY)),
                "started_unix": round(started, 3),
                **pipeline.stats.summary(),
                "display": window.summary(),
                "config": config_to_dict(cfg),
            }
            if out is not None:
                summary["outputs"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
                write_json_atomic(out / SUMMARY_NAME, summary)
        return summary
    finally:
        if window is None and backend is not None:
            backend.close()  # else the sink closed it
        src.close()
        if own_model:
            model.close()


def main_from_args(args) -> int:
    """`vpanoptic live`: parse the arguments into a config, run, print one summary line."""
    from .config import load_config

    flags = {
        "model.name": args.model,
        "model.device": args.device,
        "output.save": args.save,
        "input.policy": args.policy,
        "input.max_frames": args.max_frames,
        "model.threads": args.threads,
    }
    if args.save is None and not any(o.startswith("output.save=") for o in args.set) and args.config is None:
        flags["output.save"] = []  # live: nothing saved unless asked
    cfg = load_config(args.config, args.set, flags)
    if args.save and args.output is None:
        raise UserError("--save needs an output folder: add -o OUT")
    summary = run_live(args.input, cfg, out_dir=args.output, headless=args.headless,
                       realtime=not args.no_realtime, duration_s=args.duration)
    lat, shown = summary["latency_ms"], summary["display"]["display_latency_ms"]
    where = f" → {args.headless}" if args.headless else ""
    print(
        f"{summary['frames']} frames in {summary['wall_time_s']:.1f} s ({summary['fps']} FPS), "
        f"latency capture→display p50 {shown['p50']} / p95 {shown['p95']} ms (end of sinks p95 {lat['p95']} ms), "
        f"dropped {summary['dropped']}, reconnects {summary['reconnects']}{where}"
    )
    return 0
