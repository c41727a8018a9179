"""VPQ: ViP-DeepLab / deeplab2 windows and VPSNet tubes, on hand cases and random data."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import panoptic, perturb, random_frame, step_to_coco

from vpanoptic.eval import COCOPanopticQuality, PanopticQuality, VideoPanopticQuality, VPSNetVideoPanopticQuality


def _random_sequences(rng, lengths):
    out = []
    for n in lengths:
        frames = [random_frame(rng) for _ in range(n)]
        out.append([(panoptic(f), panoptic(perturb(rng, f))) for f in frames])
    return out


def _stats(result: dict) -> list:
    return [(c, v["TP"], v["FP"], v["FN"], round(v["IoU"], 12)) for c, v in sorted(result["per_class"].items())]


def test_single_frame_windows_equal_image_pq(rng):
    sequences = _random_sequences(rng, [4, 3])
    vpq = VideoPanopticQuality(num_classes=4, things_list=[2, 3], window_sizes=(1,))
    pq = PanopticQuality(num_classes=4, things_list=[2, 3])
    for s, frames in enumerate(sequences):
        for gt, pred in frames:
            vpq.update(gt, pred, sequence_id=s)
            pq.update(gt, pred)
    r = vpq.result()
    assert _stats(r["per_window"][1]) == _stats(pq.result())
    assert r["VPQ"] == pytest.approx(pq.result()["PQ"])


@pytest.mark.parametrize("k", [2, 3])
def test_windows_equal_pq_of_frames_concatenated_side_by_side(rng, k):
    # deeplab2 VideoPanopticQuality concatenates the k frames along the width (axis 1).
    sequences = _random_sequences(rng, [5, 2, 4])
    vpq = VideoPanopticQuality(num_classes=4, things_list=[2, 3], window_sizes=(k,))
    pq = PanopticQuality(num_classes=4, things_list=[2, 3])
    for s, frames in enumerate(sequences):
        for gt, pred in frames:
            vpq.update(gt, pred, sequence_id=s)
        for i in range(len(frames) - k + 1):
            window = frames[i:i + k]
            pq.update(np.concatenate([g for g, _ in window], axis=1), np.concatenate([p for _, p in window], axis=1))
    r = vpq.result()
    assert r["per_window"][k]["windows"] == sum(max(0, len(f) - k + 1) for f in sequences)
    assert _stats(r["per_window"][k]) == _stats(pq.result())


@pytest.mark.parametrize("nframes", [1, 2, 3])
def test_vpsnet_windows_equal_panopticapi_on_concatenated_frames(rng, nframes):
    # VPSNet tubes = panopticapi PQ on the window's frames side by side with shared ids.
    sequences = []
    for n in (5, 3):
        frames = [random_frame(rng) for _ in range(n)]
        sequences.append([(f, perturb(rng, f)) for f in frames])
    vpq = VPSNetVideoPanopticQuality(num_classes=4, things_list=[2, 3], window_sizes=(nframes,))
    pq = COCOPanopticQuality(categories={0: False, 1: False, 2: True, 3: True})
    for s, frames in enumerate(sequences):
        for gt, pred in frames:
            vpq.update(gt, pred, sequence_id=s)
        for i in range(len(frames) - nframes + 1):
            gts = [step_to_coco(g, things=(2, 3)) for g, _ in frames[i:i + nframes]]
            preds = [step_to_coco(p, things=()) for _, p in frames[i:i + nframes]]
            merge = lambda parts: list({s["id"]: s for _, segs in parts for s in segs}.values())  # noqa: E731
            pq.update(
                np.concatenate([ids for ids, _ in gts], axis=1), merge(gts),
                np.concatenate([ids for ids, _ in preds], axis=1), merge(preds),
            )
    span = (nframes - 1) * 5
    assert _stats(vpq.result()["per_window"][span]) == _stats(pq.result())


# Hand case: class 0 stuff, class 1 thing. Each frame: [0 0 | car x4 | 0 0]; the prediction
# labels the car 1 in frame 0 and 2 in frame 1 (one id switch).
_SEM = np.array([[0, 0, 1, 1, 1, 1, 0, 0]])
_INST = np.array([[0, 0, 1, 1, 1, 1, 0, 0]])


def test_vip_deeplab_id_switch_by_hand():
    # 1-frame windows (2 of them): stuff and car match in each -> PQ_1 = 1.
    # 2-frame window: gt car tube 8 px; predicted tubes 1.1 and 1.2 of 4 px each share 4 px
    # with it -> IoU 4/8 = 0.5, not > 0.5: car FN 1, FP 2, PQ_car = 0; stuff 1 -> PQ_2 = 0.5.
    # VPQ = (1 + 0.5) / 2 = 0.75; things (1 + 0) / 2 = 0.5; stuff 1.
    vpq = VideoPanopticQuality(num_classes=2, things_list=[1], window_sizes=(1, 2))
    vpq.update((_SEM, _INST), (_SEM, _INST))
    vpq.update((_SEM, _INST), (_SEM, 2 * _INST))
    r = vpq.result()
    assert r["per_window"][1]["PQ"] == pytest.approx(1.0)
    assert r["per_window"][2]["PQ"] == pytest.approx(0.5)
    car = r["per_window"][2]["per_class"][1]
    assert (car["TP"], car["FP"], car["FN"]) == (0, 2, 1)
    assert (r["VPQ"], r["VPQ_things"], r["VPQ_stuff"]) == pytest.approx((0.75, 0.5, 1.0))


def test_window_sizes_longer_than_sequences_are_skipped():
    vpq = VideoPanopticQuality(num_classes=2, things_list=[1], window_sizes=(1, 2, 4))
    for _ in range(3):
        vpq.update((_SEM, _INST), (_SEM, _INST))
    r = vpq.result()
    assert [r["per_window"][k]["windows"] for k in (1, 2, 4)] == [3, 2, 0]
    assert r["VPQ"] == pytest.approx(1.0)


# VPSNet hand case: as above plus two crowd pixels (car, instance 0) at the right end,
#   gt   sem [0 0 1 1 1 1 1 1]  inst [0 0 1 1 1 1 0 0]
#   pred sem [0 0 1 1 1 1 1 1]  inst [0 0 a a a a 3 3], a = 1 in frame 0 and 2 in frame 1.
# nframes 1 (k = 0): stuff and car 1 match (IoU 1) in both frames; pred 1.3 lies on crowd
#   (2/2 > 1/2) -> not FP. PQ_0 = 1.
# nframes 2 (k = 5): car tube IoU 4/8 = 0.5 -> FN 1; tubes 1.1 and 1.2 are FP; 1.3 is still
#   on crowd -> not FP. PQ_car = 0, PQ_5 = (1 + 0) / 2. VPQ = 0.75.
_SEM_C = np.array([[0, 0, 1, 1, 1, 1, 1, 1]])
_INST_C = np.array([[0, 0, 1, 1, 1, 1, 0, 0]])


def _pred_c(a: int):
    return _SEM_C, np.array([[0, 0, a, a, a, a, 3, 3]])


def test_vpsnet_crowd_and_id_switch_by_hand():
    vpq = VPSNetVideoPanopticQuality(num_classes=2, things_list=[1], window_sizes=(1, 2))
    vpq.update((_SEM_C, _INST_C), _pred_c(1))
    vpq.update((_SEM_C, _INST_C), _pred_c(2))
    r = vpq.result()
    assert sorted(r["per_window"]) == [0, 5]  # spans (nframes - 1) * 5
    car0 = r["per_window"][0]["per_class"][1]
    assert (car0["TP"], car0["FP"], car0["FN"]) == (2, 0, 0)
    car5 = r["per_window"][5]["per_class"][1]
    assert (car5["TP"], car5["FP"], car5["FN"]) == (0, 2, 1)
    assert (r["VPQ"], r["VPQ_things"], r["VPQ_stuff"]) == pytest.approx((0.75, 0.5, 1.0))


def test_deeplab2_rules_treat_the_same_crowd_as_a_segment():
    # Under deeplab2 rules gt car instance 0 is an ordinary segment: pred 1.3 matches it.
    vpq = VideoPanopticQuality(num_classes=2, things_list=[1], window_sizes=(1,))
    vpq.update((_SEM_C, _INST_C), _pred_c(1))
    car = vpq.result()["per_window"][1]["per_class"][1]
    assert (car["TP"], car["FP"], car["FN"]) == (2, 0, 0)


def test_vpsnet_void_is_left_out():
    # gt void (255) under a predicted car pixel: union drops it, and a prediction that is
    # mostly void is not a FP.
    gt = (np.array([[0, 1, 1, 255, 255, 255]]), np.array([[0, 1, 1, 0, 0, 0]]))
    pred = (np.array([[0, 1, 1, 1, 1, 1]]), np.array([[0, 1, 1, 1, 2, 2]]))
    vpq = VPSNetVideoPanopticQuality(num_classes=2, things_list=[1], window_sizes=(1,))
    vpq.update(gt, pred)
    car = vpq.result()["per_window"][0]["per_class"][1]
    assert (car["TP"], car["FP"], car["FN"], car["IoU"]) == (1, 0, 0, 1.0)


def test_perfect_prediction_is_one_for_both_variants(rng):
    a = VideoPanopticQuality(num_classes=4, things_list=[2, 3])
    b = VPSNetVideoPanopticQuality(num_classes=4, things_list=[2, 3])
    for s in range(2):
        for _ in range(5):
            f = random_frame(rng)
            a.update(f, f, sequence_id=s)
            b.update(f, f, sequence_id=s)
    assert a.result()["VPQ"] == pytest.approx(1.0)
    assert b.result()["VPQ"] == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match="window_sizes"):
        VideoPanopticQuality(num_classes=2, window_sizes=(0, 2))
    vpq = VPSNetVideoPanopticQuality(num_classes=2, things_list=[1])
    with pytest.raises(ValueError, match="classes"):
        vpq.update(np.full((2, 2), 7000), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="sizes differ"):
        vpq.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
