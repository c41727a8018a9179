"""Pipeline threading, frame policies and failure paths, with in-memory stand-in stages."""

import threading
import time

import numpy as np
import pytest

from vpanoptic.config import parse_policy
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.errors import StageError
from vpanoptic.models.base import PanopticModel
from vpanoptic.pipeline import END, FrameQueue, Pipeline
from vpanoptic.sinks.base import Sink
from vpanoptic.tracking import HungarianTracker
from vpanoptic.types import Frame, PanopticFrame

H, W = 24, 32
pytestmark = pytest.mark.timeout(30)


class ListSource:
    """Source stand-in: `n` frames; optionally live (paced at `fps`) or failing at `fail_at`."""

    kind = "file"
    name = "list"
    damaged = 0

    def __init__(self, n=20, fps=10.0, live=False, fail_at=None):
        self.n, self.fps, self.is_live, self.fail_at = n, fps, live, fail_at
        self.default_policy = "latest" if live else "every"
        self.num_frames = n
        self.opened = self.closed = False

    def open(self):
        self.opened = True

    def close(self):
        self.closed = True

    def __iter__(self):
        t0 = time.monotonic()
        for i in range(self.n):
            if self.fail_at == i:
                raise OSError("disk on fire")
            if self.is_live:
                delay = t0 + i / self.fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            img = np.full((H, W, 3), i % 256, np.uint8)
            yield Frame(i, i, i / self.fps, time.monotonic(), img)


class BoxModel(PanopticModel):
    """One car moving right by 1 px per frame, on road; optional delay and failure."""

    def __init__(self, delay=0.0, fail_at=None):
        self.meta, self.delay, self.fail_at = KITTI_STEP, delay, fail_at
        self.batches = []
        self.closed = False

    def predict(self, frames):
        self.batches.append([f.index for f in frames])
        out = []
        for f in frames:
            if self.fail_at == f.index:
                raise RuntimeError("model exploded")
            if self.delay:
                time.sleep(self.delay)
            sem = np.zeros((H, W), int)
            inst = np.zeros((H, W), int)
            x = f.index % (W - 8)
            sem[4:12, x : x + 8] = 13
            inst[4:12, x : x + 8] = 1
            pf = PanopticFrame.from_labels(f, sem, inst, KITTI_STEP)
            pf.track_ids[:] = -1
            out.append(pf)
        return out

    def close(self):
        self.closed = True


class RecordSink(Sink):
    def __init__(self, name="record", fail_at=None):
        self.name, self.fail_at = name, fail_at
        self.frames, self.closed = [], 0

    def write(self, pf):
        if self.fail_at == pf.frame.index:
            raise OSError("sink full")
        assert isinstance(pf.id_map, np.ndarray)
        self.frames.append(pf)

    def close(self):
        self.closed += 1


def no_pipeline_threads():
    return not [t for t in threading.enumerate() if t.name.startswith("vpanoptic-")]


def test_every_policy_processes_all_frames_in_order_with_consistent_ids():
    src, sink = ListSource(n=20), RecordSink()
    stats = Pipeline(src, BoxModel(), HungarianTracker(), [sink], queue_size=2).run()
    assert [pf.frame.index for pf in sink.frames] == list(range(20))
    assert stats.processed == 20 and stats.decoded == 20 and stats.dropped == 0
    car_ids = {int(pf.track_ids[pf.is_thing][0]) for pf in sink.frames}
    assert car_ids == {1}
    assert src.opened and src.closed and sink.closed == 1
    assert stats.queue_high_water <= 2
    s = stats.summary()
    assert s["frames"] == 20 and s["latency_ms"]["p50"] > 0
    assert set(s["stage_ms"]) >= {"decode", "inference", "tracker", "sink:record"}
    assert no_pipeline_threads()


def test_batches_never_exceed_batch_size():
    model = BoxModel()
    Pipeline(ListSource(n=30), model, None, [RecordSink()], batch_size=4, queue_size=8).run()
    assert max(len(b) for b in model.batches) <= 4
    assert sum(model.batches, []) == list(range(30))


def test_latest_policy_drops_old_frames_and_queue_stays_bounded():
    src = ListSource(n=40, fps=100.0, live=True)
    model = BoxModel(delay=0.04)  # 25 fps model on a 100 fps camera
    sink = RecordSink()
    p = Pipeline(src, model, HungarianTracker(), [sink], queue_size=8)
    stats = p.run()
    assert p.policy.kind == "latest"
    assert stats.dropped > 0
    assert stats.queue_high_water == 1
    assert stats.processed + stats.dropped == 40
    indices = [pf.frame.index for pf in sink.frames]
    assert indices == sorted(indices)


