"""The job: a `RunConfig` turned into components, in one place, and run by one frame loop.

    build_job(input, cfg, ...) -> Job     config → threads, source, model, tracker, sinks, Pipeline
    Job.run() -> summary dict             the Pipeline, status handling, summary.json
    run_video(input, out_dir, cfg)        the `run` command: the job with the file sinks

`vpanoptic.live` (a display sink first, the newest frame wins), `vpanoptic.batch` (`run_video`
in worker processes) and `vpanoptic.experiment` (a scoring sink, no tracker in the loop) are
this job with other sources, sinks and policies; another backend (e.g. a worker on a cluster)
calls `build_job` the same way. The thread defaults of every entry point are set here
(`set_thread_defaults`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import InputConfig, RunConfig, TrackerConfig, config_to_dict
from .errors import StageError, UserError
from .io.sources import Source, StreamSource, open_source, source_kind
from .models.base import PanopticModel
from .models.registry import build_model
from .pipeline import Pipeline
from .runtime import configure_threads
from .sinks import Sink, build_sinks
from .tracking import Tracker, build_tracker
from .types import PanopticFrame

__all__ = [
    "Job",
    "build_job",
    "open_input",
    "run_video",
    "set_thread_defaults",
    "tracker_from_config",
    "tracker_kwargs",
    "write_json_atomic",
]

SUMMARY_NAME = "summary.json"

#: What `build_job` accepts as its first sinks: sinks, or a function of the opened source
#: that makes them (a display needs the source's frame rate).
SinkFactory = Callable[[Source], Sequence[Sink]]


def set_thread_defaults(threads: int = 0) -> int:
    """torch / OpenCV / BLAS threads for a run: `threads`, or (0) the measured default.

    Every entry point calls this (through `build_job`, or directly where it has no
    source: `vpanoptic track`, `vpanoptic train`), so all of them run with the same threads.
    Returns the number of torch intra-op threads set.
    """
    return configure_threads(threads)


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


def tracker_kwargs(cfg: TrackerConfig) -> dict[str, Any]:
    """The keyword arguments of `build_tracker` that `cfg` stands for (every field but `name`)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "name"}


def tracker_from_config(cfg: TrackerConfig, device=None, **overrides) -> Tracker | None:
    """The tracker `cfg` names (None for "none"): the one place a tracker is built from config.

    `overrides` replace fields of `cfg` for this build (e.g. ``camera_motion=False`` where
    no images exist).
    """
    if cfg.name == "none":
        return None
    return build_tracker(cfg.name, device=device, **{**tracker_kwargs(cfg), **overrides})


