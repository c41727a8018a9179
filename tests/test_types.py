import numpy as np
import pytest
import torch

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.types import Category, DatasetMeta, Frame, PanopticFrame


def make_frame(h=4, w=5, index=0):
    return Frame(index=index, pts=index, time=index / 10, capture_time=0.0, image=np.zeros((h, w, 3), np.uint8))


SEM = np.array([[0, 0, 13, 13, 255]] * 4)
INST = np.array([[0, 0, 3, 3, 0]] * 4)


def test_frame_validates_image():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        Frame(0, 0, 0.0, 0.0, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        Frame(0, 0, 0.0, 0.0, np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="index"):
        Frame(-1, 0, 0.0, 0.0, np.zeros((4, 5, 3), np.uint8))


def test_from_labels_round_trip():
    inst = INST.copy()
    inst[0, 2] = 5  # a second car
    pf = PanopticFrame.from_labels(make_frame(), SEM, inst, KITTI_STEP)
    pf.validate()
    assert len(pf) == 3
    assert sorted(pf.category_ids.tolist()) == [0, 13, 13]
    assert pf.is_thing.tolist() == KITTI_STEP.is_thing(pf.category_ids).tolist()
    assert sorted(pf.track_ids[pf.is_thing].tolist()) == [3, 5]
    assert (pf.track_ids[~pf.is_thing] == -1).all()
    assert (pf.id_map[:, 4] == 0).all()  # void column
    sem, ins = pf.to_labels()
    np.testing.assert_array_equal(sem, SEM)
    np.testing.assert_array_equal(ins, inst)


def test_thing_class_with_instance_zero_is_crowd_not_a_thing():
    inst = INST.copy()
    inst[2:, 2:4] = 0  # the lower half of the car region: crowd
    pf = PanopticFrame.from_labels(make_frame(), SEM, inst, KITTI_STEP)
    crowd = (pf.category_ids == 13) & (pf.track_ids == -1)
    assert crowd.sum() == 1 and not pf.is_thing[crowd].any()
    assert pf.is_thing.sum() == 1 and pf.track_ids[pf.is_thing].tolist() == [3]
    sem, ins = pf.to_labels("track")
    np.testing.assert_array_equal(sem, SEM)
    np.testing.assert_array_equal(ins, inst)  # crowd written back as instance 0


def test_to_labels_segment_mode_and_bad_mode():
    pf = PanopticFrame.from_labels(make_frame(), SEM, INST, KITTI_STEP)
    _, ins = pf.to_labels("segment")
    car = pf.segment_ids[pf.category_ids == 13][0]
    assert (ins[SEM == 13] == car).all() and (ins[SEM != 13] == 0).all()
    with pytest.raises(ValueError, match="instances"):
        pf.to_labels("nope")


@pytest.mark.parametrize("on_device", [False, True])
def test_selection_voids_dropped_segments_and_keeps_order(on_device):
    inst = INST.copy()
    inst[0, 2] = 5
    pf = PanopticFrame.from_labels(make_frame(), SEM, inst, KITTI_STEP)
    if on_device:
        pf.id_map = torch.from_numpy(pf.id_map)
    things = pf[pf.is_thing]
    assert things.is_thing.all() and len(things) == 2
    id_map = things.id_map_numpy()
    assert set(np.unique(id_map).tolist()) == {0} | set(things.segment_ids.tolist())
    rev = pf[np.array([2, 0, 1])]
    assert rev.segment_ids.tolist() == pf.segment_ids[[2, 0, 1]].tolist()
    with pytest.raises(IndexError):
        pf[np.array([0, 0])]


def test_panoptic_frame_validation():
    f = make_frame()
    with pytest.raises(ValueError, match="shape"):
        PanopticFrame(f, np.zeros((3, 5), np.int32), [1], [0], KITTI_STEP)
    with pytest.raises(ValueError, match="int32"):
        PanopticFrame(f, np.zeros((4, 5), np.int64), [1], [0], KITTI_STEP)
    with pytest.raises(ValueError, match="unique"):
        PanopticFrame(f, np.zeros((4, 5), np.int32), [1, 1], [0, 0], KITTI_STEP)
    with pytest.raises(ValueError, match="not in dataset"):
        PanopticFrame(f, np.zeros((4, 5), np.int32), [1], [77], KITTI_STEP)
    with pytest.raises(ValueError, match="entries"):
        PanopticFrame(f, np.zeros((4, 5), np.int32), [1, 2], [0], KITTI_STEP)
    pf = PanopticFrame(f, np.full((4, 5), 9, np.int32), [1], [0], KITTI_STEP)
    with pytest.raises(ValueError, match=r"\[9\]"):
        pf.validate()


def test_to_numpy_is_the_device_move():
    pf = PanopticFrame.from_labels(make_frame(), SEM, INST, KITTI_STEP)
    pf.id_map = torch.from_numpy(pf.id_map)
    assert pf.on_device
    host = pf.to_numpy()
    assert isinstance(host.id_map, np.ndarray) and not host.on_device
    assert host.to_numpy() is host


def test_meta_validation():
    with pytest.raises(ValueError, match="duplicate"):
        DatasetMeta("x", (Category(0, "a", False, (0, 0, 0)), Category(0, "b", True, (0, 0, 0))))
    with pytest.raises(ValueError, match="void"):
        DatasetMeta("x", (Category(255, "a", False, (0, 0, 0)),))
    assert KITTI_STEP.thing_ids == (11, 13)
    assert KITTI_STEP.colors([0])[0].tolist() == [128, 64, 128]
    with pytest.raises(KeyError):
        KITTI_STEP.category(42)