def test_staleness_queue_drops_old_frames():
    now = [100.0]
    q = FrameQueue(parse_policy("staleness:0.5"), maxsize=3, clock=lambda: now[0])
    for i, t in enumerate([99.0, 99.6, 100.2]):
        q.put(Frame(i, i, 0.0, t, np.zeros((2, 2, 3), np.uint8)))
    assert q.get(0).index == 1  # frame 0 is 1 s old
    now[0] = 100.5
    assert q.get(0).index == 2  # 0.3 s old: still fresh
    assert q.dropped == 1
    q.put(Frame(3, 3, 0.0, 100.5, np.zeros((2, 2, 3), np.uint8)))
    q.put(Frame(4, 4, 0.0, 100.5, np.zeros((2, 2, 3), np.uint8)))
    q.put(Frame(5, 5, 0.0, 100.5, np.zeros((2, 2, 3), np.uint8)))
    q.put(Frame(6, 6, 0.0, 100.5, np.zeros((2, 2, 3), np.uint8)))  # full: oldest dropped, never blocks
    assert q.dropped == 2 and len(q) == 3
    q.close()
    assert [q.get(0).index for _ in range(3)] == [4, 5, 6]
    assert q.get(0) is END


def test_every_queue_blocks_until_stop():
    q = FrameQueue(parse_policy("every"), maxsize=1)
    stop = threading.Event()
    f = Frame(0, 0, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8))
    assert q.put(f, stop)
    threading.Timer(0.1, stop.set).start()
    assert q.put(f, stop) is False  # was blocked, released by stop
    assert q.dropped == 0


@pytest.mark.parametrize(
    "where,stage",
    [("source", "decode"), ("model", "inference"), ("sink", "sink:bad"), ("tracker", "tracker")],
)
def test_stage_exception_is_reraised_with_stage_name(where, stage):
    src = ListSource(n=50, fail_at=10 if where == "source" else None)
    model = BoxModel(fail_at=10 if where == "model" else None)
    good, bad = RecordSink("good"), RecordSink("bad", fail_at=10 if where == "sink" else None)

    class BadTracker(HungarianTracker):
        def update(self, pf):
            if pf.frame.index == 10:
                raise ValueError("tracker bug")
            return super().update(pf)

    tracker = BadTracker() if where == "tracker" else HungarianTracker()
    t0 = time.monotonic()
    with pytest.raises(StageError) as err:
        Pipeline(src, model, tracker, [good, bad]).run()
    assert time.monotonic() - t0 < 5
    assert err.value.stage == stage
    assert err.value.__cause__ is err.value.error
    assert good.closed == 1 and bad.closed == 1 and src.closed
    assert len(good.frames) <= 11  # the good sink comes first and may take frame 10
    assert no_pipeline_threads()


def test_keyboard_interrupt_stops_threads_and_closes_sinks():
    sink = RecordSink()

    def interrupt(pf):
        if pf.frame.index == 5:
            raise KeyboardInterrupt

    p = Pipeline(ListSource(n=1000), BoxModel(), HungarianTracker(), [sink], on_frame=interrupt)
    with pytest.raises(KeyboardInterrupt):
        p.run()
    assert p.stats.interrupted and sink.closed == 1
    assert len(sink.frames) == 6
    assert no_pipeline_threads()


def test_max_frames_and_realtime_pacing():
    sink = RecordSink()
    t0 = time.monotonic()
    p = Pipeline(ListSource(n=100, fps=50.0), BoxModel(), None, [sink], realtime=True, max_frames=10)
    p.run()
    elapsed = time.monotonic() - t0
    assert p.stats.decoded == 10
    assert elapsed >= 9 / 50 * 0.9  # frames released at the native rate, not all at once
    assert p.policy.kind == "latest"  # realtime files behave like a camera


def test_close_error_in_a_sink_is_reported():
    class BadClose(RecordSink):
        def close(self):
            super().close()
            raise OSError("cannot finalise")

    other = RecordSink("other")
    with pytest.raises(StageError) as err:
        Pipeline(ListSource(n=3), BoxModel(), None, [BadClose("bad"), other]).run()
    assert err.value.stage == "sink:bad" and other.closed == 1
