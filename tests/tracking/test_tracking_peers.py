"""Box trackers from other libraries behind `BoxTrackerAdapter`: boxes out, ids painted back."""

import sys

import numpy as np
import pytest
import torch

from vpanoptic.config import TrackerConfig
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.tracking import TRACKERS, BoxTrackerAdapter, build_tracker, thing_boxes
from vpanoptic.tracking.peers import ids_by_index
from vpanoptic.types import Frame, PanopticFrame

H, W = 30, 60
CAR, PERSON, ROAD = 13, 11, 0


def frame(objects, index=0, scramble=0):
    """objects: (category, true id, (y0, y1, x0, x1)); segment ids are shifted by `scramble`
    and the segment order reversed, so nothing can be read from the order or the ids."""
    sem = np.full((H, W), ROAD, np.int32)
    id_map = np.full((H, W), 1, np.int32)  # segment 1: road
    seg, cat, truth = [1], [ROAD], [0]
    for k, (c, true_id, (y0, y1, x0, x1)) in enumerate(objects):
        sid = 10 + scramble + 7 * k
        sem[y0:y1, x0:x1] = c
        id_map[y0:y1, x0:x1] = sid
        seg.append(sid)
        cat.append(c)
        truth.append(true_id)
    order = np.arange(len(seg))[::-1]
    pf = PanopticFrame(Frame(index, index, index / 10, 0.0, np.zeros((H, W, 3), np.uint8)), id_map,
                       np.array(seg)[order], np.array(cat)[order], KITTI_STEP)
    pf.truth = np.array(truth)[order]
    return pf


def by_truth(pf):
    return {int(t): int(i) for t, i in zip(pf.truth, pf.track_ids) if t > 0}


def test_thing_boxes_are_tight_and_skip_stuff_and_empty_things():
    pf = frame([(CAR, 1, (2, 5, 3, 9)), (PERSON, 2, (10, 20, 40, 44))])
    pf = PanopticFrame(pf.frame, pf.id_map, np.append(pf.segment_ids, 99), np.append(pf.category_ids, CAR), KITTI_STEP)
    idx, boxes = thing_boxes(pf)
    got = {int(pf.segment_ids[i]): b.tolist() for i, b in zip(idx, boxes)}
    assert got == {10: [3, 2, 9, 5], 17: [40, 10, 44, 20]}  # x1, y1, x2, y2 (exclusive); 99 has no pixel
    idx_t, boxes_t = thing_boxes(PanopticFrame(pf.frame, torch.from_numpy(pf.id_map), pf.segment_ids,
                                               pf.category_ids, KITTI_STEP))
    assert np.array_equal(idx, idx_t) and np.array_equal(boxes, boxes_t)


class NearestBox:
    """A stand-in box tracker: keeps the id of the previous box with the nearest centre
    (within 10 px), leaves a detection seen for the first time without an id, counts ids from 500."""

    def __init__(self):
        self.prev: list[tuple[np.ndarray, int]] = []
        self.next = 500
        self.seen: list[np.ndarray] = []

    def __call__(self, boxes, scores, classes, image):
        self.seen.append(boxes.copy())
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        ids = np.zeros(len(boxes), np.int64)
        new = []
        for k, c in enumerate(centres):
            near = [(np.abs(c - pc).sum(), i) for pc, i in self.prev]
            d, i = min(near, default=(1e9, 0))
            if d < 10:
                ids[k] = i
                new.append((c, i))
            else:
                new.append((c, self.next))
                self.next += 1
        self.prev = new
        return ids


def three_frames():
    return [frame([(CAR, 1, (2, 8, 2 + 3 * k, 12 + 3 * k)), (PERSON, 2, (15, 28, 50 - 2 * k, 56 - 2 * k))],
                  index=k, scramble=5 * k) for k in range(3)]


def test_adapter_paints_ids_by_detection_index_over_three_frames():
    made = []
    adapter = BoxTrackerAdapter(lambda: made.append(NearestBox()) or made[-1])
    outs = [by_truth(adapter.update(pf)) for pf in three_frames()]
    # frame 0: the library gives no id -> each segment a track of one frame, ids distinct
    assert len(set(outs[0].values())) == 2
    # frames 1-2: the library's ids (500, 501) become the adapter's own, stable per object
    assert outs[1] == outs[2] and len(set(outs[1].values())) == 2
    assert set(outs[1].values()).isdisjoint(outs[0].values()) and max(outs[1].values()) < 500
    # the library saw the tight boxes, in the adapter's detection order
    assert made[0].seen[0].shape == (2, 4)
    # stuff keeps -1
    pf = three_frames()[0]
    adapter.update(pf)
    assert (pf.track_ids[~pf.is_thing] == -1).all() and (pf.track_ids[pf.is_thing] > 0).all()


def test_adapter_reset_restarts_ids_and_library():
    made = []
    adapter = BoxTrackerAdapter(lambda: made.append(NearestBox()) or made[-1])
    first = [by_truth(adapter.update(pf)) for pf in three_frames()]
    adapter.reset()
    again = [by_truth(adapter.update(pf)) for pf in three_frames()]
    assert first == again and len(made) == 2


def test_adapter_rejects_a_wrong_number_of_ids():
    adapter = BoxTrackerAdapter(lambda: lambda boxes, scores, classes, image: np.zeros(len(boxes) + 1))
    with pytest.raises(ValueError, match="returned"):
        adapter.update(three_frames()[0])


def test_ids_by_index_ignores_out_of_range_indices():
    assert ids_by_index(3, np.array([2, 0, 7, -1]), np.array([5, 6, 8, 9])).tolist() == [6, 0, 5]


@pytest.mark.parametrize("name", ["bytetrack", "sort", "ocsort"])
def test_peer_names_are_registered_and_accepted_by_the_config(name):
    assert name in TRACKERS
    assert TrackerConfig(name=name).name == name


def test_missing_library_fails_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "trackers", None)
    with pytest.raises(ImportError, match=r"pip install 'vpanoptic\[trackers\]'"):
        build_tracker("sort")


def test_unknown_keyword_is_rejected_for_peers():
    with pytest.raises(ValueError, match="unknown tracker option"):
        build_tracker("bytetrack", frame_rate=10)


@pytest.mark.parametrize("name", ["bytetrack", "sort", "ocsort"])
def test_roboflow_trackers_keep_ids_over_three_frames(name):
    pytest.importorskip("trackers")
    clip = [frame([(CAR, 1, (2, 8, 2 + k, 12 + k)), (PERSON, 2, (15, 28, 50 - k, 56 - k))], index=k, scramble=5 * k)
            for k in range(6)]
    tracker = build_tracker(name, fps=10.0)
    outs = [by_truth(tracker.update(pf)) for pf in clip]
    assert all(len(set(o.values())) == 2 for o in outs)  # two objects, two ids in every frame
    # once the library confirms a track, the id stays with its object
    assert outs[-1] == outs[-2] == outs[-3]
