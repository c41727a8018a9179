"""``vpanoptic eval``: numbers agree with the metric classes, JSON layout, one-line errors (exit 2)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vpanoptic.cli import main
from vpanoptic.datasets import CITYSCAPES, KITTI_STEP, MOTCHALLENGE_STEP, VIPSEG
from vpanoptic.eval import COCOPanopticQuality, VPSNetVideoPanopticQuality, evaluate_sequences
from vpanoptic.eval.formats import (
    step_to_coco,
    write_cityscapes_vps,
    write_coco_panoptic,
    write_mots_txt,
    write_step,
    write_vipseg,
)


def _frame(t: int, shift: int = 0, car_id: int = 4):
    sem = np.full((8, 12), 10, np.int32)
    sem[4:] = 0
    inst = np.zeros((8, 12), np.int32)
    x = (t + shift) % 7
    sem[3:6, x:x + 4] = 13
    inst[3:6, x:x + 4] = car_id
    sem[2:6, 10] = 11
    inst[2:6, 10] = 2
    sem[0, :3] = 255
    return sem, inst


GT = {"0001": [_frame(t) for t in range(4)], "0002": [_frame(t + 2) for t in range(3)]}
# Prediction: boundaries shifted every other frame, and the car changes id from frame 2 on in 0001.
PRED = {
    "0001": [_frame(t, shift=t % 2, car_id=4 if t < 2 else 9) for t in range(4)],
    "0002": [_frame(t + 2) for t in range(3)],
}


def _eval(capsys, *args):
    code = main(["eval", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_kitti_step_matches_evaluate_sequences_and_writes_json(tmp_path, capsys):
    write_step(tmp_path / "gt", GT)
    write_step(tmp_path / "pred", PRED)
    code, out, err = _eval(capsys, tmp_path / "gt", tmp_path / "pred", "--metrics", "stq,pq,vpq,ptq,motsa",
                           "--json", tmp_path / "r.json")
    assert code == 0, err
    ref = evaluate_sequences(list(GT.values()), list(PRED.values()), KITTI_STEP,
                             metrics=("stq", "pq", "vpq", "ptq", "mots"))
    data = json.loads((tmp_path / "r.json").read_text())
    for key in ("STQ", "AQ", "SQ", "PQ", "VPQ", "PTQ", "sPTQ", "MOTSA", "sMOTSA"):
        assert data[key] == pytest.approx(ref[key]), key
        assert isinstance(data[key], float)
    assert 0 < data["AQ"] < 1 and data["IDS"] == 1
    assert data["stq"]["ID_per_seq"] == ["0001", "0002"] and data["stq"]["AQ_per_seq"][1] == pytest.approx(1.0)
    assert set(data["vpq"]["per_window"]) == {"1", "2", "3", "4"}
    assert data["rules"]["pq"] == "deeplab2" and data["rules"]["vpq"] == "vip-deeplab"
    assert [s["frames"] for s in data["sequences"]] == [4, 3]
    assert "STQ" in out and "0002" in out  # table with the per-sequence rows


def test_perfect_prediction_single_sequence(tmp_path, capsys):
    write_step(tmp_path / "a", {"gt": GT["0001"]})
    code, out, _ = _eval(capsys, tmp_path / "a" / "gt", tmp_path / "a" / "gt")
    assert code == 0
    assert "100.00" in out


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: (p / "0001" / "000003.png").unlink(),
         r"sequence '0001': frames differ: missing in prediction \['000003'\]"),
        (lambda p: write_step(p, {"0002": [tuple(a[:, :10] for a in _frame(2))]}), "sizes differ"),
        (lambda p: write_step(p, {"0002": [(np.full((8, 12), 40, np.int32), np.zeros((8, 12), np.int32))]}),
         r"sequence '0002' frame '000000': category ids \[40\] are not in dataset 'kitti-step'"),
        (lambda p: write_step(p, {"0003": [_frame(0)]}), r"not in ground truth \['0003'\]"),
    ],
)
def test_mismatches_are_one_line_errors(tmp_path, capsys, edit, message):
    write_step(tmp_path / "gt", GT)
    write_step(tmp_path / "pred", PRED)
    edit(tmp_path / "pred")
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "pred")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("vpanoptic: error:")
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metrics", "stq,hota"], "unknown metric 'hota'"),
        (["--format", "kitti"], "unknown format 'kitti'"),
        (["--format", "coco", "--metrics", "stq"], "not defined for format 'coco'"),
    ],
)
def test_bad_options(tmp_path, capsys, args, message):
    write_step(tmp_path / "gt", GT)
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "gt", *args)
    assert code == 2 and message in err


def test_missing_input_is_an_error(tmp_path, capsys):
    code, _, err = _eval(capsys, tmp_path / "nope", tmp_path / "nope")
    assert code == 2 and "is not a folder" in err


def test_coco_pq_uses_panopticapi_rules(tmp_path, capsys):
    gt = [(i, *_frame(i)) for i in range(3)]
    pred = [(i, *_frame(i, shift=1)) for i in range(3)]
    write_coco_panoptic(tmp_path / "gt", gt, KITTI_STEP)
    write_coco_panoptic(tmp_path / "pred", pred, KITTI_STEP, prediction=True)
    code, _, err = _eval(capsys, tmp_path / "gt" / "panoptic.json", tmp_path / "pred", "--format", "coco",
                         "--metrics", "pq", "--json", tmp_path / "r.json")
    assert code == 0, err
    ref = COCOPanopticQuality(categories=[{"id": c.id, "isthing": c.isthing} for c in KITTI_STEP.categories])
    for (_, gs, gi), (_, ps, pi) in zip(gt, pred):
        g_ids, g_seg = step_to_coco(gs, gi, KITTI_STEP)
        p_ids, p_seg = step_to_coco(ps, pi, KITTI_STEP, crowd=False)
        ref.update(g_ids, g_seg, p_ids, p_seg)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["PQ"] == pytest.approx(ref.result()["PQ"]) and 0 < data["PQ"] < 1
    assert data["rules"] == {"pq": "panopticapi"}


def test_cityscapes_vps_uses_vpsnet_rules(tmp_path, capsys):
    write_cityscapes_vps(tmp_path, GT, CITYSCAPES)
    write_cityscapes_vps(tmp_path / "sub", PRED, CITYSCAPES, prediction=True)
    code, _, err = _eval(capsys, tmp_path / "panoptic_gt_val_city_vps.json", tmp_path / "sub",
                         "--format", "cityscapes-vps", "--metrics", "vpq,stq", "--json", tmp_path / "r.json")
    assert code == 0, err
    ref = VPSNetVideoPanopticQuality(num_classes=19, things_list=range(11, 19), window_sizes=(1, 2, 3, 4))
    for s, name in enumerate(GT):
        for g, p in zip(GT[name], PRED[name]):
            ref.update(g, p, sequence_id=s)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["VPQ"] == pytest.approx(ref.result()["VPQ"])
    assert set(data["vpq_vpsnet"]["per_window"]) == {"0", "5", "10", "15"}
    assert data["rules"]["vpq"] == "vpsnet"


def test_vipseg_windows(tmp_path, capsys):
    def vip(frame):
        sem, inst = frame
        sem = np.select([sem == 10, sem == 0, sem == 13, sem == 11], [28, 18, 48, 60], sem)
        return sem.astype(np.int32), inst

    write_vipseg(tmp_path / "gt", {k: [vip(f) for f in v] for k, v in GT.items()}, VIPSEG)
    write_vipseg(tmp_path / "pred", {k: [vip(f) for f in v] for k, v in PRED.items()}, VIPSEG, prediction=True)
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "pred", "--format", "vipseg", "--metrics", "vpq,pq",
                         "--json", tmp_path / "r.json")
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["vpq_window_sizes"] == [1, 2, 4, 6, 8]
    windows = data["vpq_vpsnet"]["per_window"]
    assert windows["0"]["windows"] == 7 and windows["15"]["windows"] == 1 and windows["25"]["windows"] == 0
    assert 0 < data["VPQ"] < 1 and 0 < data["PQ"] < 1


def test_motchallenge_step_defaults(tmp_path, capsys):
    def mot(frame):
        sem, inst = frame
        sem = np.select([sem == 10, sem == 0, sem == 13, sem == 11], [3, 0, 4, 4], sem).astype(np.int32)
        return sem, inst

    write_step(tmp_path / "gt", {k: [mot(f) for f in v] for k, v in GT.items()})
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "gt", "--format", "motchallenge-step",
                         "--json", tmp_path / "r.json")
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["dataset"] == MOTCHALLENGE_STEP.name and data["STQ"] == pytest.approx(1.0)


def test_mots_txt_hand_computed(tmp_path, capsys):
    """One pedestrian in 3 frames; the prediction switches its id at frame 2 and misses nothing:
    TP = 3, FP = FN = 0, IDS = 1, so MOTSA = 1 - 1/3 (mots_tools definition)."""
    def obj(value):
        a = np.zeros((6, 9), np.int64)
        a[1:4, 2:5] = value
        return a

    write_mots_txt(tmp_path / "gt" / "0002.txt", [obj(2001), obj(2001), obj(2001)])
    write_mots_txt(tmp_path / "pred" / "0002.txt", [obj(2005), obj(2005), obj(2007)])
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "pred", "--format", "mots", "--metrics", "motsa",
                         "--json", tmp_path / "r.json")
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["IDS"] == 1 and data["MOTSA"] == pytest.approx(2 / 3) and data["sMOTSA"] == pytest.approx(2 / 3)
    assert data["mots"]["per_class"]["2"]["TP"] == 3

    # A prediction file that stops early: the missing frame has no objects (a FN), not an error.
    write_mots_txt(tmp_path / "short" / "0002.txt", [obj(2005), obj(2005)])
    code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / "short", "--format", "mots", "--metrics", "motsa",
                         "--json", tmp_path / "r2.json")
    assert code == 0, err
    assert json.loads((tmp_path / "r2.json").read_text())["mots"]["all"]["FN"] == 1


def test_track_ids_past_the_divisor_are_renumbered_exactly(tmp_path, capsys):
    """A tracker that never reuses ids can write instance 1004 in a KITTI-STEP PNG (G*256+B
    holds up to 65535); scores equal those of the same prediction with small ids."""
    big = {k: [(s, np.where(i > 0, i + 1000, 0).astype(np.int32)) for s, i in v] for k, v in PRED.items()}
    write_step(tmp_path / "gt", GT)
    write_step(tmp_path / "small", PRED)
    write_step(tmp_path / "big", big)
    results = []
    for name in ("small", "big"):
        code, _, err = _eval(capsys, tmp_path / "gt", tmp_path / name, "--metrics", "stq,pq,vpq,motsa",
                             "--json", tmp_path / f"{name}.json")
        assert code == 0, err
        results.append(json.loads((tmp_path / f"{name}.json").read_text()))
    for key in ("STQ", "AQ", "PQ", "VPQ", "MOTSA", "IDS"):
        assert results[0][key] == pytest.approx(results[1][key]), key


def test_instance_relabeler_is_a_consistent_bijection():
    from vpanoptic.eval.evaluator import InstanceRelabeler

    relabel = InstanceRelabeler(1000)
    sem = np.array([[13, 13, 11, 0]])
    a = relabel(sem, np.array([[5000, 7000, 5000, 0]]))
    b = relabel(sem, np.array([[7000, 5000, 9, 0]]))
    assert a.tolist() == [[1, 2, 1, 0]] and b.tolist() == [[2, 1, 2, 0]]
    small = InstanceRelabeler(3)
    small(np.array([[1, 1]]), np.array([[4, 5]]))
    with pytest.raises(ValueError, match="more than 2 predicted instances of class 1"):
        small(np.array([[1]]), np.array([[6]]))


def test_prediction_png_and_json_must_agree(tmp_path, capsys):
    write_cityscapes_vps(tmp_path, GT, CITYSCAPES)
    write_cityscapes_vps(tmp_path / "sub", PRED, CITYSCAPES, prediction=True)
    data = json.loads((tmp_path / "sub" / "pred.json").read_text())
    data["annotations"][1]["segments_info"].pop()  # its pixels would silently become void
    (tmp_path / "sub" / "pred.json").write_text(json.dumps(data))
    code, _, err = _eval(capsys, tmp_path / "panoptic_gt_val_city_vps.json", tmp_path / "sub",
                         "--format", "cityscapes-vps", "--metrics", "vpq")
    assert code == 2 and "are in the PNG but not in the JSON" in err and "0001_0001_synth" in err


def test_default_metrics_follow_the_format(tmp_path, capsys):
    a = np.zeros((4, 6), np.int64)
    a[1:3, 1:4] = 2001
    write_mots_txt(tmp_path / "gt" / "0001.txt", [a, a])
    code, out, err = _eval(capsys, tmp_path / "gt", tmp_path / "gt", "--format", "mots")
    assert code == 0, err
    assert "MOTSA" in out and "STQ" not in out
