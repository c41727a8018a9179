"""The Kalman mask tracker on tiny hand-made sequences: a crossing, an occlusion, a crowd of
identical shapes, a camera pan, an object faster than its own size; and its failure paths."""

import numpy as np
import pytest

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.tracking import KalmanMaskTracker, build_tracker
from vpanoptic.types import Frame, PanopticFrame

CAR, PERSON, ROAD = 13, 11, 0


def frame_with(objects, t, index, size=(40, 120), image=None, scores=None):
    """objects: (category, true id, (y0, y1, x0, x1)), painted in order (later ones in front)."""
    h, w = size
    sem = np.full((h, w), ROAD)
    inst = np.zeros((h, w), int)
    for cat, label, (y0, y1, x0, x1) in objects:
        y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        if y1 > y0 and x1 > x0:
            sem[y0:y1, x0:x1] = cat
            inst[y0:y1, x0:x1] = label
    img = np.zeros((h, w, 3), np.uint8) if image is None else image
    pf = PanopticFrame.from_labels(Frame(index, index, t, 0.0, img), sem, inst, KITTI_STEP)
    pf.truth = pf.track_ids.copy()
    pf.track_ids[:] = -1
    if scores is not None:
        pf.scores = np.array([scores.get(int(g), 1.0) for g in pf.truth], np.float32)
    return pf


def run(tracker, frames):
    """Per frame: {true id: track id} of the things present."""
    out = []
    for pf in frames:
        tracker.update(pf)
        assert (pf.track_ids[pf.is_thing] > 0).all() and (pf.track_ids[~pf.is_thing] == -1).all()
        things = pf.track_ids[pf.is_thing]
        assert len(set(things.tolist())) == things.size  # no id twice in a frame
        out.append({int(g): int(t) for g, t in zip(pf.truth, pf.track_ids) if g > 0})
    return out


def ids_of(seen, truth):
    return {s[truth] for s in seen if truth in s}


def test_crossing_keeps_each_id_on_its_side():
    # A walks right, B walks left, B in front: A is hidden behind B for a few frames
    frames = [frame_with([(PERSON, 1, (10, 30, 5 + 6 * k, 15 + 6 * k)), (PERSON, 2, (8, 32, 105 - 6 * k, 115 - 6 * k))],
                         t=k / 10, index=k) for k in range(17)]
    seen = run(KalmanMaskTracker(), frames)
    assert len(ids_of(seen, 1)) == 1 and len(ids_of(seen, 2)) == 1
    assert ids_of(seen, 1) != ids_of(seen, 2)


def test_occlusion_continues_the_track_where_its_motion_predicts():
    # a car moving 5 px per frame disappears for 3 frames and comes back on its course
    frames = []
    for k in range(14):
        objs = [] if 6 <= k <= 8 else [(CAR, 1, (10, 22, 5 + 5 * k, 17 + 5 * k))]
        frames.append(frame_with(objs, t=k / 10, index=k))
    seen = run(KalmanMaskTracker(), frames)
    assert len(ids_of(seen, 1)) == 1


def test_crowd_of_identical_shapes_keeps_every_id():
    frames = []
    for k in range(12):
        objs = [(PERSON, 1 + 3 * r + c, (4 + 12 * r, 12 + 12 * r, 10 + 14 * c + 2 * k, 18 + 14 * c + 2 * k))
                for r in range(3) for c in range(3)]
        frames.append(frame_with(objs, t=k / 10, index=k))
    seen = run(KalmanMaskTracker(camera_motion=False), frames)
    for truth in range(1, 10):
        assert len(ids_of(seen, truth)) == 1
    assert len({next(iter(ids_of(seen, t))) for t in range(1, 10)}) == 9


