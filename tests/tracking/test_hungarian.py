import numpy as np
import pytest
import torch

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.tracking import HungarianTracker, build_tracker, mask_iou_from_index_maps
from vpanoptic.types import Frame, PanopticFrame

H, W = 20, 40
CAR, PERSON, ROAD = 13, 11, 0


def frame_with(objects, t=0.0, index=0):
    """objects: list of (category, label, (y0, y1, x0, x1)); background is road."""
    sem = np.full((H, W), ROAD)
    inst = np.zeros((H, W), int)
    for cat, label, (y0, y1, x0, x1) in objects:
        sem[y0:y1, x0:x1] = cat
        inst[y0:y1, x0:x1] = label
    f = Frame(index, index, t, 0.0, np.zeros((H, W, 3), np.uint8))
    pf = PanopticFrame.from_labels(f, sem, inst, KITTI_STEP)
    pf.gt = pf.track_ids.copy()  # true ids, kept aside for the checks
    pf.track_ids[:] = -1
    return pf


def ids_by_truth(pf):
    return {int(g): int(t) for g, t in zip(pf.gt, pf.track_ids) if g > 0}


@pytest.mark.parametrize("n_prev,n_cur", [(1, 1), (3, 2), (5, 7)])
def test_mask_iou_matches_brute_force(n_prev, n_cur):
    rng = np.random.default_rng(n_prev * 10 + n_cur)
    prev = rng.integers(0, n_prev + 1, (13, 17))
    cur = rng.integers(0, n_cur + 1, (13, 17))
    iou = mask_iou_from_index_maps(torch.from_numpy(prev), torch.from_numpy(cur), n_prev, n_cur).numpy()
    for i in range(n_prev):
        for j in range(n_cur):
            a, b = prev == i + 1, cur == j + 1
            union = (a | b).sum()
            expected = (a & b).sum() / union if union else 0.0
            assert iou[i, j] == pytest.approx(expected)


def test_moving_objects_keep_their_ids():
    tracker = HungarianTracker()
    seen = {}
    for k in range(8):
        pf = frame_with([(CAR, 1, (2, 8, 2 + k, 10 + k)), (PERSON, 2, (10, 18, 30 - k, 34 - k))], t=k * 0.1, index=k)
        ids = ids_by_truth(tracker.update(pf))
        assert (pf.track_ids[~pf.is_thing] == -1).all()  # stuff is never tracked
        if k == 0:
            seen = ids
            assert sorted(ids.values()) == [1, 2]
        assert ids == seen


def test_missed_frame_keeps_id_and_long_absence_gets_new_id():
    tracker = HungarianTracker(max_lost_seconds=0.25)
    car = [(CAR, 1, (2, 8, 2, 10))]
    first = ids_by_truth(tracker.update(frame_with(car, t=0.0)))[1]
    tracker.update(frame_with([], t=0.1))  # missed
    assert ids_by_truth(tracker.update(frame_with(car, t=0.2)))[1] == first
    tracker.update(frame_with([], t=0.3))
    tracker.update(frame_with([], t=0.5))  # lost 0.3 s > 0.25 s: removed
    again = ids_by_truth(tracker.update(frame_with(car, t=0.6)))[1]
    assert again != first and again > first  # never reused


def test_class_gate_and_iou_gate():
    tracker = HungarianTracker(iou_threshold=0.5, max_center_distance=0)
    a = ids_by_truth(tracker.update(frame_with([(CAR, 1, (2, 8, 2, 10))], t=0.0)))[1]
    # same place, other class: a new track
    b = ids_by_truth(tracker.update(frame_with([(PERSON, 1, (2, 8, 2, 10))], t=0.1)))[1]
    assert b != a
    # same class but moved so far that IoU < 0.5: a new track
    c = ids_by_truth(tracker.update(frame_with([(PERSON, 1, (2, 8, 6, 14))], t=0.2)))[1]
    assert c not in (a, b)


def test_thin_fast_object_is_kept_by_the_centre_distance_pass():
    # a 2-px wide person moving 3 px per frame: no overlap between consecutive masks
    frames = [frame_with([(PERSON, 1, (4, 16, 5 + 3 * k, 7 + 3 * k))], t=k * 0.1, index=k) for k in range(6)]
    with_pass = HungarianTracker()
    assert {ids_by_truth(with_pass.update(f))[1] for f in frames} == {1}
    frames = [frame_with([(PERSON, 1, (4, 16, 5 + 3 * k, 7 + 3 * k))], t=k * 0.1, index=k) for k in range(6)]
    iou_only = HungarianTracker(max_center_distance=0)
    assert len({ids_by_truth(iou_only.update(f))[1] for f in frames}) == 6


def test_far_jump_or_size_change_is_not_matched_by_distance():
    tracker = HungarianTracker()
    a = ids_by_truth(tracker.update(frame_with([(CAR, 1, (2, 6, 2, 6))], t=0.0)))[1]
    b = ids_by_truth(tracker.update(frame_with([(CAR, 1, (2, 6, 30, 34))], t=0.1)))[1]  # 28 px away, size 4
    assert b != a
    c = ids_by_truth(tracker.update(frame_with([(CAR, 1, (0, 20, 26, 40))], t=0.2)))[1]  # 17x bigger
    assert c not in (a, b)


