"""The threaded pipeline: decode thread → inference thread → tracker thread → sinks.

    decode ──FrameQueue(policy)──▶ inference ──Queue──▶ tracker ──Queue──▶ caller's thread
    (Source)                       (model.predict,      (tracker.update,    (sinks, on_frame)
                                    batched)             to_numpy)

- Queues are bounded, so memory is bounded on any input length.
- The frame policy decides what happens when decoding outruns inference: `every` blocks the
  decoder (nothing dropped), `latest` keeps only the newest waiting frame, `staleness:S`
  drops frames older than S seconds. Drops are counted.
- A sentinel (`END`) travels down the queues from a `finally`, so every stage ends even
  when one fails. The first exception in any stage is re-raised by `Pipeline.run()` as a
  `StageError` naming the stage, after all threads have stopped and the sinks are closed.
- Ctrl-C (KeyboardInterrupt in the calling thread) stops the threads and closes the sinks,
  so what was written stays valid; `run()` then re-raises the KeyboardInterrupt.
- Each stateful stage (tracker, sinks) stays on one thread; the stages overlap in time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import FramePolicy, parse_policy
from .errors import StageError
from .models.base import PanopticModel
from .sinks.base import Sink
from .tracking.base import Tracker
from .types import Frame, PanopticFrame

__all__ = ["Pipeline", "FrameQueue", "RunStats", "END"]

# How often blocked stages wake up to check for a stop request (seconds).
POLL_INTERVAL = 0.05
# How long run() waits for a worker thread to finish after a stop (seconds).
JOIN_TIMEOUT = 5.0
# End-to-end latencies kept for percentiles (the most recent ones; bounded memory).
LATENCY_WINDOW = 100_000


class _EndOfStream:
    """The sentinel that ends a stage. Never dropped by a frame policy."""

    def __repr__(self) -> str:
        return "END"


END = _EndOfStream()


class FrameQueue:
    """Bounded queue of decoded frames that applies a `FramePolicy`.

    - every: `put` blocks while the queue holds `maxsize` frames (until `stop` is set).
    - latest: holds one frame; a new frame replaces the waiting one (counted in `dropped`).
    - staleness: `put` never blocks (the oldest frame is dropped when full); `get` discards
      frames whose capture time is older than `policy.max_age` seconds.
    `close()` queues the sentinel behind the waiting frames; `get` then returns `END`.
    """

    def __init__(self, policy: FramePolicy, maxsize: int = 4, clock: Callable[[], float] = time.monotonic):
        if maxsize < 1:
            raise ValueError(f"maxsize is {maxsize}; expected >= 1")
        self.policy = policy
        self.maxsize = 1 if policy.kind == "latest" else maxsize
        self._clock = clock
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.high_water = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, frame: Frame, stop: threading.Event | None = None) -> bool:
        """Add a frame; returns False (frame not added) if `stop` was set while waiting."""
        with self._cond:
            if self.policy.kind == "every":
                while len(self._items) >= self.maxsize:
                    if stop is not None and stop.is_set():
                        return False
                    self._cond.wait(POLL_INTERVAL)
            else:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.dropped += 1
            self._items.append(frame)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _drop_stale(self) -> None:
        if self.policy.kind != "staleness":
            return
        limit = self._clock() - (self.policy.max_age or 0.0)
        while self._items and self._items[0].capture_time < limit:
            self._items.popleft()
            self.dropped += 1

    def get(self, timeout: float | None = None) -> Frame | _EndOfStream | None:
        """Next frame, `END` once closed and empty, or None after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._drop_stale()
                if self._items:
                    item = self._items.popleft()
                    self._cond.notify_all()
                    return item
                if self._closed:
                    return END
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def get_nowait(self) -> Frame | None:
        """A waiting frame, or None (never consumes the sentinel)."""
        with self._cond:
            self._drop_stale()
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None


@dataclass
class StageTimer:
    total: float = 0.0
    count: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.total += seconds
        self.count += count

    @property
    def mean_ms(self) -> float | None:
        return 1000.0 * self.total / self.count if self.count else None


