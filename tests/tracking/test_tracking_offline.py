"""`vpanoptic track`: offline re-tracking of KITTI-STEP prediction folders, and its errors."""

import numpy as np
import pytest

from vpanoptic.cli import main
from vpanoptic.io.formats import read_kitti_step, write_kitti_step, write_rgb_png
from vpanoptic.tracking.offline import find_sequences, retrack_directory

H, W = 24, 48
CAR, PERSON, ROAD, SKY = 13, 11, 0, 10


def truth(k):
    """Frame k: sky on top, road below, a car moving right, a person moving left, a crowd blob."""
    sem = np.full((H, W), ROAD, np.int32)
    sem[:4] = SKY
    inst = np.zeros((H, W), np.int32)
    sem[6:12, 2 + 2 * k: 10 + 2 * k] = CAR
    inst[6:12, 2 + 2 * k: 10 + 2 * k] = 1
    sem[14:22, 40 - 2 * k: 44 - 2 * k] = PERSON
    inst[14:22, 40 - 2 * k: 44 - 2 * k] = 2
    sem[20:24, 0:3] = PERSON  # crowd: thing class, instance 0
    return sem, inst


def write_predictions(folder, frames=6, seed=0):
    """Per-frame arbitrary instance ids (a detector's), as KITTI-STEP PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(frames):
        sem, inst = truth(k)
        arbitrary = np.zeros(3, np.int32)
        arbitrary[1:] = rng.choice(np.arange(100, 999), 2, replace=False)
        write_kitti_step(folder / f"{k:06d}.png", sem, arbitrary[inst])


def consistent(out_folder, frames=6):
    seen = {1: set(), 2: set()}
    for k in range(frames):
        sem, inst = read_kitti_step(out_folder / f"{k:06d}.png")
        true_sem, true_inst = truth(k)
        assert (sem == true_sem).all()  # semantic channel unchanged
        assert (inst[true_inst == 0] == 0).all()  # stuff and crowd: instance 0
        for g in (1, 2):
            values = np.unique(inst[true_inst == g])
            assert values.size == 1 and values[0] > 0
            seen[g].add(int(values[0]))
    return seen


def test_track_command_gives_consistent_ids_per_sequence(tmp_path, capsys):
    pred, out = tmp_path / "pred", tmp_path / "out"
    write_predictions(pred / "0001", seed=1)
    write_predictions(pred / "0002", seed=2)
    assert main(["track", str(pred), "-o", str(out), "--fps", "10"]) == 0
    for seq in ("0001", "0002"):
        seen = consistent(out / seq)
        assert len(seen[1]) == 1 and len(seen[2]) == 1 and seen[1] != seen[2]
    assert "wrote 12 frames of 2 sequence(s)" in capsys.readouterr().out


def test_a_single_sequence_folder_and_tracker_options(tmp_path):
    pred, out = tmp_path / "frames", tmp_path / "out"
    write_predictions(pred)
    assert main(["track", str(pred), "-o", str(out), "--set", "max_lost_seconds=2", "--tracker", "greedy"]) == 0
    seen = consistent(out)
    assert all(len(v) == 1 for v in seen.values())
    assert [name for name, _ in find_sequences(pred)] == [""]
    done = retrack_directory(pred, tmp_path / "again", fps=5.0)
    assert done == [("", 6, 2)]


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vpanoptic: error:") and "\n" not in err
    return err


def test_bad_input_gives_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert "not found" in one_line_error(capsys, ["track", str(tmp_path / "missing"), "-o", out])

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no PNG frames" in one_line_error(capsys, ["track", str(empty), "-o", out])

    mixed_kind = tmp_path / "notpng"
    write_predictions(mixed_kind / "seq", frames=2)
    (mixed_kind / "seq" / "notes.txt").write_text("hello")
    assert "notes.txt is not a PNG" in one_line_error(capsys, ["track", str(mixed_kind), "-o", out])

    sizes = tmp_path / "sizes"
    write_predictions(sizes, frames=2)
    write_kitti_step(sizes / "000002.png", np.zeros((10, 10), np.int32), np.zeros((10, 10), np.int32))
    assert "one size" in one_line_error(capsys, ["track", str(sizes), "-o", out])

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "000000.png").write_bytes(b"not really a png")
    assert "cannot read" in one_line_error(capsys, ["track", str(broken), "-o", out])

    classes = tmp_path / "classes"
    classes.mkdir()
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 77  # no such semantic class
    write_rgb_png(classes / "000000.png", rgb)
    assert "not kitti-step classes" in one_line_error(capsys, ["track", str(classes), "-o", out]).lower()

    assert "fps" in one_line_error(capsys, ["track", str(sizes), "-o", out, "--fps", "0"])
    assert "tracker.iou_thresh" in one_line_error(capsys, ["track", str(sizes), "-o", out, "--set", "iou_thresh=1"])


def test_output_folder_must_differ_from_the_input(tmp_path):
    from vpanoptic.errors import UserError

    write_predictions(tmp_path / "p", frames=1)
    with pytest.raises(UserError, match="output folder is the prediction folder"):
        retrack_directory(tmp_path / "p", tmp_path / "p")
