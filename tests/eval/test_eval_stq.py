"""STQ: reference values of deeplab2 and properties of the definition."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import naive_stq, panoptic, perturb, random_frame

from vpanoptic.eval import STQuality

DIV = 1000


def _stq_two_classes(**kwargs) -> STQuality:
    # classes = ['cars', 'sky'], cars is a thing (deeplab2 test_basic_examples).
    return STQuality(num_classes=2, things_list=[0], ignore_label=255, label_divisor=DIV, offset=256 * 256, **kwargs)


# Expected (STQ, AQ, IoU) from google-research/deeplab2
# evaluation/segmentation_and_tracking_quality_test.py::test_basic_examples (the same values
# are asserted by evaluation/numpy/segmentation_and_tracking_quality_test.py).
# Labels are semantic * 1000 + instance; semantic 0 = car (thing), 1 = sky.
BASIC_EXAMPLES = [
    # Example 0-5: ground truth is one car track of 5 pixels.
    ([[1, 1, 1, 1, 1]], [[1, 1, 1, 1, 1]], (1.0, 1.0, 1.0)),
    ([[1, 1, 1, 1, 1]], [[1, 1, 2, 2, 2]], (0.72111026, 0.52, 1.0)),
    ([[1, 1, 1, 1, 1]], [[1, 2, 2, 2, 2]], (0.82462113, 0.68, 1.0)),
    ([[1, 1, 1, 1, 1]], [[1, 2, 3, 4, 5]], (0.447213596, 0.2, 1.0)),
    ([[1, 1, 1, 1, 1]], [[1, 2, 1, 2, 2]], (0.72111026, 0.52, 1.0)),
    ([[1, 1, 1, 1, 1]], [[1000, 1, 1, 1, 1]], (0.50596443, 0.64, 0.4)),
    # Example 6-8: the first ground-truth pixel is crowd (car, instance 0).
    ([[0, 1, 1, 1, 1, 1]], [[1, 1, 1, 1, 1, 1]], (1.0, 1.0, 1.0)),
    ([[0, 1, 1, 1, 1, 1]], [[2, 2, 2, 2, 1, 1]], (0.72111026, 0.52, 1.0)),
    ([[0, 1, 1, 1, 1, 1]], [[2, 2, 1000, 1, 1, 1]], (0.40824829, 0.4, 5.0 / 12.0)),
    # Example 9-11: the first ground-truth pixel is sky.
    ([[1000, 1, 1, 1, 1]], [[1, 1, 1, 1, 1]], (0.56568542, 0.8, 0.4)),
    ([[1000, 1, 1, 1, 1]], [[2, 2, 2, 1, 1]], (0.42426407, 0.45, 0.4)),
    ([[1000, 1, 1, 1, 1]], [[2, 2, 1000, 1, 1]], (0.3, 0.3, 0.3)),
]


@pytest.mark.parametrize("gt, pred, expected", BASIC_EXAMPLES, ids=[f"example{i}" for i in range(12)])
def test_deeplab2_basic_examples(gt, pred, expected):
    stq = _stq_two_classes()
    stq.update(np.array(gt), np.array(pred), sequence_id=1)
    r = stq.result()
    np.testing.assert_almost_equal([r["STQ"], r["AQ"], r["IoU"]], expected)
    np.testing.assert_almost_equal(r["STQ_per_seq"], [expected[0]])
    np.testing.assert_almost_equal(r["AQ_per_seq"], [expected[1]])
    np.testing.assert_almost_equal(r["IoU_per_seq"], [expected[2]])
    assert r["ID_per_seq"] == [1] and r["Length_per_seq"] == [1]
    assert r["SQ"] == r["IoU"]


# Inputs and expected values of deeplab2
# evaluation/segmentation_and_tracking_quality_test.py::test_complex_example
# (classes = ['sky', 'vegetation', 'cars'], cars = thing; 3 frames of 8x8).
_GT_SEM = [
    "00000000 00000000 00020111 02222111 22222211 22222221 22222221 22222211",
    "00000000 00000000 02001100 22211110 22221111 22222111 22222111 22221111",
    "00000000 00000000 00000000 20111000 22111100 22211110 22211111 22211111",
]
_GT_INST = [
    "00000000 00000000 00020000 02222000 22222200 22222220 22222220 22222200",
    "00000000 00000000 02000000 22200000 22220000 22222000 22222000 22220000",
    "00000000 00000000 00000000 20000000 22000000 22200000 22200000 22200000",
]
_PRED_SEM = [
    "00000000 00000000 00000100 00022111 02222211 22222221 22222221 22222221",
    "00000000 00000000 00001100 02221111 22221111 22222111 22222211 22222111",
    "00000000 00000000 00001000 00111100 22211100 22211111 22221111 22221111",
]
_PRED_INST = [
    "00000000 00000000 00000000 00022000 02222100 22222110 22221110 22221110",
    "00000000 00000000 00000000 02220000 22220000 22222000 22221100 22221000",
    "00000000 00000000 00000000 00000000 22200000 22200000 22220000 22220000",
]


def _grid(text: str) -> np.ndarray:
    return np.array([[int(ch) for ch in row] for row in text.split()], np.int64)


@pytest.mark.parametrize("encoding", ["divisor", "bit_shift"])
def test_deeplab2_complex_example(encoding):
    if encoding == "divisor":  # TF version: max_instances_per_category = 1000, offset 256 * 256
        stq = STQuality(num_classes=3, things_list=[2], ignore_label=255, label_divisor=1000, offset=256 * 256)
        encode = lambda s, i: s * 1000 + i  # noqa: E731
    else:  # numpy version: label_bit_shift = 16, offset 2**24
        stq = STQuality(num_classes=3, things_list=[2], ignore_label=255, label_bit_shift=16, offset=2**24)
        encode = lambda s, i: (s << 16) + i  # noqa: E731
    for t in range(3):
        gt = encode(_grid(_GT_SEM[t]), _grid(_GT_INST[t])).astype(np.int32)
        pred = encode(_grid(_PRED_SEM[t]), _grid(_PRED_INST[t])).astype(np.int32)
        stq.update(gt, pred, sequence_id=1)
    r = stq.result()
    np.testing.assert_almost_equal(r["STQ"], 0.66841773352)
    np.testing.assert_almost_equal(r["AQ"], 0.55366581415)
    np.testing.assert_almost_equal(r["IoU"], 0.8069529580309542)
    np.testing.assert_almost_equal(r["STQ_per_seq"], [0.66841773352])
    assert r["Length_per_seq"] == [3]


def test_two_sequences_merge():
    # deeplab2 test_merge_state_np: sequence 1 is Example 7, sequence 2 is Example 11.
    # Per sequence the single-sequence values hold; overall, by hand:
    #   AQ = (0.52 * 1 tube + 0.3 * 1 tube) / 2 tubes = 0.41
    #   confusion summed = [[9, 1], [1, 0]] -> IoU(car) = 9 / 11, IoU(sky) = 0 / 2 -> mIoU = 9 / 22
    stq = _stq_two_classes()
    stq.update(np.array([[0, 1, 1, 1, 1, 1]]), np.array([[2, 2, 2, 2, 1, 1]]), sequence_id=1)
    stq.update(np.array([[1000, 1, 1, 1, 1]]), np.array([[2, 2, 1000, 1, 1]]), sequence_id=2)
    r = stq.result()
    np.testing.assert_almost_equal(r["AQ_per_seq"], [0.52, 0.3])
    np.testing.assert_almost_equal(r["IoU_per_seq"], [1.0, 0.3])
    np.testing.assert_almost_equal(r["AQ"], 0.41)
    np.testing.assert_almost_equal(r["IoU"], 9 / 22)
    np.testing.assert_almost_equal(r["STQ"], np.sqrt(0.41 * 9 / 22))
    assert r["ID_per_seq"] == [1, 2]
    assert r["IoU_per_class"] == pytest.approx({0: 9 / 11, 1: 0.0})


def test_perfect_prediction_is_one(rng):
    stq = STQuality(num_classes=4, things_list=[2, 3])
    for seq in range(2):
        for _ in range(4):
            frame = random_frame(rng)
            stq.update(frame, frame, sequence_id=seq)
    r = stq.result()
    assert r["STQ"] == pytest.approx(1.0) and r["AQ"] == pytest.approx(1.0) and r["SQ"] == pytest.approx(1.0)


def test_permuting_predicted_ids_keeps_stq(rng):
    frames = [random_frame(rng) for _ in range(5)]
    preds = [perturb(rng, f) for f in frames]
    perm = np.array([0, 7, 5, 9])  # instance i -> perm[i], the same in every frame
    a = STQuality(num_classes=4, things_list=[2, 3])
    b = STQuality(num_classes=4, things_list=[2, 3])
    for f, (ps, pi) in zip(frames, preds):
        a.update(f, (ps, pi))
        b.update(f, (ps, perm[pi]))
    assert b.result()["STQ"] == pytest.approx(a.result()["STQ"], abs=1e-12)
    assert b.result()["AQ"] == pytest.approx(a.result()["AQ"], abs=1e-12)


def test_single_id_switch_halves_aq():
    # One car (class 1, thing) of 4 pixels in each of 4 frames; the prediction uses id 1 in
    # frames 0-1 and id 2 in frames 2-3. |g| = 16, tubes p1 and p2 of 8 pixels, TPA 8 each:
    #   AQ = 1/16 * (8 * 8/16 + 8 * 8/16) = 0.5  (1.0 without the switch); SQ stays 1.
    gt_sem = np.array([[0, 1, 1, 1, 1, 0]])
    gt_inst = np.array([[0, 1, 1, 1, 1, 0]])
    stq = STQuality(num_classes=2, things_list=[1])
    for t in range(4):
        stq.update((gt_sem, gt_inst), (gt_sem, gt_inst * (1 if t < 2 else 2)))
    r = stq.result()
    assert r["AQ"] == pytest.approx(0.5)
    assert r["SQ"] == pytest.approx(1.0)
    assert r["STQ"] == pytest.approx(np.sqrt(0.5))


def test_void_pixels_are_ignored_for_stuff_predictions():
    # Ground-truth void (255): whatever stuff class is predicted there changes nothing.
    gt = (np.array([[255, 255, 0, 0, 1, 1]]), np.array([[0, 0, 0, 0, 1, 1]]))
    results = []
    for on_void in ([0, 0], [0, 2], [2, 2]):
        stq = STQuality(num_classes=3, things_list=[1])
        stq.update(gt, (np.array([on_void + [0, 0, 1, 1]]), np.array([[0, 0, 0, 0, 1, 1]])))
        results.append(stq.result())
    for r in results:
        assert (r["STQ"], r["AQ"], r["SQ"]) == pytest.approx((1.0, 1.0, 1.0))


def test_predicted_things_on_void_enlarge_the_predicted_tube():
    # deeplab2 keeps predicted thing pixels on gt void in |p| (documented in stq.py):
    # gt [car 1, car 1, void, void], pred car 1 everywhere: TPA = 2, |g| = 2, |p| = 4
    #   AQ = 1/2 * (2 * 2/4) = 0.5, while SQ only sees the two labelled pixels (1.0).
    stq = STQuality(num_classes=2, things_list=[1])
    stq.update((np.array([[1, 1, 255, 255]]), np.array([[1, 1, 0, 0]])), (np.ones((1, 4), int), np.ones((1, 4), int)))
    assert (stq.result()["AQ"], stq.result()["SQ"]) == pytest.approx((0.5, 1.0))


def test_predicted_void_on_labelled_pixels_counts_as_a_zero_class():
    # deeplab2 keeps the ignored label's column in the confusion matrix, so predicting void
    # on labelled pixels adds one class with IoU 0 to the mean (documented in stq.py):
    #   IoU(0) = 1/2, IoU(1) = 2/2, IoU(void column) = 0/1 -> mIoU = 1.5 / 3 = 0.5
    stq = STQuality(num_classes=2, things_list=[])
    stq.update((np.array([[0, 0, 1, 1]]), np.zeros((1, 4), int)), (np.array([[0, 255, 1, 1]]), np.zeros((1, 4), int)))
    assert stq.result()["SQ"] == pytest.approx(0.5)
    assert stq.result()["IoU_per_class"] == pytest.approx({0: 0.5, 1: 1.0})


def test_crowd_predictions_do_not_change_aq():
    # Ground-truth crowd = thing with instance 0: any predicted id there leaves AQ unchanged.
    gt = (np.array([[1, 1, 1, 1, 1, 1]]), np.array([[0, 0, 3, 3, 3, 3]]))
    aqs = []
    for crowd_ids in ([0, 0], [3, 3], [5, 6]):
        stq = STQuality(num_classes=2, things_list=[1])
        stq.update(gt, (gt[0], np.array([crowd_ids + [3, 3, 3, 3]])))
        aqs.append(stq.result()["AQ"])
    assert aqs == pytest.approx([1.0, 1.0, 1.0])


def test_matches_definition_on_random_sequences(rng):
    sequences = []
    for _ in range(3):
        frames = [random_frame(rng) for _ in range(3)]
        sequences.append([(panoptic(f), panoptic(perturb(rng, f))) for f in frames])
    stq = STQuality(num_classes=4, things_list=[2, 3])
    for s, frames in enumerate(sequences):
        for gt, pred in frames:
            stq.update(gt, pred, sequence_id=s)
    r = stq.result()
    expected = naive_stq(sequences, num_classes=4, things={2, 3}, ignore=255, div=DIV)
    np.testing.assert_allclose([r["STQ"], r["AQ"], r["SQ"]], expected, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, gt, pred, message",
    [
        (dict(), np.zeros((2, 3), int), np.zeros((3, 2), int), "sizes differ"),
        (dict(), np.zeros((2, 3), int), np.full((2, 3), 7000), "classes"),
        (dict(), np.zeros((2, 3), float), np.zeros((2, 3), int), "integer"),
        (dict(), (np.zeros((2, 3), int), np.full((2, 3), 1000)), np.zeros((2, 3), int), "label_divisor"),
    ],
)
def test_errors(kwargs, gt, pred, message):
    stq = STQuality(num_classes=2, things_list=[1], **kwargs)
    with pytest.raises(ValueError, match=message):
        stq.update(gt, pred)


def test_offset_too_small():
    with pytest.raises(ValueError, match="offset"):
        STQuality(num_classes=20, things_list=[1], label_divisor=1000, offset=1000)
