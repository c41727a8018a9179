"""Tracker behaviour on tiny hand-made id maps: crossings, misses, id life cycle, memory, baselines."""

import dataclasses
import inspect

import numpy as np
import pytest

from vpanoptic.config import TrackerConfig
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.tracking import (
    CameraMotionEstimator,
    GreedyTracker,
    HungarianTracker,
    build_tracker,
)
from vpanoptic.tracking.lifecycle import CONFIRMED, LOST, TENTATIVE, TrackTable
from vpanoptic.tracking.motion import local_similarity
from vpanoptic.types import Frame, PanopticFrame

H, W = 20, 40
CAR, PERSON, ROAD, BUILDING = 13, 11, 0, 2


def frame_with(objects, t=0.0, index=0, image=None, scores=None, shape=(H, W)):
    """objects: list of (category, true id, (y0, y1, x0, x1)), drawn in order (later in front)."""
    sem = np.full(shape, ROAD)
    inst = np.zeros(shape, int)
    for cat, label, (y0, y1, x0, x1) in objects:
        sem[y0:y1, x0:x1] = cat
        inst[y0:y1, x0:x1] = label if cat in (CAR, PERSON) else 0
    img = np.zeros((*shape, 3), np.uint8) if image is None else image
    pf = PanopticFrame.from_labels(Frame(index, index, t, 0.0, img), sem, inst, KITTI_STEP)
    pf.gt = pf.track_ids.copy()  # true ids, kept aside for the checks
    pf.track_ids[:] = -1
    if scores is not None:
        pf.scores = np.array([scores.get(int(g), 1.0) for g in pf.gt], np.float32)
    return pf


def ids_by_truth(pf):
    return {int(g): int(t) for g, t in zip(pf.gt, pf.track_ids) if g > 0}


def test_two_crossing_objects_do_not_swap_ids():
    # A walks right, B walks left on overlapping rows; B passes in front of A and hides most of it
    tracker = HungarianTracker(camera_motion=False)
    first = None
    for k in range(12):
        a = (PERSON, 1, (4, 16, 2 + 3 * k, 8 + 3 * k))
        b = (PERSON, 2, (6, 18, 32 - 3 * k, 38 - 3 * k))
        ids = ids_by_truth(tracker.update(frame_with([a, b], t=k * 0.1, index=k)))
        first = first or ids
        for g, tid in ids.items():
            assert tid == first[g], f"frame {k}: object {g} took id {tid}, expected {first[g]}"
    assert sorted(first.values()) == [1, 2]


def test_a_missed_frame_keeps_the_id_of_a_confirmed_and_of_a_new_track():
    tracker = HungarianTracker(camera_motion=False)
    car, person = (CAR, 1, (2, 8, 2, 10)), (PERSON, 2, (10, 18, 20, 24))
    ids = ids_by_truth(tracker.update(frame_with([car, person], t=0.0)))
    tracker.update(frame_with([person], t=0.1))  # the car is missed in its second frame
    assert ids_by_truth(tracker.update(frame_with([car, person], t=0.2))) == ids
    for k in range(3, 6):
        tracker.update(frame_with([car, person], t=k * 0.1, index=k))
    tracker.update(frame_with([car], t=0.6))  # now the confirmed person is missed twice
    tracker.update(frame_with([car], t=0.7))
    assert ids_by_truth(tracker.update(frame_with([car, person], t=0.8))) == ids


def test_lifetimes_are_in_seconds_not_frames():
    car = [(CAR, 1, (2, 8, 2, 10))]
    for dt, same in ((0.1, True), (1.0, False)):  # the same 3 frames, 0.2 s or 2 s of absence
        tracker = HungarianTracker(max_lost_seconds=0.5, camera_motion=False)
        first = ids_by_truth(tracker.update(frame_with(car, t=0.0)))[1]
        tracker.update(frame_with(car, t=dt))
        tracker.update(frame_with([], t=2 * dt))
        again = ids_by_truth(tracker.update(frame_with(car, t=3 * dt)))[1]
        assert (again == first) is same


