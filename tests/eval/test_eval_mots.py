"""MOTS metrics (mots_tools rules) on hand-made sequences."""

from __future__ import annotations

import numpy as np
import pytest

from vpanoptic.eval import MOTSMetrics, objects_from_id_map

H, W = 4, 8
CAR, PED, IGNORE = 1, 2, 10  # KITTI MOTS class ids


def box(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def id_map(objects) -> np.ndarray:
    out = np.zeros((H, W), np.int64)
    for track, cls, mask in objects:
        out[mask] = cls * 1000 + track if cls != IGNORE else 10000
    return out


# Three frames (object lists of (track id, class, mask)):
# f0: gt car 1 (6 px) and ped 1 (4 px). pred car 7 = gt car (IoU 1); ped 8 = gt ped + 2 px
#     (IoU 4/6).
# f1: gt car 1, ped 1, ignore region. pred car 9 = gt car (IoU 1, track 7 -> 9: IDS);
#     ped 11 inside the ignore region (ignored); car 12 on background (FP). gt ped missed (FN).
# f2: gt car 1. pred car 9 covers 4 of its 6 px (IoU 4/6); same track as before: no IDS.
# car: n_gt 3, TP 3, FN 0, FP 1, IDS 1, sum IoU = 8/3
#      MOTSA = 1 - (0 + 1 + 1)/3 = 1/3; sMOTSA = (8/3 - 1 - 1)/3 = 2/9; MOTSP = (8/3)/3 = 8/9
# ped: n_gt 2, TP 1, FN 1, FP 0, ignored 1, IDS 0, sum IoU = 2/3
#      MOTSA = 1 - 1/2 = 1/2; sMOTSA = (2/3)/2 = 1/3; MOTSP = 2/3
# all: n_gt 5, TP 4, FN 1, FP 1, IDS 1, sum IoU 10/3: MOTSA = 1 - 3/5 = 0.4; sMOTSA = (10/3 - 2)/5
GT = [
    [(1, CAR, box(0, 2, 0, 3)), (1, PED, box(2, 4, 6, 8))],
    [(1, CAR, box(0, 2, 0, 3)), (1, PED, box(2, 4, 6, 8)), (0, IGNORE, box(2, 4, 0, 3))],
    [(1, CAR, box(0, 2, 0, 3))],
]
PRED = [
    [(7, CAR, box(0, 2, 0, 3)), (8, PED, box(1, 4, 6, 8))],
    [(9, CAR, box(0, 2, 0, 3)), (11, PED, box(2, 4, 0, 2)), (12, CAR, box(0, 1, 4, 6))],
    [(9, CAR, box(0, 2, 0, 2))],
]


def _run(gt_frames, pred_frames, **kwargs) -> dict:
    mots = MOTSMetrics(class_ids=(CAR, PED), ignore_class=IGNORE, **kwargs)
    for gt, pred in zip(gt_frames, pred_frames):
        mots.update(gt, pred, sequence_id="0002")
    return mots.result()


def _check_hand_case(r: dict) -> None:
    car, ped = r["per_class"][CAR], r["per_class"][PED]
    assert (car["n_gt"], car["TP"], car["FN"], car["FP"], car["IDS"]) == (3, 3, 0, 1, 1)
    assert (car["MOTSA"], car["sMOTSA"], car["MOTSP"]) == pytest.approx((1 / 3, 2 / 9, 8 / 9))
    assert (ped["n_gt"], ped["TP"], ped["FN"], ped["FP"], ped["IDS"], ped["ignored"]) == (2, 1, 1, 0, 0, 1)
    assert (ped["MOTSA"], ped["sMOTSA"], ped["MOTSP"]) == pytest.approx((1 / 2, 1 / 3, 2 / 3))
    assert (r["all"]["MOTSA"], r["all"]["sMOTSA"]) == pytest.approx((0.4, (10 / 3 - 2) / 5))


def test_hand_case_with_object_lists():
    _check_hand_case(_run(GT, PRED))


def test_hand_case_with_id_maps():
    _check_hand_case(_run([id_map(f) for f in GT], [id_map(f) for f in PRED]))


def test_perfect_tracking_is_one():
    r = _run(GT, GT)
    for c in (CAR, PED):
        assert (r["per_class"][c]["MOTSA"], r["per_class"][c]["sMOTSA"], r["per_class"][c]["MOTSP"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "pred_tracks, expected_ids",
    [
        ((5, None, 5), 0),  # missed in the middle, same track again: no switch
        ((5, None, 6), 1),  # missed in the middle, new track: one switch (mots_tools rule)
        ((5, 6, 5), 2),  # switching back also counts
    ],
)
def test_id_switch_rule(pred_tracks, expected_ids):
    gt = [[(1, CAR, box(0, 2, 0, 4))] for _ in pred_tracks]
    pred = [[] if t is None else [(t, CAR, box(0, 2, 0, 4))] for t in pred_tracks]
    assert _run(gt, pred)["per_class"][CAR]["IDS"] == expected_ids


def test_iou_of_exactly_half_is_no_match():
    # gt 4 px, prediction covers 2 of them and nothing else: IoU = 2/4 = 0.5, not > 0.5.
    r = _run([[(1, CAR, box(0, 1, 0, 4))]], [[(3, CAR, box(0, 1, 0, 2))]])
    car = r["per_class"][CAR]
    assert (car["TP"], car["FN"], car["FP"]) == (0, 1, 1)


def test_classes_do_not_match_each_other():
    r = _run([[(1, CAR, box(0, 2, 0, 4))]], [[(1, PED, box(0, 2, 0, 4))]])
    assert (r["per_class"][CAR]["FN"], r["per_class"][PED]["FP"]) == (1, 1)


def test_sequences_keep_separate_identities():
    mots = MOTSMetrics(class_ids=(CAR,), ignore_class=None)
    mots.update([(1, CAR, box(0, 2, 0, 4))], [(5, CAR, box(0, 2, 0, 4))], sequence_id=0)
    mots.update([(1, CAR, box(0, 2, 0, 4))], [(6, CAR, box(0, 2, 0, 4))], sequence_id=1)
    assert mots.result()["per_class"][CAR]["IDS"] == 0


def test_objects_from_id_map():
    index, tracks, classes = objects_from_id_map(np.array([[0, 1002, 1002], [2001, 10000, 0]]))
    assert tracks.tolist() == [1002, 2001, 10000] and classes.tolist() == [1, 2, 10]
    assert index.tolist() == [[0, 1, 1], [2, 3, 0]]


def test_errors():
    mots = MOTSMetrics()
    with pytest.raises(ValueError, match="overlap"):
        mots.update([(1, CAR, box(0, 2, 0, 4)), (2, CAR, box(1, 3, 0, 4))], [])
    with pytest.raises(ValueError, match="sizes differ"):
        mots.update(np.zeros((2, 2), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="iou_threshold"):
        MOTSMetrics(iou_threshold=0.3)
