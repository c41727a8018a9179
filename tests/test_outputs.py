"""Output folders are never mixed: every command writes beside its target and swaps it in when done.

For `run`, `batch`, `synth`, `track`, `live` and `eval --json`: a foreign non-empty folder is
refused (exit 2, one line) unless --overwrite; an unwritable folder, a read-only filesystem, a
full disk (a small tmpfs) and a file-size limit (RLIMIT_FSIZE) are one line and exit 2 with the
previous output untouched and no temporary folder left; a rerun leaves nothing of the earlier one.
Tests run as root here and in CI, where chmod does not stop writes: unwritable paths are made
with a regular file in the way, or a read-only mount where mounting is permitted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from vpanoptic.cli import main
from vpanoptic.errors import StageError
from vpanoptic.outputs import MARKER, OutputError, is_vpanoptic_output, staged_file, staged_output
from vpanoptic.synth import write_sequence

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 8
RUN = ["--model", "oracle", "--no-progress"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outputs") / "clip"
    write_sequence(root, seed=5, frames=FRAMES, size=(128, 96), fps=10.0)
    return root


@pytest.fixture
def videos(clip, tmp_path) -> Path:
    """A batch input folder: two copies of the clip and its gt/ (for the oracle)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copytree(clip / "gt", folder / "gt")
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clip / "video.mp4", folder / name)
    return folder