def test_removed_ids_are_never_reused():
    tracker = HungarianTracker(max_lost_seconds=0.15, tentative_max_lost_seconds=0.05, camera_motion=False)
    given = []
    for k in range(60):  # a new object every 3 frames, each visible for 2 frames, at random places
        objs = []
        if k % 3 != 2:
            y, x = (k * 7) % (H - 4), (k * 13) % (W - 4)
            objs = [(CAR, 1, (y, y + 4, x, x + 4))]
        pf = tracker.update(frame_with(objs, t=k * 0.1, index=k))
        given += [int(t) for t in pf.track_ids if t > 0]
    firsts = list(dict.fromkeys(given))  # ids in order of first use
    assert firsts == sorted(firsts) and len(firsts) == len(set(firsts))
    assert len(firsts) >= 15


def test_two_trackers_do_not_share_ids_and_reset_restarts():
    t1, t2 = HungarianTracker(), build_tracker("hungarian")
    a, b = [(CAR, 1, (2, 8, 2, 10))], [(CAR, 1, (12, 18, 20, 30))]
    assert ids_by_truth(t1.update(frame_with(a)))[1] == 1
    assert ids_by_truth(t1.update(frame_with(a + [(PERSON, 2, (10, 18, 30, 34))], t=0.1)))[2] == 2
    assert ids_by_truth(t2.update(frame_with(b)))[1] == 1  # t2 counts on its own
    assert ids_by_truth(t1.update(frame_with([(CAR, 3, (12, 18, 14, 18))], t=0.2)))[3] == 3
    t1.reset()
    assert t1.num_tracks == 0 and t1.memory_pixels == 0
    assert ids_by_truth(t1.update(frame_with(a, t=0.3)))[1] == 1
    assert ids_by_truth(t2.update(frame_with(b, t=0.1)))[1] == 1


def test_memory_stays_bounded_over_10000_frames_of_churn():
    tracker = HungarianTracker(max_lost_seconds=0.3)
    rng = np.random.default_rng(0)
    top_id, peak_tracks, peak_pixels = 0, 0, 0
    for k in range(10_000):
        objs = []
        for j in range(int(rng.integers(0, 4))):
            y, x = int(rng.integers(0, H - 4)), int(rng.integers(0, W - 4))
            objs.append((CAR if j % 2 else PERSON, j + 1, (y, y + 4, x, x + 4)))
        pf = tracker.update(frame_with(objs, t=k * 0.1, index=k))
        top_id = max(top_id, int(pf.track_ids.max(initial=0)))
        peak_tracks = max(peak_tracks, tracker.num_tracks)
        peak_pixels = max(peak_pixels, tracker.memory_pixels)
    # alive: at most ~max_lost_seconds / dt + 1 frames of objects; memory: their masks
    assert peak_tracks <= 3 * 5
    assert peak_pixels <= peak_tracks * 16
    assert top_id > 5000  # ids kept counting up through the churn


def test_stuff_is_never_tracked_and_does_not_flicker_into_a_thing_id():
    tracker = HungarianTracker(camera_motion=False)
    car = (CAR, 1, (4, 12, 4, 14))
    wall = (BUILDING, 0, (4, 12, 4, 14))  # the model calls the car's pixels building for a frame
    first = ids_by_truth(tracker.update(frame_with([car], t=0.0)))[1]
    tracker.update(frame_with([car], t=0.1))
    pf = tracker.update(frame_with([wall], t=0.2))
    assert (pf.track_ids[~pf.is_thing] == -1).all()
    _, inst = pf.to_labels()
    assert (inst == 0).all()  # stuff keeps its class as its only id
    assert ids_by_truth(tracker.update(frame_with([car], t=0.3)))[1] == first


def test_low_score_segment_gets_only_what_confident_ones_leave():
    track = (PERSON, 1, (4, 16, 10, 20))
    # next frame: a confident segment overlapping the track less than a low-score one does
    confident = (PERSON, 2, (4, 16, 15, 25))
    weak = (PERSON, 3, (4, 16, 8, 15))
    results = {}
    for low_pass in (True, False):
        tracker = HungarianTracker(camera_motion=False, low_score_pass=low_pass, max_center_distance=0)
        tid = ids_by_truth(tracker.update(frame_with([track], t=0.0)))[1]
        ids = ids_by_truth(tracker.update(frame_with([confident, weak], t=0.1, scores={3: 0.2})))
        results[low_pass] = [g for g, t in ids.items() if t == tid]
    assert results[True] == [2]
    assert results[False] == [3]


