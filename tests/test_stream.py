"""`vpanoptic.stream`: tracked frames as they come, bounded, stopped cleanly, errors in the consumer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import vpanoptic
from vpanoptic import job as job_module
from vpanoptic.config import load_config
from vpanoptic.errors import ConfigError, StageError, UserError
from vpanoptic.job import run_video
from vpanoptic.models.base import PanopticModel
from vpanoptic.models.registry import build_model
from vpanoptic.synth import write_sequence

pytestmark = pytest.mark.timeout(120)

SETTINGS = ["tracker.min_hits=1", "tracker.iou_threshold=0.4"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    write_sequence(root / "clip", seed=5, frames=6, size=(128, 96), fps=10.0)
    return root / "clip" / "video.mp4"


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream_long")
    write_sequence(root / "clip", seed=6, frames=40, size=(96, 64), fps=10.0)
    return root / "clip" / "video.mp4"


@pytest.fixture
def built(monkeypatch) -> list:
    """Every job the streams of the test build; `job.closed` says whether it was closed."""
    jobs, real = [], job_module.build_job

    def spy(*args, **kwargs):
        job = real(*args, **kwargs)
        close, job.closed = job.close, False

        def closing():
            job.closed = True
            close()

        job.close = closing
        jobs.append(job)
        return job

    monkeypatch.setattr(job_module, "build_job", spy)
    return jobs


class Counting(PanopticModel):
    """The oracle, counting frames; raises on the frame with index `fail_at`."""

    def __init__(self, clip: Path, fail_at: int | None = None):
        self.inner = build_model("oracle", device="cpu", input=str(clip))
        self.meta, self.device = self.inner.meta, self.inner.device
        self.fail_at, self.seen = fail_at, 0
        self.closed = False

    def predict(self, frames):
        for f in frames:
            if f.index == self.fail_at:
                raise RuntimeError(f"model broke on frame {f.index}")
        self.seen += len(frames)
        return self.inner.predict(frames)

    def close(self):
        self.closed = True
        self.inner.close()


def stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vpanoptic-")]


def test_results_come_in_order_with_the_track_ids_of_run(clip, tmp_path):
    results = list(vpanoptic.stream(clip, model="oracle", tracker="hungarian", device="cpu", overrides=SETTINGS))
    assert [r.frame.index for r in results] == list(range(6))
    assert all(r.id_map.shape == (96, 128) for r in results)
    streamed = [sorted(int(t) for t, thing in zip(r.track_ids, r.is_thing) if thing) for r in results]
    assert all(ids and min(ids) >= 1 for ids in streamed)  # every frame has tracked things
    # The same job as `run`: the same ids frame by frame.
    run_video(clip, tmp_path / "run", load_config(None, [*SETTINGS, "model.name=oracle", "model.device=cpu",
                                                         "output.save=jsonl"]))
    lines = [json.loads(line) for line in (tmp_path / "run" / "segments.jsonl").read_text().splitlines()]
    ran = [sorted(s["track_id"] for s in line["segments"] if s["isthing"]) for line in lines]
    assert streamed == ran
    assert stream_threads() == []


def test_summary_is_kept_and_no_summary_file_is_written(clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = vpanoptic.stream(clip, model="oracle", device="cpu", max_frames=3)
    assert len(list(s)) == 3
    assert s.summary is not None and s.summary["status"] == "ok" and s.summary["frames"] == 3
    assert list(tmp_path.iterdir()) == []


def test_an_early_break_stops_the_job_and_leaves_no_thread(long_clip, built):
    model = Counting(long_clip)
    for result in vpanoptic.stream(long_clip, model=model, device="cpu", queue_size=2):
        if result.frame.index == 1:
            break
    assert stream_threads() == []
    (job,) = built
    assert job.closed
    assert model.seen < 40 and not model.closed  # a model given by the caller stays open


def test_an_exception_in_the_loop_body_stops_the_job(long_clip, built):
    with pytest.raises(KeyError):
        for result in vpanoptic.stream(long_clip, model="oracle", device="cpu", queue_size=2):
            if result.frame.index == 2:
                raise KeyError("consumer failed")
    assert stream_threads() == []
    assert [j.closed for j in built] == [True]


def test_close_stops_a_stream_from_outside_a_for_loop(long_clip):
    s = vpanoptic.stream(long_clip, model="oracle", device="cpu", queue_size=1)
    assert next(s).frame.index == 0
    assert s.running
    s.close()
    assert not s.running and stream_threads() == []
    with pytest.raises(StopIteration):
        next(s)


def test_a_failing_model_raises_in_the_consumer(long_clip):
    model = Counting(long_clip, fail_at=3)
    got = []
    with pytest.raises(StageError, match="inference.*model broke on frame 3") as info:
        for result in vpanoptic.stream(long_clip, model=model, device="cpu"):
            got.append(result.frame.index)
    assert info.value.stage == "inference"
    assert got == list(range(len(got))) and len(got) <= 3  # in order; what was queued at the failure is dropped
    assert stream_threads() == []


def test_memory_is_bounded_the_pipeline_waits_for_the_consumer(long_clip):
    queue_size = 2
    model = Counting(long_clip)
    with vpanoptic.stream(long_clip, model=model, device="cpu", queue_size=queue_size) as s:
        assert next(s).frame.index == 0
        deadline = time.monotonic() + 60
        while not s.producer_blocked:  # the consumer does not read: the hand-over queue fills
            assert time.monotonic() < deadline, "the pipeline never waited for the consumer"
            time.sleep(0.01)
        # Frames in flight: the one taken, the results queue, the pipeline's three queues
        # and one frame held by each of its four stages.
        bound = 1 + queue_size + 3 * queue_size + 4
        assert model.seen <= bound < 40
        assert s.running  # waiting, not finished
        rest = [r.frame.index for r in s]
    assert rest == list(range(1, 40))  # the `every` policy: nothing was dropped while waiting
    assert stream_threads() == []


def test_config_errors_come_at_the_call_and_input_errors_at_the_first_result(tmp_path):
    with pytest.raises(ConfigError, match="unknown stream setting 'max_frame'"):
        vpanoptic.stream("x.mp4", max_frame=3)
    with pytest.raises(ConfigError, match="unknown config key"):
        vpanoptic.stream("x.mp4", overrides=["tracker.iou_thresh=0.4"])
    with pytest.raises(ConfigError, match="expected a model name or a PanopticModel"):
        vpanoptic.stream("x.mp4", model=3)
    s = vpanoptic.stream(tmp_path / "missing.mp4", model="oracle")
    with pytest.raises(UserError):
        next(s)
    assert stream_threads() == []


def test_a_run_config_takes_the_settings_on_top():
    from vpanoptic.stream import _config

    base = load_config(None, ["tracker.iou_threshold=0.3", "input.max_frames=7"])
    cfg = _config(base, "oracle", "greedy", ["tracker.min_hits=1"], {"policy": "latest", "queue_size": 3})
    assert (cfg.model.name, cfg.tracker.name, cfg.tracker.iou_threshold, cfg.tracker.min_hits) == (
        "oracle", "greedy", 0.3, 1)
    assert (cfg.input.policy, cfg.input.queue_size, cfg.input.max_frames) == ("latest", 3, 7)
    assert _config(base, None, None, (), {}) == base