def test_two_trackers_do_not_share_ids_and_reset_restarts():
    t1, t2 = HungarianTracker(), HungarianTracker()
    obj = [(CAR, 1, (2, 8, 2, 10))]
    assert ids_by_truth(t1.update(frame_with(obj)))[1] == 1
    assert ids_by_truth(t2.update(frame_with(obj)))[1] == 1
    assert ids_by_truth(t1.update(frame_with([(CAR, 1, (12, 18, 20, 30))], t=0.1)))[1] == 2
    t1.reset()
    assert t1.num_tracks == 0
    assert ids_by_truth(t1.update(frame_with(obj, t=0.2)))[1] == 1


def test_memory_stays_bounded_under_churn():
    tracker = HungarianTracker(max_lost_seconds=0.2)
    rng = np.random.default_rng(0)
    for k in range(2000):
        objs = []
        for j in range(3):
            y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
            objs.append((CAR, j + 1, (y, y + 4, x, x + 4)))
        tracker.update(frame_with(objs, t=k * 0.1, index=k))
        assert tracker.num_tracks <= 3 * 3 + 3  # at most ~max_lost/dt frames of tracks alive


def test_frame_size_change_is_an_error_and_build_tracker():
    tracker = build_tracker("hungarian")
    tracker.update(frame_with([(CAR, 1, (2, 8, 2, 10))]))
    f = Frame(1, 1, 0.1, 0.0, np.zeros((10, 10, 3), np.uint8))
    small = PanopticFrame.from_labels(f, np.zeros((10, 10)), np.zeros((10, 10)), KITTI_STEP)
    with pytest.raises(ValueError, match="frame size changed"):
        tracker.update(small)
    with pytest.raises(ValueError, match="unknown tracker"):
        build_tracker("deepsort")
    with pytest.raises(ValueError, match="iou_threshold"):
        HungarianTracker(iou_threshold=0)


def _emerging(n_slivers):
    """Frames 0-2: `n_slivers` people 1 px wide (the rest hidden); frame 3: one person of
    10 x 16 px (ten times a sliver's area) over where the slivers were."""
    slivers = [(PERSON, 1 + j, (2, 18, 10 + 3 * j, 11 + 3 * j)) for j in range(n_slivers)]
    clip = [frame_with(slivers, t=0.1 * k, index=k) for k in range(3)]
    return clip + [frame_with([(PERSON, 1, (2, 18, 8, 18))], t=0.3, index=3)]


@pytest.mark.parametrize("growth", [16.0, 0.0])
def test_object_stepping_out_keeps_its_id(growth):
    tracker = HungarianTracker(camera_motion=False, motion_prediction=False, max_growth_ratio=growth)
    ids = [ids_by_truth(tracker.update(pf)) for pf in _emerging(1)]
    # areas 16 -> 160 px: beyond the IoU (0.1), containment (ratio 5) and centre (ratio 4) passes
    assert (ids[3][1] == ids[0][1]) == (growth > 0)


def test_growth_pass_pairs_only_sole_candidates():
    """Two slivers inside the one large mask: neither is the segment's only candidate."""
    tracker = HungarianTracker(camera_motion=False, motion_prediction=False)
    ids = [ids_by_truth(tracker.update(pf)) for pf in _emerging(2)]
    assert ids[3][1] not in (ids[0][1], ids[0][2])
    with pytest.raises(ValueError, match="max_growth_ratio"):
        HungarianTracker(max_growth_ratio=0.5)


@pytest.mark.parametrize("tentative_min_lost_frames", [1, 0])
def test_at_low_frame_rates_a_new_track_survives_a_missed_frame(tentative_min_lost_frames):
    """At 3 fps one missed frame is 0.67 s without the object: longer than a tentative track
    lives (0.3 s), but not more than `tentative_min_lost_frames` frames."""
    car = [(CAR, 1, (2, 8, 2, 10))]
    clip = [frame_with(car, 0.0, 0), frame_with([], 1 / 3, 1), frame_with(car, 2 / 3, 2)]
    tracker = HungarianTracker(camera_motion=False, tentative_min_lost_frames=tentative_min_lost_frames)
    ids = [ids_by_truth(tracker.update(pf)) for pf in clip]
    assert (ids[2][1] == ids[0][1]) == (tentative_min_lost_frames == 1)
    # at 10 fps the limit in seconds rules: missing from 0.1 s to 0.5 s ends the tentative track
    tracker = HungarianTracker(camera_motion=False)
    ids = [ids_by_truth(tracker.update(frame_with(car if k in (0, 5) else [], 0.1 * k, k))) for k in range(6)]
    assert ids[5][1] != ids[0][1]
    with pytest.raises(ValueError, match="tentative_min_lost_frames"):
        HungarianTracker(tentative_min_lost_frames=-1)