def texture(seed=0, shape=(120, 200)):
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, (shape[0] // 6 + 1, shape[1] // 6 + 1, 3), np.uint8)
    return np.repeat(np.repeat(blocks, 6, 0), 6, 1)[: shape[0], : shape[1]]


def test_camera_motion_estimate_recovers_a_pan():
    big = texture(shape=(120, 260))
    est = CameraMotionEstimator()
    assert np.allclose(est.estimate(np.ascontiguousarray(big[:, 20:220])), np.eye(3))  # first frame
    h = est.estimate(np.ascontiguousarray(big[:, 32:232]))  # camera panned right by 12 px
    assert est.last_inliers >= 15
    assert h[0, 2] == pytest.approx(-12, abs=0.5) and h[1, 2] == pytest.approx(0, abs=0.5)
    assert np.allclose(h[:2, :2], np.eye(2), atol=0.02)
    (y, x), = local_similarity(h, np.array([[10.0, 50.0]]))[0]
    assert float(y) == pytest.approx(10, abs=0.5) and float(x) == pytest.approx(38, abs=0.5)
    assert np.allclose(CameraMotionEstimator().estimate(np.zeros((60, 80, 3), np.uint8)), np.eye(3))


def test_camera_motion_compensation_keeps_a_small_object_in_a_fast_pan():
    # a parked 4x4 car seen by a camera panning 10 px per frame (more than its width), with
    # jerky pans so that a velocity alone cannot predict it
    shape = (120, 200)
    big = texture(1, (120, 400))
    offsets = [0, 10, 20, 24, 38, 44, 60, 62, 80]
    results = {}
    for cmc in (True, False):
        # the centre and colour re-identification passes would find the lone car anyway
        tracker = HungarianTracker(camera_motion=cmc, max_center_distance=0, reid_distance=0)
        ids = set()
        for k, off in enumerate(offsets):
            x = 150 - off
            img = np.ascontiguousarray(big[:, off: off + shape[1]])
            pf = frame_with([(CAR, 1, (60, 64, x, x + 4))], t=k * 0.1, index=k, image=img, shape=shape)
            ids.add(ids_by_truth(tracker.update(pf))[1])
        results[cmc] = len(ids)
    assert results[True] == 1
    assert results[False] > 1


def test_large_frames_are_subsampled_and_still_tracked():
    tracker = HungarianTracker(max_pixels=200, camera_motion=False)  # 20x40 = 800 px -> stride 2
    assert tracker.stride(H, W) == 2
    for k in range(5):
        pf = tracker.update(frame_with([(CAR, 1, (2, 10, 2 + 2 * k, 12 + 2 * k))], t=k * 0.1, index=k))
        assert ids_by_truth(pf) == {1: 1}


def test_track_table_states():
    table = TrackTable()
    slots = table.add(np.array([CAR, PERSON]), 0.0, np.zeros((2, 2)), np.array([10.0, 20.0]))
    table.observe(slots[:1], 0.1, np.array([[1.0, 2.0]]), np.array([11.0]), smoothing=0.5)
    assert table.states(0.1, min_hits=2).tolist() == [CONFIRMED, TENTATIVE]
    assert table.states(0.2, min_hits=2).tolist() == [LOST, TENTATIVE]
    assert np.allclose(table.velocity[0], [10.0, 20.0])
    assert table.expired(0.5, 2, max_lost_seconds=1.0, tentative_max_lost_seconds=0.3).tolist() == [False, True]


def test_full_area_is_the_largest_area_seen_fading_and_following_the_zoom():
    table = TrackTable(full_area_seconds=2.0)
    slot = table.add(np.array([PERSON]), 0.0, np.zeros((1, 2)), np.array([400.0]))
    assert table.full_area[0] == 400.0
    table.observe(slot, 0.5, np.zeros((1, 2)), np.array([100.0]), smoothing=0.5)  # cut by an occluder
    assert table.area[0] == 100.0
    assert table.full_area[0] == pytest.approx(400.0 * np.exp(-0.25))
    table.warp[slot] = (2.0, 0.0, 0.0)  # the camera zoomed in 2x before the next sighting
    table.observe(slot, 1.0, np.zeros((1, 2)), np.array([50.0]), smoothing=0.5)
    assert table.full_area[0] == pytest.approx(400.0 * np.exp(-0.5) * 4)
    table.observe(slot, 1.1, np.zeros((1, 2)), np.array([5000.0]), smoothing=0.5)  # larger: taken as it is
    assert table.full_area[0] == 5000.0
    table.keep(np.array([True]))
    assert table.full_area.tolist() == [5000.0]
    plain = TrackTable(full_area_seconds=0.0)  # no memory: the last area
    slot = plain.add(np.array([PERSON]), 0.0, np.zeros((1, 2)), np.array([400.0]))
    plain.observe(slot, 0.1, np.zeros((1, 2)), np.array([100.0]), smoothing=0.5)
    assert plain.full_area[0] == 100.0
    with pytest.raises(ValueError, match="full_area_seconds"):
        TrackTable(full_area_seconds=-1.0)
    with pytest.raises(ValueError, match="full_area_seconds"):
        HungarianTracker(full_area_seconds=-1.0)


def test_greedy_baseline_loses_the_id_after_a_miss_hungarian_does_not():
    car = [(CAR, 1, (2, 8, 2, 10))]
    frames = [car, [], car]
    greedy, hungarian = GreedyTracker(), HungarianTracker(camera_motion=False)
    g = [ids_by_truth(greedy.update(frame_with(f, t=0.1 * k, index=k))).get(1) for k, f in enumerate(frames)]
    h = [ids_by_truth(hungarian.update(frame_with(f, t=0.1 * k, index=k))).get(1) for k, f in enumerate(frames)]
    assert g[0] == 1 and g[2] == 2
    assert h[0] == h[2] == 1
    assert ids_by_truth(greedy.update(frame_with(car, t=0.3, index=3)))[1] == 2  # consecutive frames: kept


def test_build_tracker_names_and_options():
    assert isinstance(build_tracker("greedy", iou_threshold=0.4, camera_motion=False), GreedyTracker)
    assert build_tracker("greedy", iou_threshold=0.4).iou_threshold == 0.4
    assert build_tracker("none").update(frame_with([])) is not None
    with pytest.raises(ValueError, match="unknown tracker option"):
        build_tracker("hungarian", iou_treshold=0.3)
    with pytest.raises(ValueError, match="unknown tracker option"):
        build_tracker("greedy", bogus=1)
    with pytest.raises(ValueError, match="unknown tracker 'deepsort'"):
        build_tracker("deepsort")
    for bad in ({"min_hits": 0}, {"max_pixels": -1}, {"velocity_smoothing": 0}, {"min_containment": 0},
                {"high_score_threshold": 2}, {"max_predict_seconds": -1}, {"small_object_area": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            HungarianTracker(**bad)


def test_tracker_config_mirrors_the_hungarian_tracker():
    params = {n: p.default for n, p in inspect.signature(HungarianTracker).parameters.items() if n != "device"}
    fields = {f.name: f.default for f in dataclasses.fields(TrackerConfig) if f.name != "name"}
    assert fields == params
    cfg = TrackerConfig(camera_motion=False, max_center_distance=0.0)
    tracker = build_tracker(cfg.name, **{k: v for k, v in dataclasses.asdict(cfg).items() if k != "name"})
    assert tracker.camera_motion is False and tracker.max_center_distance == 0


@pytest.mark.parametrize("dt,weight", [(0.1, 0.5), (0.05, 1 - 0.5**0.5), (0.2, 0.75), (0.4, 1 - 0.5**4)])
def test_velocity_average_weighs_a_step_by_its_duration(dt, weight):
    # the same smoothing spans the same time at any frame rate: a 0.1 s step weighs `smoothing`
    table = TrackTable()
    slot = table.add(np.array([CAR]), 0.0, np.zeros((1, 2)), np.array([10.0]))
    table.observe(slot, dt, np.array([[1.0, 0.0]]) * dt, np.array([10.0]), smoothing=0.5)  # first step: 1 px/s
    table.observe(slot, 2 * dt, np.array([[1.0 + 3.0, 0.0]]) * dt, np.array([10.0]), smoothing=0.5)  # then 3 px/s
    assert table.velocity[0, 0] == pytest.approx(weight * 3.0 + (1 - weight) * 1.0)