class Job:
    """A built job: its components and the `Pipeline` that runs them; close it when done.

    Attributes: `cfg`, `source` (opened), `model`, `tracker` (None = the model's ids),
    `sinks` (the first ones given to `build_job`, then the file sinks), `pipeline`,
    `threads` (torch threads set), `out_dir` (None: no files, no summary.json).
    """

    pipeline: Pipeline  # set by build_job once the components exist

    def __init__(self, *, name: str, cfg: RunConfig, source: Source, model: PanopticModel, own_model: bool,
                 model_name: str, threads: int, out_dir: Path | None, progress: bool,
                 on_frame: Callable[[PanopticFrame], None] | None):
        self.name, self.cfg, self.source, self.model = name, cfg, source, model
        self.own_model, self.model_name, self.threads, self.out_dir = own_model, model_name, threads, out_dir
        self.tracker: Tracker | None = None
        self.sinks: list[Sink] = []
        self.summary: dict | None = None
        self._progress, self._on_frame = progress, on_frame
        self._bar: Any = None  # tqdm, made with the first frame
        self.policy: str | None = None  # as asked; the pipeline resolves None to the source's default
        self._ran = False

    def _frame_done(self, pf: PanopticFrame) -> None:
        if self._progress:
            if self._bar is None:
                from tqdm import tqdm

                total, limit = self.source.num_frames, self.cfg.input.max_frames
                if limit is not None and total is not None:
                    total = min(total, limit)
                self._bar = tqdm(total=total, unit="frame", desc=Path(self.name).name or self.name,
                                 dynamic_ncols=True)
            self._bar.update(1)
        if self._on_frame is not None:
            self._on_frame(pf)

    def run(self, extra: Callable[[], dict] | None = None) -> dict:
        """Run the pipeline to the end; returns the summary (also in ``out_dir/summary.json``).

        The summary is written after a failure or Ctrl-C too, ``"status"`` saying so; `extra`
        adds keys to it, evaluated once the run has ended. ``"warnings"`` lists what the model
        said about this input (its ``warnings`` attribute, e.g. footage outside what it knows).
        Raises `StageError` if a stage failed, KeyboardInterrupt when interrupted.
        """
        assert hasattr(self, "pipeline"), "build the job with build_job()"
        self._ran = True
        status = "ok"
        started = time.time()
        try:
            self.pipeline.run()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except StageError as err:
            status = f"failed: {err}"
            raise
        finally:
            if self._bar is not None:
                self._bar.close()
            summary = {
                "status": status,
                "input": self.name,
                "source": getattr(self.source, "kind", None),
                "model": self.model_name,
                "device": str(self.model.device),
                "torch_threads": self.threads,
                "policy": str(getattr(self.pipeline, "policy", self.policy)),
                "started_unix": round(started, 3),
                **self.pipeline.stats.summary(),
                **(extra() if extra is not None else {}),
                "warnings": [str(w) for w in getattr(self.model, "warnings", None) or ()],
                "config": config_to_dict(self.cfg),
            }
            if self.out_dir is not None:
                summary["outputs"] = sorted(p.name for p in self.out_dir.iterdir() if not p.name.startswith("."))
                write_json_atomic(self.out_dir / SUMMARY_NAME, summary)
            self.summary = summary
        return summary

    def close(self) -> None:
        """Release what the job holds: the sinks (if it never ran), the source, a model it built."""
        try:
            if not self._ran:
                for sink in self.sinks:
                    sink.close()
            self.source.close()
        finally:
            if self.own_model:
                self.model.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_job(
    input: str | os.PathLike | Source,
    cfg: RunConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    sinks: Sequence[Sink] | SinkFactory = (),
    model: PanopticModel | None = None,
    model_name: str | None = None,
    policy: str | None = None,
    queue_size: int | None = None,
    realtime: bool | None = None,
    progress: bool = False,
    on_frame: Callable[[PanopticFrame], None] | None = None,
) -> Job:
    """Build the job `cfg` describes on `input`; the one place a `RunConfig` becomes components.

    In order: the thread defaults (`cfg.model.threads`), the source (opened: input errors come
    before a model is loaded), the model, the tracker, the sinks, the `Pipeline`.

    Args:
        input: a source spec (file, image folder, ``webcam:N``, stream URL) or a `Source`.
        cfg: the run configuration (default `RunConfig()`).
        out_dir: folder for the outputs of ``cfg.output.save`` and ``summary.json``
            (created); None = no files.
        sinks: sinks that come first (e.g. a display), or a function of the opened source
            that makes them; closed by the job.
        model: a ready model to use (and leave open) instead of building ``cfg.model``;
            `model_name` is what the summary calls it (default: its class name).
        policy: frame policy when ``cfg.input.policy`` is None (None: the source's default).
        queue_size, realtime: instead of ``cfg.input``'s.
        progress: a tqdm bar over frames; on_frame: called with each finished frame.
    Raises `UserError` for bad input or config. Use the job as a context manager.
    """
    cfg = cfg or RunConfig()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"output path exists and is not a directory: {out}")
    threads = set_thread_defaults(cfg.model.threads)
    source = input if isinstance(input, Source) else open_input(os.fspath(input), cfg.input)
    source.open()
    own_model = model is None
    try:
        if model is None:
            hint = None if isinstance(input, Source) else os.fspath(input)  # the oracle finds gt/ beside a clip
            model = build_model(cfg.model.name, device=cfg.model.device, input=hint, **cfg.model.options)
            model_name = cfg.model.name
    except BaseException:
        source.close()
        raise
    begin_input = getattr(model, "begin_input", None)  # a kept model judges every input afresh
    if begin_input is not None:
        begin_input()
    name = getattr(source, "name", None) if isinstance(input, Source) else os.fspath(input)
    job = Job(name=str(name or input), cfg=cfg, source=source, model=model, own_model=own_model,
              model_name=model_name or type(model).__name__, threads=threads, out_dir=out,
              progress=progress, on_frame=on_frame)
    try:
        job.tracker = tracker_from_config(cfg.tracker, model.device)
        job.sinks.extend(sinks(source) if callable(sinks) else sinks)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            job.sinks.extend(build_sinks(cfg.output.save, out, fps=source.fps or 30.0, crf=cfg.output.video_crf))
        job.policy = cfg.input.policy or policy
        job.pipeline = Pipeline(
            source, model, job.tracker, job.sinks,
            policy=job.policy,
            queue_size=cfg.input.queue_size if queue_size is None else queue_size,
            batch_size=cfg.model.batch_size,
            realtime=cfg.input.realtime if realtime is None else realtime,
            max_frames=cfg.input.max_frames,
            on_frame=job._frame_done,
        )
    except BaseException:
        job.close()
        raise
    return job


def run_video(
    input: str | os.PathLike,
    out_dir: str | os.PathLike,
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
    `model`: a ready model for ``cfg.model`` to use (and leave open) instead of building it.
    """
    cfg = cfg or RunConfig()
    with build_job(input, cfg, out_dir=out_dir, model=model, model_name=cfg.model.name,
                   progress=progress, on_frame=on_frame) as job:
        return job.run()