def test_camera_pan_keeps_ids_of_objects_fixed_in_the_world():
    rng = np.random.default_rng(0)
    h, w, step = 120, 240, 9  # the camera pans 9 px per frame; cars are 8 px wide
    world = np.repeat(np.repeat(rng.integers(0, 255, (h // 8 + 1, (w + 20 * step) // 8 + 1, 3), np.uint8), 8, 0), 8, 1)
    frames = []
    for k in range(10):
        img = np.ascontiguousarray(world[:h, step * k: step * k + w])
        objs = [
            (CAR, j + 1, (20 + 30 * j, 28 + 30 * j, 150 + 20 * j - step * k, 158 + 20 * j - step * k)) for j in range(3)
        ]
        frames.append(frame_with(objs, t=k / 10, index=k, size=(h, w), image=img))
    seen = run(KalmanMaskTracker(camera_motion=True), frames)
    for truth in (1, 2, 3):
        assert len(ids_of(seen, truth)) == 1


def test_motion_gate_follows_an_object_faster_than_its_size():
    # 10 px per frame, 6 px wide: the predicted mask never overlaps before the velocity is known
    frames = [frame_with([(CAR, 1, (10, 16, 2 + 10 * k, 8 + 10 * k))], t=k / 10, index=k) for k in range(10)]
    with_gate = run(KalmanMaskTracker(camera_motion=False), frames)
    without = run(KalmanMaskTracker(camera_motion=False, motion_gate=False), frames)
    assert len(ids_of(with_gate, 1)) == 1
    assert len(ids_of(without, 1)) > 1


def test_frame_rate_does_not_change_the_outcome():
    # the same motion sampled at 10 and 30 fps: time, not frame count, drives the filter
    for fps, n in ((10, 10), (30, 30)):
        frames = [frame_with([(CAR, 1, (10, 20, 4 + round(60 * k / fps), 14 + round(60 * k / fps)))],
                             t=k / fps, index=k) for k in range(n)]
        assert len(ids_of(run(KalmanMaskTracker(), frames), 1)) == 1


def test_low_score_segment_continues_a_track_but_starts_none():
    frames = [frame_with([(CAR, 1, (10, 20, 10 + 2 * k, 20 + 2 * k)), (CAR, 2, (25, 35, 80, 90))], t=k / 10, index=k,
                         scores={1: 0.3 if k >= 3 else 0.9, 2: 0.2}) for k in range(6)]
    seen = run(KalmanMaskTracker(), frames)
    assert len(ids_of(seen, 1)) == 1  # confident at first, then continued at a low score
    assert len(ids_of(seen, 2)) == 6  # never confident: a new one-frame id each frame


def test_lost_track_is_removed_after_max_lost_seconds_and_ids_never_reused():
    tracker = KalmanMaskTracker(max_lost_seconds=0.25)
    a = [frame_with([(CAR, 1, (10, 20, 10, 20))], t=k / 10, index=k) for k in range(3)]
    run(tracker, a)
    assert tracker.num_tracks == 1
    run(tracker, [frame_with([], t=(3 + k) / 10, index=3 + k) for k in range(4)])
    assert tracker.num_tracks == 0
    seen = run(tracker, [frame_with([(CAR, 1, (10, 20, 10, 20))], t=0.8, index=8)])
    assert seen[0][1] > 1


def test_reset_restarts_ids_and_frame_size_change_is_an_error():
    tracker = KalmanMaskTracker()
    first = run(tracker, [frame_with([(CAR, 1, (1, 5, 1, 5))], t=0.0, index=0)])
    with pytest.raises(ValueError, match="frame size changed"):
        tracker.update(frame_with([(CAR, 1, (1, 5, 1, 5))], t=0.1, index=1, size=(30, 60)))
    tracker.reset()
    assert run(tracker, [frame_with([(CAR, 1, (1, 5, 1, 5))], t=0.0, index=0, size=(30, 60))]) == first


@pytest.mark.parametrize("kwargs,match", [
    ({"iou_threshold": 0.0}, "iou_threshold"),
    ({"high_score_threshold": 1.5}, "high_score_threshold"),
    ({"max_lost_seconds": -1}, "max_lost_seconds"),
    ({"min_hits": 0}, "min_hits"),
])
def test_bad_settings_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KalmanMaskTracker(**kwargs)


def test_registry_builds_it_from_config_keywords_and_rejects_unknown_ones():
    tracker = build_tracker("kalman", iou_threshold=0.4, appearance_weight=0.5, motion_gate=False)
    assert isinstance(tracker, KalmanMaskTracker) and tracker.iou_threshold == 0.4 and not tracker.motion_gate
    with pytest.raises(ValueError, match="unknown tracker option"):
        build_tracker("kalman", gate=1)
