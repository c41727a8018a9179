"""PQ: deeplab2 / tensorflow-models reference values, a panopticapi-rule hand case, properties."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import naive_deeplab2_pq, naive_panopticapi_pq, panoptic, perturb, random_frame, step_to_coco

from vpanoptic.eval import COCOPanopticQuality, PanopticQuality


def _per_class(result: dict, key: str) -> list:
    return [result["per_class"][c][key] for c in sorted(result["per_class"])]


def _valid_mean(result: dict, key: str) -> float:
    return float(np.mean([v[key] for v in result["per_class"].values() if v["valid"]]))


def test_deeplab2_predicted_non_contiguous_ignore_label():
    # google-research/deeplab2 evaluation/panoptic_quality_test.py::
    # test_predicted_non_contiguous_ignore_label: expected pq 2/9, sq 1/3, rq 2/9 and the
    # class-averaged tp 1/3, fn 2/3, fp 2/3.
    pq = PanopticQuality(num_classes=3, ignore_label=9, label_divisor=256, offset=256 * 256)
    gt = (np.array([[0, 9, 9], [1, 2, 2], [1, 9, 9]]), np.array([[0, 2, 2], [1, 0, 0], [1, 0, 0]]))
    pred = (np.array([[0, 0, 9], [1, 1, 1], [1, 9, 9]]), np.array([[0, 0, 0], [0, 1, 1], [0, 1, 1]]))
    pq.update(gt, pred)
    r = pq.result()
    assert (r["PQ"], r["SQ"], r["RQ"]) == pytest.approx((2 / 9, 1 / 3, 2 / 9), abs=1e-4)
    assert _valid_mean(r, "TP") == pytest.approx(1 / 3, abs=1e-4)
    assert _valid_mean(r, "FN") == pytest.approx(2 / 3, abs=1e-4)
    assert _valid_mean(r, "FP") == pytest.approx(2 / 3, abs=1e-4)


def _grid(rows: str) -> np.ndarray:
    """A small label map written row by row, one digit a pixel: "110 120" is [[1, 1, 0], [1, 2, 0]]."""
    return np.array([[int(c) for c in row] for row in rows.split()])


# tensorflow/models research/deeplab/evaluation/panoptic_quality_test.py (the predecessor of
# deeplab2's PanopticQuality, same rules). Each case: constructor arguments, then
# (gt categories, gt instances, pred categories, pred instances), then expected per-class
# (iou, tp, fn, fp) and the mean PQ.
_INST_PERFECT = _grid("111111 122221 122221 122221 122111 121111")
_WRONG_DET = _grid("000000 010010 011110 011110 000000 000000")
_GOOD_DET = _grid("111111 111111 122221 122211 111111 111111")
_GT_LABELS = _grid("111111 111111 112221 122221 111111 111111")
_BAD_DET = _grid("111111 111111 111221 111221 111221 111111")
_CATS = _grid("111111 111111 122122 122122 111111 111111")
_PRED_INST = np.zeros((6, 6), int)
_PRED_INST[2:4, 4:6] = 1
_GT_INST = np.zeros((6, 6), int)
_GT_INST[2:4, 1:3] = 1
_Z = np.zeros((6, 6), int)

TF_MODELS_CASES = {
    "perfect_match": (
        dict(num_classes=1, ignore_label=2, label_divisor=16, offset=16),
        (_Z, _INST_PERFECT, _Z, _INST_PERFECT),
        ([2.0], [2], [0], [0]), 1.0,
    ),
    "totally_wrong": (
        dict(num_classes=2, ignore_label=2, label_divisor=1, offset=16),
        (1 - _WRONG_DET, _Z, _WRONG_DET, _Z),
        ([0.0, 0.0], [0, 0], [1, 1], [1, 1]), 0.0,
    ),
    "matches_by_iou_good": (  # iou(1, 1) = 28/30, iou(2, 2) = 6/8
        dict(num_classes=1, ignore_label=2, label_divisor=16, offset=16),
        (_Z, _GT_LABELS, _Z, _GOOD_DET),
        ([28 / 30 + 6 / 8], [2], [0], [0]), (28 / 30 + 6 / 8) / 2,
    ),
    "matches_by_iou_bad": (  # iou(1, 1) = 27/32
        dict(num_classes=1, ignore_label=2, label_divisor=16, offset=16),
        (_Z, _GT_LABELS, _Z, _BAD_DET),
        ([27 / 32], [1], [1], [1]), (27 / 32) * (1 / 2),
    ),
    "wrong_instances": (
        dict(num_classes=3, ignore_label=0, label_divisor=10, offset=100),
        (_CATS, _Z, _CATS, _PRED_INST),
        ([0.0, 1.0, 0.0], [0, 1, 0], [0, 0, 1], [0, 0, 2]), 0.5,
    ),
    "instance_order_is_arbitrary": (
        dict(num_classes=3, ignore_label=0, label_divisor=10, offset=100),
        (_CATS, _GT_INST, _CATS, _PRED_INST),
        ([0.0, 1.0, 2.0], [0, 1, 2], [0, 0, 0], [0, 0, 0]), 1.0,
    ),
}


@pytest.mark.parametrize("name", list(TF_MODELS_CASES))
def test_tf_models_deeplab_cases(name):
    kwargs, (gc, gi, pc, pi), (iou, tp, fn, fp), mean_pq = TF_MODELS_CASES[name]
    pq = PanopticQuality(**kwargs)
    pq.update((gc, gi), (pc, pi))
    r = pq.result()
    np.testing.assert_array_almost_equal(_per_class(r, "IoU"), iou)
    assert _per_class(r, "TP") == tp
    assert _per_class(r, "FN") == fn
    assert _per_class(r, "FP") == fp
    assert r["PQ"] == pytest.approx(mean_pq)


def test_tf_models_merge_accumulates_all_across_instances():
    # tensorflow/models ...panoptic_quality_test.py::test_merge_accumulates_all_across_instances:
    # two good and two bad frames -> iou = 2 * (28/30 + 6/8) + 2 * 27/32, tp 6, fn 2, fp 2,
    # PQ = 0.63177083.
    pq = PanopticQuality(num_classes=1, ignore_label=2, label_divisor=16, offset=16)
    for det in (_GOOD_DET, _GOOD_DET, _BAD_DET, _BAD_DET):
        pq.update((_Z, _GT_LABELS), (_Z, det))
    r = pq.result()
    assert r["per_class"][0]["IoU"] == pytest.approx(2 * (28 / 30 + 6 / 8) + 2 * (27 / 32))
    assert (r["per_class"][0]["TP"], r["per_class"][0]["FN"], r["per_class"][0]["FP"]) == (6, 2, 2)
    assert r["PQ"] == pytest.approx(0.63177083)


def test_matches_deeplab2_definition_on_random_frames(rng):
    frames = []
    for _ in range(12):
        f = random_frame(rng)
        frames.append((panoptic(f), panoptic(perturb(rng, f))))
    pq = PanopticQuality(num_classes=4, things_list=[2, 3])
    for gt, pred in frames:
        pq.update(gt, pred)
    r = pq.result()
    iou, tp, fp, fn = naive_deeplab2_pq(frames, num_classes=4, ignore=255, div=1000)
    np.testing.assert_allclose(_per_class(r, "IoU"), iou, rtol=1e-12)
    assert _per_class(r, "TP") == tp.tolist()
    assert _per_class(r, "FP") == fp.tolist()
    assert _per_class(r, "FN") == fn.tolist()


def test_matches_panopticapi_definition_on_random_frames(rng):
    images = []
    for _ in range(12):
        f = random_frame(rng)
        images.append(step_to_coco(f, things=(2, 3)) + step_to_coco(perturb(rng, f), things=()))
    pq = COCOPanopticQuality(categories={0: False, 1: False, 2: True, 3: True})
    for image in images:
        pq.update(*image)
    r = pq.result()
    iou, tp, fp, fn = naive_panopticapi_pq(images, 4)
    np.testing.assert_allclose(_per_class(r, "IoU"), iou, rtol=1e-12)
    assert _per_class(r, "TP") == tp.tolist()
    assert _per_class(r, "FP") == fp.tolist()
    assert _per_class(r, "FN") == fn.tolist()
    assert sum(s["iscrowd"] for image in images for s in image[1]) > 0  # crowd was exercised


def test_perfect_prediction_is_one(rng):
    pq = PanopticQuality(num_classes=4, things_list=[2, 3])
    for _ in range(5):
        f = random_frame(rng)
        pq.update(f, f)
    r = pq.result()
    assert (r["PQ"], r["SQ"], r["RQ"], r["PQ_things"], r["PQ_stuff"]) == pytest.approx((1, 1, 1, 1, 1))


def test_void_overlap_leaves_union_and_waives_fp():
    # deeplab2 rules, classes 0 (stuff) and 1 (thing), void = 255 * 1000.
    # gt:   [0 0 0 | 1.1 1.1 | void void void]   pred: [0 0 0 | 1.1 1.1 1.1 | 1.2 1.2]
    # pred 1.1 = 3 px, 1 on void -> IoU = 2 / (3 + 2 - 2 - 1) = 1;  pred 1.2 lies on void only
    # -> not a FP. Everything matches: PQ = 1.
    gt = (np.array([[0, 0, 0, 1, 1, 255, 255, 255]]), np.array([[0, 0, 0, 1, 1, 0, 0, 0]]))
    pred = (np.array([[0, 0, 0, 1, 1, 1, 1, 1]]), np.array([[0, 0, 0, 1, 1, 1, 2, 2]]))
    pq = PanopticQuality(num_classes=2, things_list=[1])
    pq.update(gt, pred)
    r = pq.result()
    assert r["PQ"] == pytest.approx(1.0)
    assert r["per_class"][1]["FP"] == 0


# panopticapi-rule hand case (rules of cocodataset/panopticapi evaluation.py). Categories:
# 1 person (thing), 2 sky (stuff). Image A (4 x 6):
#   gt   10 10 10 10 10 10      pred  1 1 1 1 1 1
#        10 10 10 10 10 10            1 1 1 1 1 1
#        20 20 20 30 30  0            2 2 3 3 3 1
#        20 20 20 30 30  0            2 2 3 3 3 2
#   10 sky, 20 person, 30 person crowd, 0 VOID; pred 1 sky, 2 person, 3 person.
#   sky:    |p1| = 13 (1 on VOID): IoU = 12 / (13 + 12 - 12 - 1) = 1      -> TP
#   person: |p2| = 5 (1 on VOID):  IoU = 4 / (5 + 6 - 4 - 1) = 2/3       -> TP
#   p3: IoU with 20 = 2 / (6 + 6 - 2) = 0.2; 4 of its 6 pixels on crowd > 1/2 -> not FP
# Image B (3 x 4):
#   gt   10 10 10 10            pred  1 1 1 1
#        30 30 30 20                  3 3 3 2
#        20 20 20 20                  3 3 3 2
#   sky TP (IoU 1). p3 vs 20: crowd pixels stay in the union -> IoU = 3 / (6 + 5 - 3) = 3/8;
#   p2 vs 20: 2 / 5. No match: 20 is FN; p2 is FP; p3 is FP (crowd share 3/6 is not > 1/2).
# Totals: sky TP 2, IoU 2 -> PQ 1.  person TP 1 (IoU 2/3), FP 2, FN 1:
#   PQ = (2/3) / (1 + 1 + 0.5) = 4/15, SQ = 2/3, RQ = 1/2.5 = 0.4
# PQ = (1 + 4/15) / 2 = 19/30; things 4/15; stuff 1.
COCO_CATEGORIES = [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}]
IMAGE_A = (
    np.array([[10] * 6, [10] * 6, [20, 20, 20, 30, 30, 0], [20, 20, 20, 30, 30, 0]]),
    [{"id": 10, "category_id": 2, "iscrowd": 0}, {"id": 20, "category_id": 1, "iscrowd": 0},
     {"id": 30, "category_id": 1, "iscrowd": 1}],
    np.array([[1] * 6, [1] * 6, [2, 2, 3, 3, 3, 1], [2, 2, 3, 3, 3, 2]]),
    [{"id": 1, "category_id": 2}, {"id": 2, "category_id": 1}, {"id": 3, "category_id": 1}],
)
IMAGE_B = (
    np.array([[10] * 4, [30, 30, 30, 20], [20] * 4]),
    IMAGE_A[1],
    np.array([[1] * 4, [3, 3, 3, 2], [3, 3, 3, 2]]),
    IMAGE_A[3],
)


def test_panopticapi_rules_hand_case():
    pq = COCOPanopticQuality(categories=COCO_CATEGORIES)
    pq.update(*IMAGE_A)
    ra = pq.result()
    assert ra["per_class"][1]["IoU"] == pytest.approx(2 / 3)
    assert (ra["per_class"][1]["TP"], ra["per_class"][1]["FP"], ra["per_class"][1]["FN"]) == (1, 0, 0)
    assert ra["PQ"] == pytest.approx((1 + 2 / 3) / 2)
    pq.update(*IMAGE_B)
    r = pq.result()
    person = r["per_class"][1]
    assert (person["TP"], person["FP"], person["FN"]) == (1, 2, 1)
    assert (person["PQ"], person["SQ"], person["RQ"]) == pytest.approx((4 / 15, 2 / 3, 0.4))
    assert r["per_class"][2]["PQ"] == pytest.approx(1.0)
    assert (r["PQ"], r["PQ_things"], r["PQ_stuff"]) == pytest.approx((19 / 30, 4 / 15, 1.0))
    assert (r["n"], r["n_things"], r["n_stuff"]) == (2, 1, 1)


def test_panopticapi_unlisted_gt_ids_are_skipped_and_absent_gt_segments_are_fn():
    gt_ids, gt_segments, pred_ids, pred_segments = IMAGE_A
    gt_ids = gt_ids.copy()
    gt_ids[0, 0] = 77  # in the PNG, not in the JSON: neither matched nor FN
    extra = gt_segments + [{"id": 40, "category_id": 1, "iscrowd": 0}]  # in the JSON only: FN
    pq = COCOPanopticQuality(categories={1: True, 2: False})
    pq.update(gt_ids, extra, pred_ids, pred_segments)
    r = pq.result()
    assert r["per_class"][1]["FN"] == 1
    assert r["per_class"][2]["TP"] == 1  # sky IoU = 11 / (13 + 11 - 11 - 1) = 11/12 > 0.5


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: (a[0], a[1], a[2], a[3][:2]), "not in segments_info"),
        (lambda a: (a[0], a[1], a[2], a[3] + [{"id": 9, "category_id": 1}]), "not in the id map"),
        (lambda a: (a[0], a[1], a[2], [{"id": 1, "category_id": 5}] + a[3][1:]), "unknown category"),
        (lambda a: (a[0], a[1], a[2][:, :5], a[3]), "sizes differ"),
    ],
)
def test_panopticapi_input_errors(edit, message):
    pq = COCOPanopticQuality(categories=COCO_CATEGORIES)
    with pytest.raises(ValueError, match=message):
        pq.update(*edit(IMAGE_A))


def test_deeplab2_rejects_unknown_classes():
    pq = PanopticQuality(num_classes=2)
    with pytest.raises(ValueError, match="classes"):
        pq.update(np.zeros((2, 2), int), np.full((2, 2), 5000))


def test_panopticapi_counts_only_the_last_crowd_segment_of_a_category():
    """panopticapi evaluation.py fills ``crowd_labels_dict[category] = gt_label`` while walking
    ``segments_info``, so only the last crowd segment of a category waives FPs. Row of 10 px:
    gt crowd A (id 1, px 0-3), stuff B (id 3, px 4-7), crowd A (id 2, px 8-9); pred A (id 10)
    on px 0-3 lies on the *first* crowd only -> FP; pred B (id 11) matches. PQ = (0 + 1) / 2."""
    gt = np.array([[1, 1, 1, 1, 3, 3, 3, 3, 2, 2]])
    pred = np.array([[10, 10, 10, 10, 11, 11, 11, 11, 0, 0]])
    gt_segments = [{"id": 1, "category_id": 1, "iscrowd": 1}, {"id": 3, "category_id": 2, "iscrowd": 0},
                   {"id": 2, "category_id": 1, "iscrowd": 1}]
    pred_segments = [{"id": 10, "category_id": 1}, {"id": 11, "category_id": 2}]
    pq = COCOPanopticQuality(categories={1: True, 2: False})
    pq.update(gt, gt_segments, pred, pred_segments)
    r = pq.result()
    assert r["per_class"][1]["FP"] == 1 and r["PQ"] == pytest.approx(0.5)
    # Listed the other way round, the crowd under the prediction is the last one: no FP.
    pq = COCOPanopticQuality(categories={1: True, 2: False})
    pq.update(gt, [gt_segments[2], gt_segments[1], gt_segments[0]], pred, pred_segments)
    r = pq.result()
    assert r["per_class"][1]["FP"] == 0 and r["PQ"] == pytest.approx(1.0)
