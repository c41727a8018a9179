"""The job builder: `run`, `live` and `batch` build the same components from one `RunConfig`,
and every entry point leaves torch and OpenCV with the same thread defaults."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

import vpanoptic
from vpanoptic import job as job_module
from vpanoptic import live as live_module
from vpanoptic.batch import process_video
from vpanoptic.cli import main
from vpanoptic.config import TrackerConfig, load_config
from vpanoptic.errors import UserError
from vpanoptic.experiment import load_spec, run_experiment
from vpanoptic.job import run_video
from vpanoptic.live import LIVE_QUEUE_SIZE, run_live
from vpanoptic.runtime import default_threads
from vpanoptic.sinks.window import WindowSink
from vpanoptic.synth import write_sequence
from vpanoptic.tracking import GreedyTracker, HungarianTracker
from vpanoptic.train import train_streetnet

pytestmark = pytest.mark.timeout(120)

SETTINGS = ["model.name=oracle", "model.device=cpu", "output.save=jsonl,png", "tracker.iou_threshold=0.4",
            "tracker.min_hits=1", "model.batch_size=2"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("job")
    write_sequence(root / "clip", seed=3, frames=4, size=(128, 96), fps=10.0)
    return root / "clip"


@pytest.fixture
def built(monkeypatch) -> list:
    """Every job built through `build_job` while the test runs."""
    jobs, real = [], job_module.build_job

    def spy(*args, **kwargs):
        jobs.append(real(*args, **kwargs))
        return jobs[-1]

    monkeypatch.setattr(job_module, "build_job", spy)
    monkeypatch.setattr(live_module, "build_job", spy)
    return jobs


def _components(job) -> dict:
    tracker = job.tracker
    assert isinstance(tracker, HungarianTracker)
    return {
        "model": type(job.model).__name__,
        "device": str(job.model.device),
        "tracker": (tracker.iou_threshold, tracker.min_hits),
        "file sinks": [type(s).__name__ for s in job.sinks if not isinstance(s, WindowSink)],
        "threads": job.threads,
        "batch size": job.pipeline.batch_size,
    }


def test_run_live_and_batch_build_the_same_components(clip, built, tmp_path):
    cfg = load_config(None, SETTINGS)
    video = str(clip / "video.mp4")
    run_video(video, tmp_path / "run", cfg)
    run_live(video, cfg, out_dir=tmp_path / "live", headless=tmp_path / "live.mp4", realtime=False)
    row = process_video(video, str(tmp_path / "batch"), cfg)
    assert row["status"] == "ok", row
    run, live, batch = (_components(j) for j in built)
    assert run == live == batch
    assert run["file sinks"] == ["JsonlSink", "KittiStepSink"] and run["tracker"] == (0.4, 1)
    # What differs is the policy: live shows the newest frame through one-frame queues.
    assert [j.pipeline.policy.kind for j in built] == ["every", "latest", "every"]
    assert built[1].pipeline.queue_size == LIVE_QUEUE_SIZE and isinstance(built[1].sinks[0], WindowSink)
    for name in ("run", "live", "batch"):
        assert (tmp_path / name / "summary.json").is_file() and (tmp_path / name / "panoptic_kitti").is_dir()


def test_a_job_that_fails_to_build_closes_its_source(clip, monkeypatch):
    closed = []
    real = job_module.open_input

    def tracked(spec, cfg):
        source = real(spec, cfg)
        close = source.close
        source.close = lambda: (closed.append(True), close())
        return source

    monkeypatch.setattr(job_module, "open_input", tracked)
    cfg = load_config(None, ["model.name=oracle", "model.device=cpu"])
    with pytest.raises(RuntimeError, match="no display"):
        job_module.build_job(str(clip / "video.mp4"), cfg, sinks=lambda source: _raise("no display"))
    assert closed


def _raise(message):
    raise RuntimeError(message)


def test_tracker_from_config_is_the_config_with_overrides():
    from vpanoptic.job import tracker_from_config

    assert tracker_from_config(TrackerConfig(name="none")) is None
    greedy = tracker_from_config(TrackerConfig(name="greedy", iou_threshold=0.7))
    assert isinstance(greedy, GreedyTracker) and greedy.iou_threshold == 0.7
    tracker = tracker_from_config(TrackerConfig(min_hits=3), camera_motion=False)
    assert tracker.min_hits == 3 and not tracker.camera_motion
    with pytest.raises(ValueError, match="unknown tracker option"):
        tracker_from_config(TrackerConfig(), no_such_setting=1)


@pytest.fixture
def other_threads():
    """torch and OpenCV set to a thread count the defaults never choose; restored after."""
    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    other = default_threads() + 1
    torch.set_num_threads(other)
    cv2.setNumThreads(other)
    yield other
    torch.set_num_threads(torch_before)
    cv2.setNumThreads(cv2_before)


def _entry_points(clip: Path, tmp_path: Path) -> dict:
    cfg = load_config(None, ["model.name=oracle", "model.device=cpu", "output.save=jsonl"])
    video = str(clip / "video.mp4")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: t\ndata:\n  clips:\n    - {{name: c, video: {video}, gt: {clip / 'gt'}}}\n"
                    "configurations:\n  - {name: none, tracker: {name: none}}\n")
    return {
        "run": lambda: run_video(video, tmp_path / "run", cfg),
        "api": lambda: vpanoptic.run_video(video, tmp_path / "api", cfg),
        "live": lambda: run_live(video, cfg, headless=tmp_path / "live.mp4", realtime=False),
        "batch": lambda: process_video(video, str(tmp_path / "batch"), cfg),
        "track": lambda: main(["track", str(clip / "gt"), "-o", str(tmp_path / "track")]),
        "experiment": lambda: run_experiment(load_spec(spec), tmp_path / "exp", progress=False, plots=False),
        "train": lambda: train_streetnet(tmp_path / "t.pt", steps=1, batch_size=2, tiny=True, workers=0,
                                         val_every=0, save_every=0, log_every=1, log=lambda message: None),
    }


@pytest.mark.parametrize("entry", ["run", "api", "live", "batch", "track", "experiment", "train"])
def test_every_entry_point_sets_the_thread_defaults(entry, clip, tmp_path, other_threads):
    _entry_points(clip, tmp_path)[entry]()
    assert torch.get_num_threads() == default_threads() != other_threads
    assert cv2.getNumThreads() == default_threads()


def test_train_rejects_bad_options_before_any_work(tmp_path):
    with pytest.raises(UserError, match="threads is -1"):
        train_streetnet(tmp_path / "x.pt", threads=-1)
    with pytest.raises(UserError, match=r"scale is 0.9,0.5"):
        train_streetnet(tmp_path / "x.pt", scale=(0.9, 0.5))
    assert not (tmp_path / "x.pt").exists()
