"""evaluate_sequences: keys, agreement with the accumulators, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.eval import METRICS, PanopticQuality, STQuality, VideoPanopticQuality, evaluate_sequences


def _frame(t: int, shift: int = 0):
    """KITTI-STEP-like (semantic, instance): sky / road, a moving car and a person, void."""
    sem = np.full((6, 10), 10, np.int32)
    sem[3:] = 0
    inst = np.zeros((6, 10), np.int32)
    x = (t + shift) % 6
    sem[2:5, x:x + 3] = 13
    inst[2:5, x:x + 3] = 4
    sem[1:4, 8] = 11
    inst[1:4, 8] = 2
    sem[0, :2] = 255
    return sem, inst


GT = [[_frame(t) for t in range(4)], [_frame(t) for t in range(3)]]
PRED = [[_frame(t, shift=1 if t % 2 else 0) for t in range(4)], [_frame(t) for t in range(3)]]


def test_perfect_prediction_gives_ones_everywhere():
    r = evaluate_sequences(GT, GT, KITTI_STEP, metrics=METRICS)
    for key in ("STQ", "AQ", "SQ", "PQ", "VPQ", "VPQ_vpsnet", "PTQ", "sPTQ", "MOTSA", "sMOTSA"):
        assert r[key] == pytest.approx(1.0), key
    for name in METRICS:
        assert isinstance(r[name], dict)


def test_matches_the_accumulators():
    r = evaluate_sequences(GT, PRED, KITTI_STEP)
    assert set(r) == {"STQ", "AQ", "SQ", "PQ", "VPQ", "stq", "pq", "vpq"}
    common = dict(num_classes=19, ignore_label=255, label_divisor=1000)
    stq = STQuality(things_list=[11, 13], **common)
    pq = PanopticQuality(things_list=[11, 13], **common)
    vpq = VideoPanopticQuality(things_list=[11, 13], **common)
    for s, (gt_seq, pred_seq) in enumerate(zip(GT, PRED)):
        for gt, pred in zip(gt_seq, pred_seq):
            stq.update(gt, pred, sequence_id=s)
            pq.update(gt, pred)
            vpq.update(gt, pred, sequence_id=s)
    assert r["STQ"] == pytest.approx(stq.result()["STQ"])
    assert r["PQ"] == pytest.approx(pq.result()["PQ"])
    assert r["VPQ"] == pytest.approx(vpq.result()["VPQ"])
    assert 0 < r["STQ"] < 1 and 0 < r["VPQ"] < 1


@pytest.mark.parametrize(
    "gt, pred, metrics, message",
    [
        (GT, PRED[:1], ("stq",), "2 ground-truth sequences but 1 predicted"),
        (GT, [PRED[0][:3], PRED[1]], ("stq",), "sequence 0: 4 ground-truth frames but 3 predicted"),
        (GT, [PRED[0], [PRED[1][0], tuple(a[:, :9] for a in PRED[1][1]), PRED[1][2]]], ("pq",),
         "sequence 1 frame 1: .*sizes differ"),
        (GT, [[(np.full((6, 10), 40), np.zeros((6, 10), int))] * 4, PRED[1]], ("stq",),
         r"sequence 0 frame 0: category ids \[40\]"),
        (GT, PRED, ("stq", "hota"), "unknown metrics"),
    ],
)
def test_input_errors_are_one_line(gt, pred, metrics, message):
    with pytest.raises(ValueError, match=message) as info:
        evaluate_sequences(gt, pred, KITTI_STEP, metrics=metrics)
    assert "\n" not in str(info.value)