@dataclass
class RunStats:
    """Counters and timers of one run; `summary()` gives the dict written to summary.json."""

    decoded: int = 0
    processed: int = 0
    dropped: int = 0
    damaged: int = 0
    reconnects: int = 0
    wall_time: float = 0.0
    interrupted: bool = False
    stages: dict[str, StageTimer] = field(default_factory=dict)
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    queue_high_water: int = 0

    def timer(self, name: str) -> StageTimer:
        if name not in self.stages:
            self.stages[name] = StageTimer()
        return self.stages[name]

    def summary(self) -> dict:
        lat = np.asarray(self.latencies, dtype=np.float64) * 1000.0
        pct = (lambda q: round(float(np.percentile(lat, q)), 3)) if lat.size else (lambda q: None)
        return {
            "frames": self.processed,
            "decoded": self.decoded,
            "dropped": self.dropped,
            "damaged_packets": self.damaged,
            "reconnects": self.reconnects,
            "wall_time_s": round(self.wall_time, 4),
            "fps": round(self.processed / self.wall_time, 3) if self.wall_time > 0 else None,
            "stage_ms": {k: (round(v.mean_ms, 3) if v.mean_ms is not None else None) for k, v in self.stages.items()},
            "latency_ms": {
                "p50": pct(50),
                "p95": pct(95),
                "p99": pct(99),
                "max": round(float(lat.max()), 3) if lat.size else None,
            },
            "queue_high_water": self.queue_high_water,
            "interrupted": self.interrupted,
        }


