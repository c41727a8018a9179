"""`run_video`: the main job (config → source, model, tracker, sinks → pipeline → summary).

This is the one place where a `RunConfig` is translated into components; the CLI and the
Python API both go through it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable

from .config import InputConfig, RunConfig, TrackerConfig, config_to_dict
from .errors import StageError, UserError
from .io.sources import Source, StreamSource, open_source, source_kind
from .models.base import PanopticModel
from .models.registry import build_model
from .pipeline import Pipeline
from .runtime import configure_threads
from .sinks import build_sinks
from .tracking import Tracker, build_tracker
from .types import PanopticFrame

__all__ = ["open_input", "open_source_and_model", "run_video", "tracker_from_config", "write_json_atomic"]

SUMMARY_NAME = "summary.json"


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to a temporary name, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def open_input(spec: str, cfg: InputConfig) -> Source:
    """An unopened source for `spec` (see `open_source`) set up from `cfg`.

    `cfg.fps` is the rate of image folders (and of frames without timestamps); a webcam gets
    its own rate unless ``cfg.options`` asks for one (``framerate``). Network streams get
    `cfg`'s reconnection settings.
    """
    options = {str(k): str(v) for k, v in cfg.options.items()} or None
    fps = None if source_kind(spec) == "webcam" else cfg.fps
    source = open_source(spec, fps=fps, options=options)
    if isinstance(source, StreamSource):
        source = StreamSource(source.url, fps=cfg.fps, options=source.options, reconnect=cfg.reconnect,
                              read_timeout_s=cfg.stall_timeout_s, stall_timeout_s=cfg.stall_timeout_s,
                              give_up_s=cfg.reconnect_give_up_s)
    return source


def open_source_and_model(
    spec: str | Source, cfg: RunConfig, model: PanopticModel | None = None
) -> tuple[Source, PanopticModel, bool]:
    """Open the input first (input errors before a model is loaded), then build the model.

    `spec` is a source spec (see `open_input`) or a ready `Source`; `model` a ready model to
    use instead of building `cfg.model`. Returns (opened source, model, whether the caller
    owns the model and must close it). On failure the source is closed again.
    """
    source = spec if isinstance(spec, Source) else open_input(spec, cfg.input)
    source.open()
    if model is not None:
        return source, model, False
    try:
        hint = None if isinstance(spec, Source) else spec  # lets the oracle find gt/ beside a clip
        return source, build_model(cfg.model.name, device=cfg.model.device, input=hint, **cfg.model.options), True
    except BaseException:
        source.close()
        raise


def tracker_from_config(cfg: TrackerConfig, device) -> Tracker | None:
    """The tracker `cfg` names (None for "none"), every other field as a keyword argument."""
    if cfg.name == "none":
        return None
    params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "name"}
    return build_tracker(cfg.name, device=device, **params)


def run_video(
    input: str,
    out_dir: str | Path,
    cfg: RunConfig | None = None,
    *,
    progress: bool = False,
    on_frame: Callable[[PanopticFrame], None] | None = None,
    model: PanopticModel | None = None,
) -> dict:
    """Segment and track `input` (file, image folder, webcam, stream) into `out_dir`.

    Writes the outputs named in `cfg.output.save` and `summary.json` (also after a failure or
    Ctrl-C, with `"status"` saying so). Returns the summary dict. Raises `UserError` for bad
    input or config, `StageError` if a stage fails, KeyboardInterrupt when interrupted.
    `model`: a ready model to use (and leave open) instead of building `cfg.model`.
    """
    cfg = cfg or RunConfig()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path exists and is not a directory: {out_dir}")
    threads = configure_threads(cfg.model.threads)
    # a model passed in serves several runs: not closed here
    source, model, own_model = open_source_and_model(input, cfg, model)
    try:
        tracker = tracker_from_config(cfg.tracker, model.device)
        out_dir.mkdir(parents=True, exist_ok=True)
        sinks = build_sinks(cfg.output.save, out_dir, fps=source.fps or 30.0, crf=cfg.output.video_crf)

        bar = None

        def frame_done(pf: PanopticFrame) -> None:
            nonlocal bar
            if progress:
                if bar is None:
                    from tqdm import tqdm

                    total = source.num_frames
                    if cfg.input.max_frames is not None and total is not None:
                        total = min(total, cfg.input.max_frames)
                    bar = tqdm(total=total, unit="frame", desc=Path(str(input)).name or str(input), dynamic_ncols=True)
                bar.update(1)
            if on_frame is not None:
                on_frame(pf)

        pipeline = Pipeline(
            source,
            model,
            tracker,
            sinks,
            policy=cfg.input.policy,
            queue_size=cfg.input.queue_size,
            batch_size=cfg.model.batch_size,
            realtime=cfg.input.realtime,
            max_frames=cfg.input.max_frames,
            on_frame=frame_done,
        )
        status = "ok"
        started = time.time()
        try:
            pipeline.run()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except StageError as err:
            status = f"failed: {err}"
            raise
        finally:
            if bar is not None:
                bar.close()
            summary = {
                "status": status,
                "input": str(input),
                "source": getattr(source, "kind", None),
                "model": cfg.model.name,
                "device": str(model.device),
                "torch_threads": threads,
                "policy": str(getattr(pipeline, "policy", cfg.input.policy)),
                "started_unix": round(started, 3),
                **pipeline.stats.summary(),
                "outputs": sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")),
                "config": config_to_dict(cfg),
            }
            write_json_atomic(out_dir / SUMMARY_NAME, summary)
        return summary
    finally:
        if own_model:
            model.close()
