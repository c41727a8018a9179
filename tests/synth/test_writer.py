"""Tests of writing synthetic sequences: video, KITTI-STEP PNGs, meta.json, atomicity, errors."""

from __future__ import annotations

import errno
import json

import av
import numpy as np
import pytest

import vpanoptic.synth.writer as writer_module
from vpanoptic.errors import UserError
from vpanoptic.io.formats import read_kitti_step
from vpanoptic.outputs import OutputError
from vpanoptic.synth import GENERATOR_VERSION, SynthSequence, default_min_height, generate, write_sequence

SIZE = (192, 108)
FRAMES = 12
MIN_PSNR_DB = 30.0


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "seq"
    done = []
    seq = write_sequence(out, seed=4, frames=FRAMES, size=SIZE, fps=8.0, progress=done.append)
    return seq, done, list(generate(4, FRAMES, size=SIZE, fps=8.0))


def test_layout_and_progress(written):
    seq, done, _ = written
    assert isinstance(seq, SynthSequence)
    assert seq.video.is_file() and seq.meta.is_file() and seq.gt_dir.is_dir()
    assert sorted(p.name for p in seq.gt_dir.iterdir()) == [f"{i:06d}.png" for i in range(FRAMES)]
    assert seq.gt_path(3) == seq.gt_dir / "000003.png"
    assert done == list(range(1, FRAMES + 1))
    assert sorted(p.name for p in seq.root.parent.iterdir()) == ["seq"]      # no temporary left over


def test_video_decodes_to_the_rendered_frames(written):
    seq, _, frames = written
    with av.open(str(seq.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    assert len(decoded) == FRAMES
    for (time, image), frame in zip(decoded, frames):
        assert time == pytest.approx(frame.time, abs=1e-3)                  # pts from the frame times
        assert image.shape == (SIZE[1], SIZE[0], 3)
        mse = np.mean((image.astype(np.float64) - frame.image) ** 2)
        assert 10 * np.log10(255.0 ** 2 / mse) > MIN_PSNR_DB


def test_ground_truth_round_trips(written):
    seq, _, frames = written
    for frame in frames:
        semantic, instance = read_kitti_step(seq.gt_path(frame.index))
        assert np.array_equal(semantic, frame.semantic) and np.array_equal(instance, frame.instance)


def test_meta_json(written):
    seq, _, _ = written
    meta = json.loads(seq.meta.read_text())
    assert {k: meta[k] for k in ("seed", "frames", "width", "height", "fps", "scenario", "dataset")} == dict(
        seed=4, frames=FRAMES, width=SIZE[0], height=SIZE[1], fps=8.0, scenario="street", dataset="kitti-step")
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["config"]["ego_speed"] > 0
    assert meta["min_instance_height"] == default_min_height(SIZE[1])          # KITTI's crowd rule


def test_crowd_rule_can_be_switched_off(tmp_path):
    seq = write_sequence(tmp_path / "all", seed=4, frames=2, size=SIZE, fps=8.0, min_instance_height=0)
    assert json.loads(seq.meta.read_text())["min_instance_height"] == 0
    for frame in generate(4, 2, size=SIZE, fps=8.0, min_instance_height=0):
        semantic, instance = read_kitti_step(seq.gt_path(frame.index))
        assert np.array_equal(instance, frame.instance)
        assert np.array_equal(instance > 0, np.isin(semantic, [11, 13]))     # every thing pixel an instance


def test_scenario_fps_is_the_default(tmp_path):
    seq = write_sequence(tmp_path / "low", frames=2, size=(64, 64), scenario="low_fps")
    assert seq.fps == 3.0 and json.loads(seq.meta.read_text())["scenario"] == "low_fps"


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=(191, 108)), "even"),
    (dict(size=(62, 108)), ">= 64"),
    (dict(frames=0), "frames"),
    (dict(fps=-1.0), "fps"),
    (dict(scenario="nope"), "known: street"),
])
def test_bad_parameters_raise_one_line_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        write_sequence(tmp_path / "seq", **(dict(frames=2, size=(64, 64)) | kwargs))
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "seq"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        write_sequence(out, frames=2, size=(64, 64))
    assert (out / "keep.txt").read_text() == "x"
    write_sequence(out, frames=2, size=(64, 64), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [".vpanoptic.json", "gt", "meta.json", "video.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_sequence(empty, frames=1, size=(64, 64)).video.is_file()  # an empty directory is fine


def test_a_rerun_replaces_an_earlier_sequence_whole(tmp_path):
    out = tmp_path / "seq"
    write_sequence(out, frames=6, size=(64, 64))
    write_sequence(out, frames=2, size=(64, 64))  # an earlier vpanoptic output: no --overwrite needed
    assert sorted(p.name for p in (out / "gt").iterdir()) == ["000000.png", "000001.png"]
    assert json.loads((out / "meta.json").read_text())["frames"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_png(path, semantic, instance):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(writer_module, "write_kitti_step", failing_png)
    with pytest.raises(OSError, match="disk full"):
        write_sequence(tmp_path / "seq", frames=5, size=(64, 64))
    assert list(tmp_path.iterdir()) == []
    calls.clear()

    def full_disk(path, semantic, instance):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(writer_module, "write_kitti_step", full_disk)
    with pytest.raises(OutputError, match="cannot write to .*seq: No space left on device"):
        write_sequence(tmp_path / "seq", frames=5, size=(64, 64))
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_old_sequence_when_overwriting(tmp_path):
    out = tmp_path / "seq"
    write_sequence(out, frames=1, size=(64, 64))

    def stop(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sequence(out, frames=3, size=(64, 64), overwrite=True, progress=stop)
    assert json.loads((out / "meta.json").read_text())["frames"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]
