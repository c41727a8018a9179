"""`vpanoptic batch`: a folder of good, damaged, truncated and non-video files; resume after a kill."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vpanoptic.batch import PARTIAL_MARK, find_videos, output_names, process_video, run_batch, threads_per_worker
from vpanoptic.cli import main
from vpanoptic.errors import UserError
from vpanoptic.synth import write_sequence

pytestmark = pytest.mark.timeout(120)

FRAMES = 12
SIZE = (160, 96)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batchclip") / "street"
    write_sequence(root, seed=11, frames=FRAMES, size=SIZE, fps=10.0)
    return root


def new_folder(clip: Path, root: Path, names: list[str]) -> Path:
    """`root` with gt/ (for the oracle) and a copy of the clip under each name."""
    root.mkdir()
    shutil.copytree(clip / "gt", root / "gt")
    for name in names:
        shutil.copy(clip / "video.mp4", root / name)
    return root


def partials(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if PARTIAL_MARK in p.name]


def check_complete(folder: Path, frames: int) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["frames"] == frames
    assert len((folder / "segments.jsonl").read_text().splitlines()) == frames
    return summary


def test_folder_with_good_damaged_truncated_and_non_video_files(clip, tmp_path, capsys, remux, damage_ts):
    folder = new_folder(clip, tmp_path / "in", ["good_a.mp4", "good_b.mp4"])
    data = (clip / "video.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index at the end: unreadable
    remux(clip / "video.mp4", tmp_path / "clip.ts")
    (folder / "damaged.ts").write_bytes(damage_ts((tmp_path / "clip.ts").read_bytes()))
    (folder / "notes.txt").write_text("not a video\n")
    (folder / ".hidden.mp4").write_bytes(data)
    out = tmp_path / "out"

    code = main(["batch", str(folder), "-o", str(out), "--glob", "*", "--workers", "2", "--save", "jsonl",
                 "--model", "oracle", "--no-progress"])
    assert code == 1  # some files failed
    printed = capsys.readouterr().out
    assert "5 videos: 2 ok, 1 damaged, 2 failed" in printed
    report = json.loads((out / "batch_report.json").read_text())
    rows = {Path(r["video"]).name: r for r in report["items"]}
    assert sorted(rows) == ["damaged.ts", "good_a.mp4", "good_b.mp4", "notes.txt", "truncated.mp4"]
    for name in ("good_a.mp4", "good_b.mp4"):
        assert rows[name]["status"] == "ok" and rows[name]["frames"] == FRAMES and rows[name]["fps"] > 0
        check_complete(out / Path(name).stem, FRAMES)
    assert rows["damaged.ts"]["status"] == "damaged" and rows["damaged.ts"]["damaged_packets"] > 0
    assert 0 < rows["damaged.ts"]["frames"] <= FRAMES and (out / "damaged" / "summary.json").is_file()
    for name in ("truncated.mp4", "notes.txt"):
        assert rows[name]["status"] == "failed" and "cannot open" in rows[name]["error"]
        assert rows[name]["output"] == "" and not (out / Path(name).stem).exists()
    assert partials(out) == []
    with (out / "batch_report.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["status"] for r in table] == [r["status"] for r in report["items"]]
    assert report["workers"] == 2 and report["torch_threads_per_worker"] >= 1


def test_killed_batch_resumes_without_redoing_or_partial_outputs(clip, tmp_path):
    names = [f"drive{i}.mp4" for i in range(3)]
    folder = new_folder(clip, tmp_path / "in", names)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpanoptic",
            "batch",
            str(folder),
            "-o",
            str(out),
            "--save",
            "jsonl",
            "--model",
            "oracle",
            "--no-progress",
            "--set",
            "input.realtime=true",
        ],  # 1.2 s per video: time to kill it mid-batch
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "drive0").exists():
        time.sleep(0.02)
    time.sleep(0.3)  # the worker is on drive1 now
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    done = [p for p in sorted(out.iterdir()) if not p.name.startswith(".") and p.is_dir()]
    assert done and len(done) < len(names), "the batch should have been killed mid-way"
    stamps = {p.name: check_complete(p, FRAMES)["started_unix"] for p in done}  # finished = complete
    # The orphaned worker notices its parent is gone and stops; its partial folder stays hidden.
    for partial in partials(out):
        pid = int(partial.name.rsplit("-", 1)[1])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid)

    report = run_batch(folder, out, _cfg())
    rows = {Path(r["video"]).stem: r for r in report["items"]}
    assert {name for name, r in rows.items() if r["skipped"]} == set(stamps)
    assert all(r["status"] == "ok" for r in rows.values())
    for name in rows:
        summary = check_complete(out / name, FRAMES)
        if name in stamps:
            assert summary["started_unix"] == stamps[name]  # not redone
    assert partials(out) == []

    # --force redoes a complete folder: the new one replaces it only once it is complete.
    row = process_video(str(folder / "drive0.mp4"), str(out / "drive0"), _cfg())
    assert row["status"] == "ok" and row["frames"] == FRAMES
    assert check_complete(out / "drive0", FRAMES)["started_unix"] != stamps.get("drive0")
    assert partials(out) == []


def _cfg():
    from vpanoptic.config import load_config

    return load_config(None, ["output.save=jsonl", "model.name=oracle"])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


@pytest.mark.parametrize(
    "workers,requested,cores,expected",
    [(1, 0, 2, 1), (2, 0, 2, 1), (1, 0, 16, 8), (4, 0, 16, 3), (3, 0, 16, 4), (8, 0, 4, 1), (2, 5, 2, 5)],
)
def test_threads_per_worker_never_oversubscribe(workers, requested, cores, expected):
    assert threads_per_worker(workers, requested, cores) == expected
    if not requested:
        assert expected * workers <= max(cores, workers)


def test_planning_helpers_and_user_errors(tmp_path):
    (tmp_path / "a.MP4").write_bytes(b"x")
    (tmp_path / "a.mkv").write_bytes(b"x")
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / ".c.mp4").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    videos = find_videos(tmp_path)
    assert [v.name for v in videos] == ["a.MP4", "a.mkv"]
    assert output_names(videos) == ["a_MP4", "a_mkv"]
    assert [v.name for v in find_videos(tmp_path, "*.txt")] == ["b.txt"]
    with pytest.raises(UserError, match="no videos in .* match '\\*.avi'"):
        run_batch(tmp_path, tmp_path / "out", glob="*.avi")
    with pytest.raises(UserError, match="input folder not found"):
        run_batch(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(UserError, match="workers is 0"):
        run_batch(tmp_path, tmp_path / "out", workers=0)
    assert main(["batch", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2


def test_a_worker_builds_one_model_for_all_its_videos(monkeypatch):
    from vpanoptic import batch
    from vpanoptic.config import load_config
    from vpanoptic.models import registry

    built = []

    def factory(*, device="cpu", size=1):  # no `input`: one instance serves every video
        built.append(size)
        return object()

    entry = registry.ModelEntry("batch-test-shared", "test", "none", factory)
    monkeypatch.setitem(registry._ADDED, "batch-test-shared", entry)
    monkeypatch.setattr(batch, "_MODELS", {})
    cfg = load_config(None, ["model.name=batch-test-shared", "model.device=cpu"])
    first = batch._worker_model(cfg, "a.mp4")
    assert batch._worker_model(cfg, "b.mp4") is first and built == [1]
    batch._worker_model(load_config(None, ["model.name=batch-test-shared", "model.device=cpu",
                                           "model.options.size=2"]), "c.mp4")
    assert built == [1, 2]  # other options: a new model replaces the old one
    assert batch._worker_model(load_config(None, ["model.name=oracle"]), "a.mp4") is None  # built per input
