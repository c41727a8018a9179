"""The live path: bounded latency with a slow model, the headless file, the window and its keys.

No display exists here: the window path runs with a fake OpenCV HighGUI (``cv2.imshow`` /
``cv2.waitKey`` replaced) or a fake backend; the headless path writes a real MP4.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vpanoptic.cli import main
from vpanoptic.config import load_config
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.io.sources import LiveSource
from vpanoptic.live import run_live
from vpanoptic.models.base import PanopticModel
from vpanoptic.sinks import window as window_module
from vpanoptic.sinks.window import Cv2Window, VideoFileDisplay, WindowSink
from vpanoptic.synth import write_sequence
from vpanoptic.types import Frame, PanopticFrame

pytestmark = pytest.mark.timeout(60)

H, W = 72, 128
CAMERA_FPS = 30.0
MODEL_S = 0.05  # a 20 fps model on a 30 fps camera


def image_at(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 1] = 60 + (i % 100)
    return img


class SlowModel(PanopticModel):
    """Two cars drifting right on a road, after `delay` seconds of "inference" per frame."""

    def __init__(self, delay: float = MODEL_S):
        self.meta, self.delay = KITTI_STEP, delay
        self.device = torch.device("cpu")

    def predict(self, frames):
        out = []
        for f in frames:
            time.sleep(self.delay)
            sem = np.full((H, W), 0, int)  # road
            inst = np.zeros((H, W), int)
            x = (f.index // 3) % (W - 40)
            sem[10:30, x : x + 16], inst[10:30, x : x + 16] = 13, 1
            sem[40:60, x + 20 : x + 40], inst[40:60, x + 20 : x + 40] = 13, 2
            pf = PanopticFrame.from_labels(f, sem, inst, KITTI_STEP)
            pf.track_ids[:] = -1
            out.append(pf)
        return out

    def close(self):
        pass


class FakeWindow:
    """A display backend that records what it is shown and replays scripted keys."""

    def __init__(self, keys: dict[int, str] | None = None):
        self.keys = {n: (27 if k == "esc" else ord(k)) for n, k in (keys or {}).items()}
        self.shown: list[np.ndarray] = []
        self.threads: set[int] = set()
        self.polls = 0
        self.closed = 0

    def show(self, image_bgr):
        self.threads.add(threading.get_ident())
        self.shown.append(image_bgr.copy())

    def poll_key(self, wait_ms):
        self.threads.add(threading.get_ident())
        self.polls += 1
        return self.keys.get(self.polls, -1)

    def close(self):
        self.closed += 1


def no_tracker_cfg(*overrides):
    return load_config(None, ["output.save=[]", *overrides])


def test_headless_live_run_keeps_latency_bounded_and_flat(tmp_path):
    frames = 75  # 2.5 s at 30 fps
    source = LiveSource(image_at, fps=CAMERA_FPS, num_frames=frames)
    lat = []

    def after_display(pf):
        lat.append(time.monotonic() - pf.frame.capture_time)

    out_mp4 = tmp_path / "live.mp4"
    summary = run_live(source, no_tracker_cfg(), out_dir=tmp_path / "out", headless=out_mp4,
                       model=SlowModel(), on_frame=after_display)
    interval = 1.0 / CAMERA_FPS
    assert summary["status"] == "ok" and summary["policy"] == "latest"
    assert summary["queue_high_water"] == 1  # the latest policy's bound
    assert summary["dropped"] > 0 and summary["frames"] + summary["dropped"] == frames
    model_s = summary["stage_ms"]["inference"] / 1000.0
    assert np.percentile(lat, 95) < model_s + 2 * interval
    assert summary["latency_ms"]["p95"] / 1000.0 < model_s + 2 * interval
    third = len(lat) // 3
    assert np.median(lat[-third:]) < np.median(lat[:third]) + interval  # no growing backlog
    display = summary["display"]
    assert display["displayed"] == summary["frames"] and display["dropped_before_display"] == summary["dropped"]
    assert 0 < display["display_latency_ms"]["p50"] <= display["display_latency_ms"]["p95"]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["display"]["displayed"] == summary["frames"] and written["reconnects"] == 0
    with av.open(str(out_mp4)) as c:
        pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(pictures) == summary["frames"] and pictures[0].shape == (H, W, 3)


def test_window_keys_pause_snapshot_toggle_and_quit(tmp_path):
    # polls: 3 labels off, 4 snapshot, 6 pause, 10 resume, 14 quit
    fake = FakeWindow({3: "l", 4: "s", 6: " ", 10: " ", 14: "q"})
    source = LiveSource(image_at, fps=CAMERA_FPS, num_frames=300)
    summary = run_live(source, no_tracker_cfg(), display=fake, model=SlowModel(0.0), snapshot_dir=tmp_path)
    display = summary["display"]
    assert display["quit"] is True and summary["status"] == "ok"
    assert summary["frames"] < 100  # quit stopped the run long before the camera's 300 frames
    assert len(fake.threads) == 1 and fake.closed == 1
    # Frames 7..10 arrived while paused: not shown (one extra picture shows the PAUSED mark).
    assert display["displayed"] == 14 - 4
    assert len(fake.shown) == display["displayed"] + 1
    assert len(display["snapshots"]) == 1
    snap = cv2.imread(display["snapshots"][0])
    assert np.array_equal(snap, fake.shown[3])  # the picture on screen when `s` was pressed


def test_layers_and_hud_change_the_picture():
    sink = WindowSink(FakeWindow())
    frame = Frame(5, 5, 5 / 30, time.monotonic(), image_at(5))
    pf = SlowModel(0.0).predict([frame])[0]
    pf.timings["inference"] = 0.042
    full = sink.compose(pf)
    assert full.shape == (H, W, 3) and full.dtype == np.uint8
    lines = sink.hud_lines(pf)
    assert lines[0].startswith("FPS -  model 42 ms") and "dropped 0" in lines[1]
    pictures = {}
    for layer in ("fill", "contours", "labels", "hud"):
        sink.layers[layer] = False
        pictures[layer] = sink.compose(pf)
        sink.layers[layer] = True
        assert not np.array_equal(pictures[layer], full), layer
    for layer in ("fill", "contours", "labels", "hud"):
        sink.layers[layer] = False
    plain = sink.compose(pf)
    assert np.array_equal(plain, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))


def test_window_refuses_a_second_thread():
    sink = WindowSink(FakeWindow())
    pf = SlowModel(0.0).predict([Frame(0, 0, 0.0, time.monotonic(), image_at(0))])[0]
    sink.write(pf)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, sink.write, pf)))
    thread.start()
    thread.join(5)
    assert errors and "second thread" in str(errors[0].value)


def test_cv2_window_uses_highgui_on_one_thread(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")  # a fake HighGUI below: no real window is opened
    calls = []
    monkeypatch.setattr(window_module.cv2, "namedWindow", lambda name, flags: calls.append(("named", name)))
    monkeypatch.setattr(window_module.cv2, "imshow", lambda name, img: calls.append(("show", name, img.shape)))
    keys = iter([-1, ord("x") | 0x100, ord("q")])
    monkeypatch.setattr(window_module.cv2, "waitKey", lambda ms: next(keys, -1))
    monkeypatch.setattr(window_module.cv2, "destroyWindow", lambda name: calls.append(("destroy", name)))
    backend = Cv2Window("test")
    assert backend.poll_key(1) == -1  # no window yet: HighGUI untouched
    sink = WindowSink(backend)
    quit_calls = []
    sink.on_quit = lambda: quit_calls.append(1)
    model = SlowModel(0.0)
    for i in range(4):
        sink.write(model.predict([Frame(i, i, i / 30, time.monotonic(), image_at(i))])[0])
    sink.close()
    sink.close()
    assert calls[0] == ("named", "test") and calls[1] == ("show", "test", (H, W, 3))
    assert sum(c[0] == "show" for c in calls) == 3  # the 4th frame came after quit
    assert quit_calls == [1] and sink.quit_requested and calls[-1] == ("destroy", "test")


def test_cv2_window_without_display_is_a_one_line_user_error(monkeypatch):
    def fail(*args):
        raise cv2.error("OpenCV(4.x) error: (-2:Unspecified error) The function is not implemented.")

    monkeypatch.setattr(window_module.cv2, "namedWindow", fail)
    monkeypatch.setenv("DISPLAY", ":0")
    from vpanoptic.errors import UserError

    with pytest.raises(UserError, match=r"cannot open a window .*use --headless OUT.mp4$"):
        Cv2Window().show(np.zeros((4, 4, 3), np.uint8))


def test_video_file_display_validates_and_skips_empty(tmp_path):
    with pytest.raises(ValueError, match="display fps is 0"):
        VideoFileDisplay(tmp_path / "x.mp4", fps=0)
    display = VideoFileDisplay(tmp_path / "x.mp4")
    display.close()
    assert not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("liveclip") / "street"
    write_sequence(root, seed=5, frames=12, size=(160, 96), fps=10.0)
    return root


def test_live_command_headless_on_a_file(clip, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["live", str(clip / "video.mp4"), "--headless", str(tmp_path / "live.mp4"), "-o", str(out),
                 "--max-frames", "8", "--save", "jsonl", "--model", "oracle"])
    assert code == 0
    line = capsys.readouterr().out
    assert "latency capture→display p50" in line and "reconnects 0" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"] == "file" and summary["policy"] == "latest" and summary["frames"] >= 1
    assert summary["frames"] + summary["dropped"] == 8
    assert summary["outputs"] == ["segments.jsonl"]  # listed before summary.json is written
    assert (tmp_path / "live.mp4").stat().st_size > 0


def test_live_command_user_errors(clip, tmp_path, capsys):
    assert main(["live", str(tmp_path / "missing.mp4"), "--headless", str(tmp_path / "x.mp4")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["live", str(clip / "video.mp4"), "--save", "video", "--headless", str(tmp_path / "x.mp4")]) == 2
    assert "--save needs an output folder" in capsys.readouterr().err
    assert main(["live", str(clip / "video.mp4"), "--duration", "0", "--headless", str(tmp_path / "x.mp4")]) == 2


def test_webcam_demo_runs_headless_on_a_file(clip, tmp_path, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "demos" / "webcam.py"
    spec = importlib.util.spec_from_file_location("vpanoptic_webcam_demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    out = tmp_path / "demo.mp4"
    assert demo.run([str(clip / "video.mp4"), "--model", "oracle", "--headless", str(out), "--duration", "0.6",
                     "-o", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["display"]["displayed"] == summary["frames"] > 0
    assert out.stat().st_size > 0 and "dropped" in capsys.readouterr().out


def test_no_display_is_a_user_error_before_highgui_is_touched(monkeypatch, capsys):
    from vpanoptic.errors import UserError

    window_module.check_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    window_module.check_display({}, "darwin")
    with pytest.raises(UserError, match=r"no display .*use --headless OUT.mp4$"):
        window_module.check_display({}, "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    touched = []
    monkeypatch.setattr(window_module.cv2, "namedWindow", lambda *a: touched.append(a))
    source = LiveSource(image_at, fps=CAMERA_FPS, num_frames=5)
    with pytest.raises(UserError, match="no display"):
        run_live(source, no_tracker_cfg(), model=SlowModel(0.0))
    assert not touched
