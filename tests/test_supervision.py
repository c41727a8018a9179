"""`PanopticFrame.to_supervision()`: vpanoptic output as `supervision.Detections` (optional extra)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.types import Frame, PanopticFrame

ROAD, PERSON, CAR = 0, 11, 13  # KITTI-STEP ids: road is stuff, person and car are things


def hand_made() -> PanopticFrame:
    """8×10: road everywhere, a tracked car, a tracked person, an untracked car, a listed but empty car."""
    id_map = np.ones((8, 10), np.int32)   # segment 1: road
    id_map[1:4, 2:6] = 2                  # segment 2: car, track 7 → box x 2..5, y 1..3
    id_map[5:7, 7:9] = 3                  # segment 3: person, track 4
    id_map[7, 0] = 4                      # segment 4: car, not tracked
    id_map[0, 9] = 0                      # void
    image = np.full((8, 10, 3), 90, np.uint8)
    return PanopticFrame(
        frame=Frame(index=3, pts=3, time=0.3, capture_time=0.0, image=image),
        id_map=id_map,
        segment_ids=[1, 2, 3, 4, 5],
        category_ids=[ROAD, CAR, PERSON, CAR, CAR],
        meta=KITTI_STEP,
        scores=[1.0, 0.9, 0.8, 0.4, 0.3],
        track_ids=[-1, 7, 4, -1, 9],
    )


def test_things_by_default_with_masks_boxes_ids_and_names():
    sv = pytest.importorskip("supervision")
    pf = hand_made()
    det = pf.to_supervision()
    assert isinstance(det, sv.Detections) and len(det) == 4
    assert det.mask is not None and det.mask.shape == (4, 8, 10) and det.mask.dtype == bool
    np.testing.assert_array_equal(det.mask[0], pf.id_map == 2)
    np.testing.assert_array_equal(det.mask[1], pf.id_map == 3)
    assert det.mask[3].sum() == 0  # segment 5 has no pixel
    np.testing.assert_array_equal(det.xyxy, np.array([[2, 1, 5, 3], [7, 5, 8, 6], [0, 7, 0, 7], [0, 0, 0, 0]],
                                                     np.float32))
    assert det.class_id.tolist() == [CAR, PERSON, CAR, CAR]
    assert det.tracker_id.tolist() == [7, 4, -1, 9]
    np.testing.assert_allclose(det.confidence, [0.9, 0.8, 0.4, 0.3])
    assert det.data["class_name"].tolist() == ["car", "person", "car", "car"]
    assert det.data["segment_id"].tolist() == [2, 3, 4, 5]
    # supervision's own selection works on the result: the tracked things
    tracked = det[det.tracker_id > 0]
    assert tracked.data["segment_id"].tolist() == [2, 3, 5]


def test_stuff_on_request_and_boxes_agree_with_supervision():
    sv = pytest.importorskip("supervision")
    det = hand_made().to_supervision(stuff=True)
    assert len(det) == 5 and det.class_id.tolist() == [ROAD, CAR, PERSON, CAR, CAR]
    assert det.tracker_id.tolist()[0] == -1 and det.data["is_thing"].tolist() == [False, True, True, True, True]
    np.testing.assert_array_equal(det.xyxy[0], [0, 0, 9, 7])  # the road spans the frame
    np.testing.assert_array_equal(det.xyxy[:4], sv.mask_to_xyxy(det.mask[:4]))


def test_an_empty_frame_gives_empty_detections():
    pytest.importorskip("supervision")
    pf = hand_made()[np.zeros(5, bool)]
    det = pf.to_supervision()
    assert len(det) == 0 and det.mask.shape == (0, 8, 10) and det.xyxy.shape == (0, 4)


def test_supervision_annotators_draw_on_the_result():
    sv = pytest.importorskip("supervision")
    pf = hand_made()
    det = pf.to_supervision()
    scene = pf.frame.image.copy()
    annotator = sv.MaskAnnotator(color_lookup=sv.ColorLookup.TRACK, opacity=1.0)
    masked = annotator.annotate(scene.copy(), det[det.tracker_id > 0])
    changed = (masked != scene).any(axis=2)
    np.testing.assert_array_equal(changed, np.isin(pf.id_map, [2, 3]))  # the tracked things' pixels, nothing else
    boxed = sv.BoxAnnotator(thickness=1).annotate(scene.copy(), det[:1])
    assert (boxed[1, 2:6] != scene[1, 2:6]).any(axis=1).all()  # the car box's top edge
    assert (boxed[6:, :] == scene[6:, :]).all()


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "supervision", None)  # import supervision → ModuleNotFoundError
    hint = r"^to_supervision\(\) needs supervision: pip install 'vpanoptic\[supervision\]'$"
    with pytest.raises(ImportError, match=hint):
        hand_made().to_supervision()
