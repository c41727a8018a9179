"""PTQ / sPTQ (MOPT, Hurtado et al. 2020) on hand cases and random data."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import perturb, random_frame

from vpanoptic.eval import PanopticQuality, PanopticTrackingQuality

# Class 0 stuff, class 1 car (thing). Ground truth in every frame: [0 0 | car 1 x4 | 0 0].
GT = (np.array([[0, 0, 1, 1, 1, 1, 0, 0]]), np.array([[0, 0, 1, 1, 1, 1, 0, 0]]))
# Frames 0 and 1: car predicted as id 1 exactly. Frame 2: id 2 on 3 of the 4 car pixels, the
# 4th predicted as stuff -> car IoU 3/4 with an id switch (1 -> 2), stuff IoU 4/5.
PRED = [
    GT,
    GT,
    (np.array([[0, 0, 0, 1, 1, 1, 0, 0]]), np.array([[0, 0, 0, 2, 2, 2, 0, 0]])),
]


def test_hand_case():
    # car:   TP 3, sum IoU = 2.75, IDS 1 (soft: 0.75), FP = FN = 0
    #        PTQ = (2.75 - 1) / 3 = 7/12, sPTQ = (2.75 - 0.75) / 3 = 2/3, PQ = 2.75 / 3 = 11/12
    # stuff: TP 3, sum IoU = 2.8 -> PTQ = sPTQ = PQ = 2.8 / 3 = 14/15
    ptq = PanopticTrackingQuality(num_classes=2, things_list=[1])
    for pred in PRED:
        ptq.update(GT, pred, sequence_id="seq")
    r = ptq.result()
    car = r["per_class"][1]
    assert (car["IDS"], car["sIDS"], car["TP"]) == (1, pytest.approx(0.75), 3)
    assert (car["PTQ"], car["sPTQ"], car["PQ"]) == pytest.approx((7 / 12, 2 / 3, 11 / 12))
    expected = ((7 / 12 + 14 / 15) / 2, (2 / 3 + 14 / 15) / 2, (11 / 12 + 14 / 15) / 2)
    assert (r["PTQ"], r["sPTQ"], r["PQ"]) == pytest.approx(expected)
    assert (r["PTQ_things"], r["PTQ_stuff"]) == pytest.approx((7 / 12, 14 / 15))
    assert r["IDS"] == 1


def test_average_over_all_classes_counts_absent_ones_as_zero():
    ptq = PanopticTrackingQuality(num_classes=3, things_list=[1], average="all")
    for pred in PRED:
        ptq.update(GT, pred)
    assert ptq.result()["PTQ"] == pytest.approx((7 / 12 + 14 / 15 + 0) / 3)


def test_without_identity_switches_ptq_equals_pq(rng):
    ptq = PanopticTrackingQuality(num_classes=4, things_list=[2, 3])
    pq = PanopticQuality(num_classes=4, things_list=[2, 3])
    for s in range(8):  # one frame per sequence: no track can switch
        f = random_frame(rng)
        p = perturb(rng, f)
        ptq.update(f, p, sequence_id=s)
        pq.update(f, p)
    r = ptq.result()
    assert r["IDS"] == 0
    assert r["PTQ"] == pytest.approx(pq.result()["PQ"])
    assert r["sPTQ"] == pytest.approx(pq.result()["PQ"])


def test_instance_zero_is_not_tracked():
    # A gt thing with instance 0 has no identity: changing predicted ids there is no IDS.
    gt = (np.array([[1, 1, 1, 1]]), np.zeros((1, 4), int))
    ptq = PanopticTrackingQuality(num_classes=2, things_list=[1])
    ptq.update(gt, (gt[0], np.full((1, 4), 1)))
    ptq.update(gt, (gt[0], np.full((1, 4), 2)))
    assert ptq.result()["IDS"] == 0


def test_gap_does_not_reset_the_identity():
    # matched to 1, missed, matched to 2 -> one IDS (as in the MOPT script).
    ptq = PanopticTrackingQuality(num_classes=2, things_list=[1])
    missed = (np.zeros((1, 8), int), np.zeros((1, 8), int))
    for pred in (GT, missed, (GT[0], 2 * GT[1])):
        ptq.update(GT, pred)
    assert ptq.result()["IDS"] == 1


def test_bad_average():
    with pytest.raises(ValueError, match="average"):
        PanopticTrackingQuality(num_classes=2, things_list=[1], average="mean")