class Pipeline:
    """Runs source → model → tracker → sinks on four threads (the sinks on the caller's) with bounded queues.

    Args:
        source: an unopened `vpanoptic.io.sources.Source` (opened and closed by `run()`).
        model: a `PanopticModel`; not closed by the pipeline (it can serve several runs).
        tracker: a `Tracker`, or None to keep the model's ids.
        sinks: `Sink`s, closed by `run()` on every exit path.
        policy: frame policy (`every`, `latest`, `staleness:S`); None = the source's default.
        queue_size: bound of each queue.
        batch_size: frames per `model.predict` call (takes what is waiting, up to this many).
        realtime: pace a file at its native rate, as a live camera would deliver it.
        max_frames: stop after this many decoded frames.
        on_frame: called on the calling thread with each finished `PanopticFrame`.
    """

    def __init__(
        self,
        source,
        model: PanopticModel,
        tracker: Tracker | None = None,
        sinks: Sequence[Sink] = (),
        *,
        policy: str | FramePolicy | None = None,
        queue_size: int = 4,
        batch_size: int = 1,
        realtime: bool = False,
        max_frames: int | None = None,
        on_frame: Callable[[PanopticFrame], None] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}; expected >= 1")
        self.source = source
        self.model = model
        self.tracker = tracker
        self.sinks = list(sinks)
        self._policy_arg = policy
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.realtime = realtime
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.stats = RunStats()
        self._stop = threading.Event()
        self._error: StageError | None = None
        self._error_lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- helpers
    def stop(self) -> None:
        """Ask a running `run()` to finish early (thread-safe; e.g. a quit key in a sink).

        The stages stop taking new frames, the sinks are closed and `run()` returns normally.
        """
        self._stop.set()

    def resolve_policy(self) -> FramePolicy:
        if isinstance(self._policy_arg, FramePolicy):
            return self._policy_arg
        if self._policy_arg is not None:
            return parse_policy(self._policy_arg)
        if self.realtime and not self.source.is_live:
            return FramePolicy("latest")
        return parse_policy(self.source.default_policy)

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = StageError(stage, exc)
                self._error.__cause__ = exc
        self._stop.set()

    # ------------------------------------------------------------------ stages
    def _decode_loop(self, frames: FrameQueue) -> None:
        timer = self.stats.timer("decode")
        try:
            it = iter(self.source)
            t_media0 = t_wall0 = None
            while not self._stop.is_set():
                if self.max_frames is not None and self.stats.decoded >= self.max_frames:
                    break
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                timer.add(time.perf_counter() - t0)
                self.stats.decoded += 1
                if self.realtime and not self.source.is_live:
                    if t_media0 is None:
                        t_media0, t_wall0 = frame.time, time.monotonic()
                    delay = t_wall0 + (frame.time - t_media0) - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    frame.capture_time = time.monotonic()
                if not frames.put(frame, self._stop):
                    break
        except BaseException as exc:  # noqa: BLE001 - forwarded to run()
            self._fail("decode", exc)
        finally:
            frames.close()

    def _inference_loop(self, frames: FrameQueue, results: queue.Queue) -> None:
        timer = self.stats.timer("inference")
        try:
            with torch.inference_mode():
                while not self._stop.is_set():
                    item = frames.get(timeout=POLL_INTERVAL)
                    if item is None:
                        continue
                    if item is END:
                        break
                    assert isinstance(item, Frame)
                    batch = [item]
                    while len(batch) < self.batch_size:
                        more = frames.get_nowait()
                        if more is None:
                            break
                        batch.append(more)
                    t0 = time.perf_counter()
                    outputs = self.model.predict(batch)
                    dt = time.perf_counter() - t0
                    if len(outputs) != len(batch):
                        raise RuntimeError(f"model returned {len(outputs)} results for {len(batch)} frames")
                    timer.add(dt, len(batch))
                    for pf in outputs:
                        pf.timings["inference"] = dt / len(batch)
                        if not self._put(results, pf):
                            return
        except BaseException as exc:  # noqa: BLE001
            self._fail("inference", exc)
        finally:
            self._put(results, END)

    def _put(self, q: queue.Queue, item) -> bool:
        """Blocking put that gives up (returns False) once a stop is requested."""
        while True:
            try:
                q.put(item, timeout=POLL_INTERVAL)
                return True
            except queue.Full:
                if self._stop.is_set():
                    return False

    def _tracker_loop(self, results: queue.Queue, tracked: queue.Queue) -> None:
        """Tracking (stateful: this one thread only) and the one device → host move."""
        timer = self.stats.timer("tracker")
        try:
            while not self._stop.is_set():
                try:
                    pf = results.get(timeout=POLL_INTERVAL)
                except queue.Empty:
                    continue
                if pf is END:
                    break
                if self.tracker is not None:
                    t0 = time.perf_counter()
                    pf = self.tracker.update(pf)
                    dt = time.perf_counter() - t0
                    pf.timings["tracker"] = dt
                    timer.add(dt)
                if not self._put(tracked, pf.to_numpy()):
                    return
        except BaseException as exc:  # noqa: BLE001
            self._fail("tracker", exc)
        finally:
            try:
                if self.tracker is not None:
                    self.tracker.close()  # its helper threads end with the stage
            except BaseException as exc:  # noqa: BLE001
                self._fail("tracker", exc)
            self._put(tracked, END)

    def _finish_frame(self, pf: PanopticFrame) -> None:
        for sink in self.sinks:
            name = f"sink:{getattr(sink, 'name', type(sink).__name__)}"
            t0 = time.perf_counter()
            try:
                sink.write(pf)
            except Exception as exc:
                raise StageError(name, exc) from exc
            dt = time.perf_counter() - t0
            pf.timings[name] = dt
            self.stats.timer(name).add(dt)
        self.stats.latencies.append(time.monotonic() - pf.frame.capture_time)
        self.stats.processed += 1
        if self.on_frame is not None:
            self.on_frame(pf)

    # --------------------------------------------------------------------- run
    def run(self) -> RunStats:
        """Process the whole source; returns the run's `RunStats`.

        Raises `StageError` (naming the failing stage) if any stage raised, after stopping
        every thread and closing the sinks; re-raises KeyboardInterrupt likewise.
        """
        t_start = time.perf_counter()
        frames: FrameQueue | None = None
        try:
            self.source.open()
            policy = self.resolve_policy()
            self.policy = policy
            frames = FrameQueue(policy, self.queue_size)
            results: queue.Queue = queue.Queue(maxsize=self.queue_size)
            tracked: queue.Queue = queue.Queue(maxsize=self.queue_size)
            stages: list[tuple[str, Callable[..., None], tuple]] = [
                ("decode", self._decode_loop, (frames,)),
                ("inference", self._inference_loop, (frames, results)),
                ("tracker", self._tracker_loop, (results, tracked)),
            ]
            self.threads = [
                threading.Thread(target=target, args=args, name=f"vpanoptic-{name}", daemon=True)
                for name, target, args in stages
            ]
            for t in self.threads:
                t.start()
            while self._error is None:
                try:
                    item = tracked.get(timeout=POLL_INTERVAL)
                except queue.Empty:
                    if not any(t.is_alive() for t in self.threads) and tracked.empty():
                        break
                    continue
                if item is END:
                    break
                try:
                    self._finish_frame(item)
                except StageError as err:
                    self._fail(err.stage, err.error)
                    break
        except KeyboardInterrupt:
            self.stats.interrupted = True
            raise
        finally:
            self._stop.set()
            for t in self.threads:
                t.join(JOIN_TIMEOUT)
            self._close_all()
            if frames is not None:
                self.stats.dropped += frames.dropped
                self.stats.queue_high_water = frames.high_water
            self.stats.dropped += getattr(self.source, "missed", 0)
            self.stats.damaged = getattr(self.source, "damaged", 0)
            self.stats.reconnects = getattr(self.source, "reconnects", 0)
            self.stats.wall_time = time.perf_counter() - t_start
        if self._error is not None:
            raise self._error
        return self.stats

    def _close_all(self) -> None:
        errors: list[tuple[str, BaseException]] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                errors.append((f"sink:{getattr(sink, 'name', type(sink).__name__)}", exc))
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(("decode", exc))
        for stage, error in errors:
            self._fail(stage, error)

    @property
    def alive_threads(self) -> list[threading.Thread]:
        return [t for t in self.threads if t.is_alive()]
