"""The main job end to end: synthetic clip → `vpanoptic run` → every output read back.

Also the failure paths a user meets: missing / non-video / truncated / corrupted input,
a stage that raises (the video written so far stays playable), bad config, unknown model,
Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import av
import numpy as np
import pytest

from vpanoptic.cli import main
from vpanoptic.config import load_config
from vpanoptic.errors import StageError
from vpanoptic.io.formats import decode_coco_ids, read_kitti_step, read_rgb_png
from vpanoptic.io.sources import LiveSource, open_source
from vpanoptic.job import run_video
from vpanoptic.models.registry import build_model
from vpanoptic.pipeline import Pipeline
from vpanoptic.sinks import build_sinks
from vpanoptic.synth import generate, write_sequence
from vpanoptic.tracking import HungarianTracker

pytestmark = pytest.mark.timeout(120)

FRAMES = 24
SIZE = (320, 180)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clip")
    write_sequence(root / "street", seed=7, frames=FRAMES, size=SIZE, fps=10.0)
    return root / "street"


# Long enough (8 s played in real time) that a run slowed by a busy machine is still going
# when the test interrupts it.
LONG_FRAMES = 80


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("long_clip")
    write_sequence(root / "street", seed=7, frames=LONG_FRAMES, size=SIZE, fps=10.0)
    return root / "street"


@pytest.fixture(scope="module")
def run_out(clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert main([ "run", str(clip / "video.mp4"), "-o", str(out), "--model", "oracle", "--no-progress"]) == 0
    return out


def decode_count(path: Path) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        return sum(1 for _ in c.decode(s))


def test_run_writes_every_output(run_out, clip):
    summary = json.loads((run_out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["frames"] == FRAMES and summary["dropped"] == 0
    assert summary["policy"] == "every" and summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"] > 0
    assert {"decode", "inference", "tracker", "sink:video", "sink:png", "sink:coco", "sink:jsonl"} <= set(
        summary["stage_ms"]
    )
    assert decode_count(run_out / "video.mp4") == FRAMES

    pngs = sorted((run_out / "panoptic_kitti").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(FRAMES)]
    for p in pngs[::6]:
        sem, inst = read_kitti_step(p)
        gsem, ginst = read_kitti_step(clip / "gt" / p.name)
        np.testing.assert_array_equal(sem, gsem)  # clean oracle: semantics exact
        assert ((inst > 0) == (ginst > 0)).all()  # every thing pixel has a track id

    coco = json.loads((run_out / "coco" / "panoptic.json").read_text())
    assert len(coco["annotations"]) == FRAMES
    for ann in coco["annotations"][::6]:
        ids = decode_coco_ids(read_rgb_png(run_out / "coco" / "panoptic" / ann["file_name"]))
        present = set(np.unique(ids[ids > 0]).tolist())
        assert present == {s["id"] for s in ann["segments_info"]}
        for s in ann["segments_info"]:
            assert s["area"] == int((ids == s["id"]).sum())

    lines = (run_out / "segments.jsonl").read_text().splitlines()
    assert len(lines) == FRAMES
    rec = json.loads(lines[3])
    assert rec["frame"] == 3 and rec["width"] == SIZE[0] and rec["height"] == SIZE[1]
    assert any(s["isthing"] and s["track_id"] > 0 for s in rec["segments"])


def test_ids_consistent_across_frames(run_out, clip):
    """Each clearly visible object keeps one track id through the clip."""
    dominant = defaultdict(list)
    area = defaultdict(list)
    for i in range(FRAMES):
        _, ginst = read_kitti_step(clip / "gt" / f"{i:06d}.png")
        _, pinst = read_kitti_step(run_out / "panoptic_kitti" / f"{i:06d}.png")
        for g in np.unique(ginst[ginst > 0]):
            values, counts = np.unique(pinst[ginst == g], return_counts=True)
            dominant[g].append(int(values[counts.argmax()]))
            area[g].append(int((ginst == g).sum()))
    visible = [g for g in dominant if len(dominant[g]) >= 8 and np.median(area[g]) >= 150]
    assert len(visible) >= 3
    stable = [g for g in visible if Counter(dominant[g]).most_common(1)[0][1] >= 0.9 * len(dominant[g])]
    assert len(stable) >= 0.8 * len(visible), {g: Counter(dominant[g]) for g in visible}
    # distinct objects get distinct ids
    heads = [Counter(dominant[g]).most_common(1)[0][0] for g in stable]
    assert len(set(heads)) == len(heads)


def test_image_folder_source(clip, tmp_path):
    images = tmp_path / "frames"
    images.mkdir()
    for f in generate(7, 10, size=SIZE, fps=10.0):
        import cv2

        cv2.imwrite(str(images / f"{f.index}.png"), f.image[..., ::-1])
    out = tmp_path / "out"
    cfg = load_config(
        None, ["model.name=oracle", "output.save=png,jsonl", f"model.options.gt={clip / 'gt'}", "input.fps=5"]
    )
    summary = run_video(str(images), out, cfg)
    assert summary["source"] == "images" and summary["frames"] == 10
    first = json.loads((out / "segments.jsonl").read_text().splitlines()[-1])
    assert first["frame"] == 9 and first["time"] == pytest.approx(9 / 5)


def test_live_source_with_slow_model_drops_and_stays_bounded(clip, tmp_path):
    images = [f.image for f in generate(7, FRAMES, size=SIZE, fps=10.0)]
    model = build_model("oracle", device="cpu", gt=str(clip / "gt"))
    predict = model.predict

    def slow_predict(frames):
        time.sleep(0.12)  # an 8 fps model on a 25 fps camera
        return predict(frames)

    model.predict = slow_predict
    src = LiveSource(images, fps=25.0, num_frames=FRAMES)
    sinks = build_sinks(["video", "jsonl"], tmp_path, fps=25.0)
    p = Pipeline(src, model, HungarianTracker(), sinks, queue_size=8)
    stats = p.run()
    assert p.policy.kind == "latest"
    assert stats.dropped > 0 and stats.queue_high_water == 1
    assert stats.processed + stats.dropped == FRAMES
    assert decode_count(tmp_path / "video.mp4") == stats.processed


def test_truncated_file_processes_decodable_frames(clip, tmp_path, remux):
    ts = tmp_path / "clip.ts"
    remux(clip / "video.mp4", ts)
    data = ts.read_bytes()
    cut = tmp_path / "video.ts"  # beside gt/ so the oracle finds the ground truth
    cut.write_bytes(data[: len(data) // 2])
    os.symlink(clip / "gt", tmp_path / "gt")
    summary = run_video(str(cut), tmp_path / "out", load_config(None, ["model.name=oracle", "output.save=video,jsonl"]))
    assert summary["status"] == "ok"
    assert 0 < summary["frames"] < FRAMES
    assert decode_count(tmp_path / "out" / "video.mp4") == summary["frames"]


def test_corrupted_packets_are_counted_and_skipped(clip, tmp_path, remux, damage_ts):
    ts = tmp_path / "clip.ts"
    remux(clip / "video.mp4", ts)
    bad = tmp_path / "video.ts"
    bad.write_bytes(damage_ts(ts.read_bytes()))
    os.symlink(clip / "gt", tmp_path / "gt")
    summary = run_video(str(bad), tmp_path / "out", load_config(None, ["model.name=oracle", "output.save=jsonl"]))
    assert summary["status"] == "ok"
    assert summary["damaged_packets"] > 0
    assert 0 < summary["frames"] <= FRAMES


@pytest.mark.parametrize("where", ["model", "sink"])
def test_failing_stage_keeps_video_playable(clip, tmp_path, where):
    model = build_model("oracle", device="cpu", gt=str(clip / "gt"))
    sinks = build_sinks(["video", "jsonl"], tmp_path, fps=10.0)
    if where == "model":
        predict = model.predict

        def failing(frames):
            if frames[0].index == 12:
                raise RuntimeError("out of memory")
            return predict(frames)

        model.predict = failing
    else:
        jsonl = sinks[1]
        write = jsonl.write

        def failing_write(pf):
            if pf.frame.index == 12:
                raise OSError("disk full")
            write(pf)

        jsonl.write = failing_write
    t0 = time.monotonic()
    with pytest.raises(StageError) as err:
        Pipeline(open_source(str(clip / "video.mp4")), model, HungarianTracker(), sinks).run()
    assert time.monotonic() - t0 < 5
    assert err.value.stage == ("inference" if where == "model" else "sink:jsonl")
    n = decode_count(tmp_path / "video.mp4")
    if where == "model":
        assert 1 <= n <= 12  # frames before the failure that reached the sinks before the stop
    else:
        assert n == 13  # the video sink comes first: it took frames 0..12
    assert not [t for t in __import__("threading").enumerate() if t.name.startswith("vpanoptic-")]


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "missing.mp4", "-o", "OUT"], "input not found: missing.mp4"),
        (["run", "NOTVIDEO", "-o", "OUT"], "cannot open"),
        (["run", "CLIP", "-o", "OUT", "--set", "tracker.iou_thresh=0.2"], "unknown config key 'tracker.iou_thresh'"),
        (["run", "CLIP", "-o", "OUT", "--model", "mask2former-tiny"], "unknown model 'mask2former-tiny'"),
        (["run", "CLIP", "-o", "OUT", "--save", "video,gif"], "unknown output 'gif'"),
        (["run", "CLIP", "-o", "OUT", "--config", "nope.yaml"], "config file not found"),
        (["run", "CLIP", "-o", "OUT", "--policy", "sometimes"], "frame policy is 'sometimes'"),
        (["synth", "OUT", "--size", "321x180"], "even"),
        (["synth", "OUT", "--scenario", "moon"], "moon"),
        (["run", "CLIP", "-o", "OUT", "--max-frames", "x"], "invalid int value"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(args, message, clip, tmp_path):
    notvideo = tmp_path / "notes.txt"
    notvideo.write_text("hello\n" * 100)
    subst = {"NOTVIDEO": str(notvideo), "CLIP": str(clip / "video.mp4"), "OUT": str(tmp_path / "out")}
    argv = [subst.get(a, a) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "vpanoptic", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out" / "video.mp4").exists()


def test_models_command_lists_the_oracle(capsys):
    assert main(["models"]) == 0
    assert "oracle" in capsys.readouterr().out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_playable_video_and_summary(long_clip, tmp_path, sig):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpanoptic",
            "run",
            str(long_clip / "video.mp4"),
            "-o",
            str(out),
            "--model",
            "oracle",
            "--realtime",
            "--no-progress",
            "--save",
            "video,jsonl",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    jsonl = tmp_path / f".out.partial-{proc.pid}" / "segments.jsonl"  # written beside out/ until the end
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 5):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the interrupted run's folder replaced out/
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 5 <= summary["frames"] < LONG_FRAMES
    assert decode_count(out / "video.mp4") == summary["frames"]
