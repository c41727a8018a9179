"""Results as they come: `stream(source, ...)` iterates over tracked `PanopticFrame`s.

    for result in vpanoptic.stream("clip.mp4", model="vpanoptic-street", tracker="hungarian", max_frames=100):
        print(result.frame.index, result.track_ids)

It is the job of `vpanoptic run` (`vpanoptic.job.build_job`: same source, model, tracker, frame
policies and threads) with one more sink that hands each finished frame to the consumer
through a bounded queue. The job runs on a background thread; when the consumer is slower,
that sink blocks and so does the whole pipeline (bounded memory, nothing dropped under the
`every` policy). Stopping early (``break``, an exception in the loop body, ``close()``) stops
the pipeline, joins its threads and closes the source and a model the stream built; a stage
error is re-raised in the consumer as the `StageError` that `run` would raise.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from .config import RunConfig, _set_override, _set_value, config_to_dict, from_mapping, load_config
from .errors import ConfigError
from .models.base import PanopticModel
from .sinks.base import Sink
from .types import PanopticFrame

__all__ = ["SETTINGS", "Stream", "stream"]

#: Keyword settings of `stream` → the config key each sets (the command-line flags' names).
SETTINGS = {
    "device": "model.device",
    "weights": "model.options.weights",
    "batch_size": "model.batch_size",
    "threads": "model.threads",
    "policy": "input.policy",
    "max_frames": "input.max_frames",
    "realtime": "input.realtime",
    "queue_size": "input.queue_size",
}

_POLL_S = 0.05  # how often a blocked hand-over looks whether the consumer has gone


class _End:
    """The end of the results (the job finished, or failed: see `Stream._outcome`)."""


class _HandOver(Sink):
    """The last sink: puts each finished frame into the consumer's bounded queue.

    Blocks while the queue is full (the consumer is slower than the pipeline); gives up
    once `cancel` is set (the consumer has gone), so the pipeline can stop.
    """

    name = "stream"

    def __init__(self, results: queue.Queue, cancel: threading.Event):
        self.results, self.cancel = results, cancel
        self.blocked = threading.Event()  # set the first time a put had to wait: the queue was full

    def write(self, pf: PanopticFrame) -> None:
        while not self.cancel.is_set():
            try:
                self.results.put(pf, timeout=_POLL_S)
                return
            except queue.Full:
                self.blocked.set()

    def close(self) -> None:
        pass


def _config(config: RunConfig | str | os.PathLike | None, model: str | PanopticModel | None,
            tracker: str | None, overrides: Sequence[str], settings: dict[str, Any]) -> RunConfig:
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown stream setting {unknown[0]!r}; known: {', '.join(SETTINGS)} "
                          "(any other key: overrides=['section.key=value'])")
    values = {SETTINGS[k]: v for k, v in settings.items() if v is not None}
    if isinstance(model, str):
        values["model.name"] = model
    if tracker is not None:
        values["tracker.name"] = tracker
    if isinstance(config, RunConfig):  # the given config, then the overrides and settings on top
        tree = config_to_dict(config)
        for assignment in overrides:
            _set_override(tree, assignment)
        for key, value in values.items():
            _set_value(tree, key, value)
        return from_mapping(RunConfig, tree)
    return load_config(None if config is None else Path(config), overrides, values)


class _Run:
    """A job on a background thread and the bounded queue of its results.

    Kept apart from `Stream` so that neither the thread nor the generator refers to the
    `Stream`: a stream the consumer drops (``break``) is freed at once, and stops its job.
    """

    def __init__(self, queue_size: int):
        self.results: queue.Queue = queue.Queue(maxsize=queue_size)
        self.cancel = threading.Event()
        self.hand_over = _HandOver(self.results, self.cancel)
        self.thread: threading.Thread | None = None
        self.summary: dict | None = None
        self.error: BaseException | None = None

    def produce(self, job) -> None:
        try:
            self.summary = job.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self.error = exc
        finally:
            while not self.cancel.is_set():  # the end marker, unless the consumer has gone
                try:
                    self.results.put(_End(), timeout=_POLL_S)
                    break
                except queue.Full:
                    continue

    def iterate(self, source: Any, cfg: RunConfig, model: PanopticModel | None) -> Generator[PanopticFrame, None, None]:
        from . import job as job_module

        model_name = None if model is None else type(model).__name__
        with job_module.build_job(source, cfg, sinks=[self.hand_over], model=model, model_name=model_name) as job:
            self.thread = threading.Thread(target=self.produce, args=(job,), name="vpanoptic-stream", daemon=True)
            self.thread.start()
            try:
                while True:
                    item = self.results.get()
                    if isinstance(item, _End):
                        break
                    yield item
            finally:
                self.cancel.set()
                job.pipeline.stop()
                self.thread.join()
        if self.error is not None:
            raise self.error


class Stream(Iterator[PanopticFrame]):
    """An iterator over a job's tracked frames (NumPy id maps), in order; see `stream`.

    Attributes: `cfg`, `queue_size` (results waiting for the consumer, at most), `summary`
    (the run's summary dict once the iteration has ended). Leaving a ``for`` loop over it
    stops the job; elsewhere close it (or use ``with``) to stop early.
    """

    def __init__(self, source: Any, cfg: RunConfig, model: PanopticModel | None, queue_size: int):
        self.cfg, self.queue_size = cfg, queue_size
        self._run = _Run(queue_size)
        self._gen = self._run.iterate(source, cfg, model)

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> PanopticFrame:
        return next(self._gen)

    def close(self) -> None:
        """Stop the job (if running), join its thread and release what it holds. Idempotent."""
        self._gen.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # dropped half-way (`break`, an exception in the loop body)
        gen = getattr(self, "_gen", None)
        if gen is not None:
            gen.close()

    @property
    def summary(self) -> dict | None:
        return self._run.summary

    @property
    def producer_blocked(self) -> bool:
        """Whether the pipeline has had to wait for the consumer (the results queue was full)."""
        return self._run.hand_over.blocked.is_set()

    @property
    def running(self) -> bool:
        """Whether the job's background thread is alive."""
        return self._run.thread is not None and self._run.thread.is_alive()


def stream(
    source: str | os.PathLike | Any,
    config: RunConfig | str | os.PathLike | None = None,
    *,
    model: str | PanopticModel | None = None,
    tracker: str | None = None,
    overrides: Sequence[str] = (),
    **settings: Any,
) -> Stream:
    """Segment and track `source`, yielding each tracked `PanopticFrame` as it is finished.

    Args:
        source: what `vpanoptic run` takes (file, image folder, ``webcam:N``, stream URL) or a
            `vpanoptic.io.sources.Source`.
        config: a `RunConfig` or a YAML config file (default: the defaults).
        model: a registry name (``vpanoptic models``) or a ready `PanopticModel`, which the
            stream uses and leaves open.
        tracker: a tracker name (``hungarian``, ``greedy``, ``none`` = the model's ids).
        overrides: ``section.key=value`` assignments, as ``--set`` takes them.
        **settings: the command-line flags' settings by name: `SETTINGS` (``device``,
            ``policy``, ``max_frames``, ``queue_size``, ...).

    The frame policy is the source's default unless ``policy`` says otherwise (files:
    ``every``, nothing dropped; webcams: ``latest``; streams: ``staleness:1``). At most
    ``queue_size`` results wait for the consumer; the pipeline waits when they do.
    Config errors (`ConfigError`) are raised here; input and model errors (`UserError`) at
    the first ``next()``; a stage's failure as `StageError` where the consumer iterates.
    """
    if model is not None and not isinstance(model, (str, PanopticModel)):
        raise ConfigError(f"model is a {type(model).__name__}; expected a model name or a PanopticModel")
    cfg = _config(config, model, tracker, overrides, settings)
    return Stream(source, cfg, model if isinstance(model, PanopticModel) else None, cfg.input.queue_size)