def argv_of(command: str, clip: Path, videos: Path | None, out: Path) -> list[str]:
    """The command line of `command` writing to `out` (a folder; eval: a JSON file)."""
    return {
        "run": ["run", str(clip / "video.mp4"), "-o", str(out), *RUN, "--save", "png,jsonl"],
        "batch": ["batch", str(videos), "-o", str(out), "--save", "jsonl", *RUN],
        "synth": ["synth", str(out), "--frames", "3", "--size", "64x64", "--no-progress"],
        "track": ["track", str(clip / "gt"), "-o", str(out)],
        "live": ["live", str(clip / "video.mp4"), "-o", str(out), "--headless", str(out) + ".mp4", "--no-realtime",
                 "--model", "oracle"],
        "eval": ["eval", str(clip / "gt"), str(clip / "gt"), "--no-progress", "--json", str(out)],
    }[command]


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- reruns
def test_a_rerun_with_fewer_frames_leaves_none_of_the_earlier_run(clip, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(clip / "video.mp4"), "-o", str(out), *RUN, "--save", "png,coco,jsonl"]) == 0
    assert len(list((out / "panoptic_kitti").iterdir())) == FRAMES
    assert main(["run", str(clip / "video.mp4"), "-o", str(out), *RUN, "--save", "png,coco,jsonl",
                 "--max-frames", "3"]) == 0
    assert sorted(p.name for p in (out / "panoptic_kitti").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert len(list((out / "coco" / "panoptic").iterdir())) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["warnings"] == []
    assert siblings(tmp_path) == ["out"]  # no temporary folder left beside it
    assert main(["run", str(clip / "video.mp4"), "-o", str(out), *RUN, "--save", "jsonl"]) == 0
    assert siblings(out) == [MARKER, "segments.jsonl", "summary.json"]  # other outputs asked: the PNGs are gone


def test_a_track_rerun_replaces_the_earlier_sequences(clip, tmp_path):
    preds = tmp_path / "preds"
    for name in ("s1", "s2"):
        shutil.copytree(clip / "gt", preds / name)
    out = tmp_path / "out"
    assert main(["track", str(preds), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["s1", "s2"]
    shutil.rmtree(preds / "s2")
    for png in sorted((preds / "s1").iterdir())[3:]:
        png.unlink()
    assert main(["track", str(preds), "-o", str(out)]) == 0
    assert siblings(out) == [MARKER, "s1"] and len(list((out / "s1").iterdir())) == 3


def test_a_start_that_fails_leaves_the_previous_output(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(clip / "video.mp4"), "-o", str(out), *RUN, "--save", "jsonl"]) == 0
    before = snapshot(out)
    assert "input not found" in one_line_error(capsys, ["run", str(tmp_path / "missing.mp4"), "-o", str(out), *RUN])
    assert "not found" in one_line_error(capsys, ["track", str(tmp_path / "missing"), "-o", str(out)])
    assert snapshot(out) == before and siblings(tmp_path) == ["out"]


# --------------------------------------------------------------------------- foreign folders
@pytest.mark.parametrize("command", ["run", "batch", "synth", "track", "live"])
def test_a_foreign_folder_is_refused_untouched_and_overwrite_accepts_it(command, clip, videos, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n")
    argv = argv_of(command, clip, videos, out)
    err = one_line_error(capsys, argv)
    assert "is not empty and holds no vpanoptic output" in err and "--overwrite" in err
    assert siblings(out) == ["thesis.tex"] and (out / "thesis.tex").read_text() == "years of work\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert is_vpanoptic_output(out)
    # run, synth, track, live replace the folder; batch adds its videos and leaves other files alone
    assert (out / "thesis.tex").exists() == (command == "batch")
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert main(argv) == 0  # its own output now: a rerun needs no --overwrite
    capsys.readouterr()


def test_an_input_inside_the_output_folder_or_the_current_folder_is_refused(clip, tmp_path, capsys, monkeypatch):
    err = one_line_error(capsys, ["run", str(clip / "video.mp4"), "-o", str(clip), *RUN])
    assert "is inside the output folder" in err
    assert (clip / "video.mp4").is_file() and (clip / "meta.json").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    assert "is the current folder or holds it" in one_line_error(capsys, ["synth", ".", "--overwrite"])
    monkeypatch.chdir(tmp_path / "a")
    assert "is the current folder or holds it" in one_line_error(capsys, ["synth", "..", "--overwrite"])
    assert siblings(tmp_path) == ["a"]


def test_a_file_in_the_way_is_refused(clip, tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    assert "not a folder" in one_line_error(capsys, argv_of("run", clip, None, tmp_path / "out"))
    assert "expected a file" in one_line_error(capsys, argv_of("eval", clip, None, tmp_path))
    assert (tmp_path / "out").read_text() == "x"


# --------------------------------------------------------------------------- unwritable
@pytest.mark.parametrize("command", ["run", "batch", "synth", "track", "live", "eval"])
def test_an_unwritable_output_is_one_line_and_exit_2(command, clip, videos, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file: nothing can be made below it, not even by root\n")
    out = blocker / "out" / ("r.json" if command == "eval" else "")
    err = one_line_error(capsys, argv_of(command, clip, videos, out))
    assert err.startswith("vpanoptic: error: cannot write") and "blocker is a file, not a folder" in err, err
    if command == "eval":
        assert capsys.readouterr().out == ""  # refused before the work, not after printing the scores
    assert blocker.is_file()


@contextmanager
def mounted_tmpfs(path: Path, options: str):
    """A tmpfs at `path` (root only); the test is skipped where mounting is not permitted."""
    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _remount(path: Path, options: str) -> None:
    done = subprocess.run(["mount", "-o", f"remount,{options}", str(path)], capture_output=True, text=True,
                          timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot remount: {done.stderr.strip()}")


@pytest.mark.parametrize("command", ["run", "batch", "synth", "track", "eval"])
def test_a_read_only_filesystem_leaves_the_previous_output(command, clip, videos, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "disk", "size=4m") as disk:
        out = disk / ("r.json" if command == "eval" else "out")
        argv = argv_of(command, clip, videos, out)
        assert main(argv) == 0
        capsys.readouterr()
        before = snapshot(disk)
        _remount(disk, "ro")
        err = one_line_error(capsys, argv)
        assert "Read-only file system" in err, err
        assert snapshot(disk) == before


# --------------------------------------------------------------------------- full disk
@pytest.mark.parametrize("command", ["run", "batch", "synth", "track"])
def test_a_full_disk_is_one_line_and_leaves_the_previous_output(command, clip, videos, tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "disk", "size=64k") as disk:
        out = disk / "out"
        small = {"run": ["--max-frames", "1", "--save", "jsonl"], "batch": [], "synth": ["--frames", "1"],
                 "track": []}[command]
        if command == "batch":  # a batch that fits: one video, jsonl only
            (videos / "b.mp4").unlink()
        argv = argv_of(command, clip, videos, out)
        if command == "track":
            preds = tmp_path / "preds"
            shutil.copytree(clip / "gt", preds / "s1")
            argv[1] = str(preds)
        assert main([*argv, *small]) == 0
        capsys.readouterr()
        before = snapshot(disk)
        big = {"run": ["--save", "video,png,coco,jsonl"], "batch": ["--save", "video,png,coco,jsonl", "--force"],
               "synth": ["--frames", "40", "--size", "256x192"], "track": []}[command]
        if command == "track":  # many more sequences than fit
            for i in range(2, 12):
                shutil.copytree(clip / "gt", preds / f"s{i}")
        err = one_line_error(capsys, [*argv, *big])
        assert "No space left on device" in err, err
        after = snapshot(disk)
        if command == "batch":  # the report says what happened; the video's earlier folder stays
            report = json.loads(after.pop("out/batch_report.json"))
            assert "No space left on device" in report["items"][0]["error"]
            for name in ("out/batch_report.json", "out/batch_report.csv"):
                before.pop(name)
            after.pop("out/batch_report.csv")
        assert after == before  # the previous output as it was, no temporary folder left


FSIZE_PROBE = """
import resource, signal, sys
from vpanoptic.cli import main
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", ["run", "batch", "synth", "eval"])
def test_a_file_size_limit_is_one_line_and_leaves_the_previous_output(command, clip, videos, tmp_path):
    out = tmp_path / ("r.json" if command == "eval" else "out")
    argv = argv_of(command, clip, videos, out)
    if command == "run":
        argv += ["--save", "video,png,jsonl"]
    assert main(argv) == 0
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FSIZE_PROBE, "600", *argv], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert len(err.splitlines()) == 1 and "File too large" in err, err
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- the staging itself
def test_an_interrupted_run_replaces_the_target_only_with_its_summary(tmp_path):
    target = tmp_path / "out"
    with staged_output(target, command="test") as tmp:
        (tmp / "old.png").write_text("old")
    keep = {"command": "test", "keep_partial_with": "summary.json"}
    with pytest.raises(KeyboardInterrupt), staged_output(target, **keep) as tmp:
        (tmp / "new.png").write_text("new")
        raise KeyboardInterrupt  # before the summary: nothing self-describing to publish
    assert siblings(target) == [MARKER, "old.png"]
    with pytest.raises(KeyboardInterrupt), staged_output(target, **keep) as tmp:
        (tmp / "new.png").write_text("new")
        (tmp / "summary.json").write_text('{"status": "interrupted"}')
        raise KeyboardInterrupt
    assert siblings(target) == [MARKER, "new.png", "summary.json"]
    error = OSError(28, "No space left on device")
    with pytest.raises(OutputError, match="No space left"), staged_output(target, **keep) as tmp:
        (tmp / "summary.json").write_text('{"status": "failed"}')
        raise StageError("sink:png", error) from error  # a write failure is never published
    assert siblings(target) == [MARKER, "new.png", "summary.json"] and siblings(tmp_path) == ["out"]


def test_a_partial_folder_of_a_killed_run_is_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".out.partial-{dead}").mkdir()
    (tmp_path / f".out.partial-{os.getppid()}").mkdir()  # a live process's: left alone
    with staged_output(tmp_path / "out", command="test"):
        pass
    assert siblings(tmp_path) == [f".out.partial-{os.getppid()}", "out"]


def test_staged_file_replaces_the_file_only_when_done(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), staged_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and siblings(tmp_path) == ["r.json"]
    with staged_file(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new" and siblings(tmp_path) == ["r.json"]


def test_earlier_outputs_without_the_marker_are_recognised(tmp_path):
    for name, data, ours in [("summary.json", {"status": "ok"}, True), ("batch_report.json", {"items": []}, True),
                             ("meta.json", {"generator": "vpanoptic.synth"}, True),
                             ("meta.json", {"generator": "blender"}, False), ("summary.json", [1], False)]:
        folder = tmp_path / f"{name}-{ours}-{len(str(data))}"
        folder.mkdir()
        (folder / name).write_text(json.dumps(data))
        assert is_vpanoptic_output(folder) == ours, (name, data)


# --------------------------------------------------------------------------- warnings and batch reruns
def test_model_warnings_reach_summary_json_and_stderr(clip, tmp_path, capsys, monkeypatch):
    from vpanoptic.models import registry
    from vpanoptic.models.oracle import OracleModel

    message = "this footage looks unlike the synthetic street world; try --model maskrcnn-v2-coco"

    class Warns(OracleModel):  # judges its input on the first frames, as the default model does
        def predict(self, frames):
            if not self.warnings:
                self.warnings.append(message)
                logging.getLogger("vpanoptic.models.test").warning(message)
                logging.getLogger("vpanoptic.models.test").info("not shown")
            return super().predict(frames)

    def factory(*, device="cpu", input=None):
        return Warns(device=device, input=input)

    monkeypatch.setitem(registry._ADDED, "warns", registry.ModelEntry("warns", "test", "kitti-step", factory))
    out = tmp_path / "out"
    assert main(["run", str(clip / "video.mp4"), "-o", str(out), "--model", "warns", "--no-progress",
                 "--save", "jsonl"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"vpanoptic: warning: {message}"]
    assert json.loads((out / "summary.json").read_text())["warnings"] == [message]
    assert main(["models"]) == 0 and main(["models"]) == 0  # the handler is added once
    logging.getLogger("vpanoptic.x").warning("once")
    assert capsys.readouterr().err.count("vpanoptic: warning: once") == 1


def test_a_model_kept_across_inputs_reports_each_inputs_own_warnings(clip, tmp_path):
    from vpanoptic.config import load_config
    from vpanoptic.job import run_video
    from vpanoptic.models.oracle import OracleModel

    class JudgesFirstInput(OracleModel):
        inputs = 0

        def begin_input(self):
            super().begin_input()
            self.inputs += 1

        def predict(self, frames):
            if self.inputs == 1 and not self.warnings:
                self.warnings.append("the first input looks odd")
            return super().predict(frames)

    model = JudgesFirstInput(device="cpu", input=str(clip / "video.mp4"))
    cfg = load_config(overrides=["output.save=jsonl", "model.name=oracle"])
    first = run_video(str(clip / "video.mp4"), tmp_path / "a", cfg, model=model)
    second = run_video(str(clip / "video.mp4"), tmp_path / "b", cfg, model=model)
    assert first["warnings"] == ["the first input looks odd"]
    assert second["warnings"] == [] and model.inputs == 2


def test_a_batch_rerun_with_nothing_to_do_says_so(videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(videos), "-o", str(out), "--save", "jsonl", *RUN]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert "videos/hour" in first and "None" not in first
    assert main(["batch", str(videos), "-o", str(out), "--save", "jsonl", *RUN]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "2 already done; nothing left to do" in last and "None" not in last, last



def test_an_interrupted_synth_leaves_the_earlier_sequence_and_says_so(tmp_path, capsys, monkeypatch):
    import vpanoptic.synth.writer as writer_module

    out = tmp_path / "seq"
    assert main(["synth", str(out), "--frames", "2", "--size", "64x64", "--no-progress"]) == 0
    before = snapshot(out)
    real, calls = writer_module.write_kitti_step, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(writer_module, "write_kitti_step", interrupted)
    assert main(["synth", str(out), "--frames", "5", "--size", "64x64", "--no-progress"]) == 130
    assert capsys.readouterr().err.strip() == f"vpanoptic: interrupted; {out} was left as it was"
    assert snapshot(out) == before and siblings(tmp_path) == ["seq"]
