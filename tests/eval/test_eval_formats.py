"""Benchmark format readers and writers: round trips on tiny hand-made frames, layouts, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vpanoptic.datasets import CITYSCAPES, COCO_PANOPTIC, KITTI_STEP, MOTCHALLENGE_STEP, VIPSEG, get_meta
from vpanoptic.eval.formats import (
    FormatError,
    pair_sequences,
    read_format,
    read_mots_png,
    read_mots_txt,
    read_step,
    step_to_coco,
    write_cityscapes_vps,
    write_coco_panoptic,
    write_mots_png,
    write_mots_txt,
    write_step,
    write_vipseg,
)


def _step_frame(t: int, *, car=13, person=11, crowd=True):
    """(semantic, instance) int32 (6, 8): road / sky, a moving car (id 3), a person (id 7), void."""
    sem = np.zeros((6, 8), np.int32)
    sem[:2] = 10
    inst = np.zeros((6, 8), np.int32)
    x = t % 4
    sem[2:4, x:x + 3] = car
    inst[2:4, x:x + 3] = 3
    sem[4:6, 6] = person
    inst[4:6, 6] = 7
    if crowd:
        sem[5, 0:2] = car  # crowd: thing with instance 0
    sem[0, 7] = 255
    return sem, inst


def test_dataset_metadata_lists():
    assert COCO_PANOPTIC.num_classes == 133 and len(COCO_PANOPTIC.thing_ids) == 80
    ids = [c.id for c in COCO_PANOPTIC.categories]
    assert ids[0] == 1 and ids[-1] == 200 and 12 not in ids  # panopticapi ids skip 12, 26, ...
    assert COCO_PANOPTIC.category(1).name == "person" and COCO_PANOPTIC.category(1).color == (220, 20, 60)
    assert COCO_PANOPTIC.category(200).name == "rug-merged" and not COCO_PANOPTIC.category(200).isthing
    assert VIPSEG.num_classes == 124 and len(VIPSEG.thing_ids) == 58
    assert VIPSEG.category(0).name == "wall" and VIPSEG.category(123).name == "train"
    assert MOTCHALLENGE_STEP.num_classes == 7 and MOTCHALLENGE_STEP.thing_ids == (4,)
    assert KITTI_STEP.thing_ids == (11, 13) and KITTI_STEP.void_id == 255
    assert get_meta("vipseg") is VIPSEG
    with pytest.raises(KeyError, match="unknown dataset"):
        get_meta("ade20k")


def test_step_round_trip_several_sequences(tmp_path):
    frames = {"0002": [_step_frame(t) for t in range(3)], "0009": [_step_frame(t + 1) for t in range(2)]}
    write_step(tmp_path, frames)
    got = read_step(tmp_path)
    assert list(got.sequences) == ["0002", "0009"]
    assert [f.name for f in got.sequences["0002"]] == ["000000", "000001", "000002"]
    for name, seq in frames.items():
        for ref, (sem, inst) in zip(got.sequences[name], seq):
            lf = ref.load()
            np.testing.assert_array_equal(lf.semantic, sem)
            np.testing.assert_array_equal(lf.instance, inst)


def test_step_single_sequence_folder_pairs_with_any_name(tmp_path):
    write_step(tmp_path / "a", {"gt": [_step_frame(0), _step_frame(1)]})
    write_step(tmp_path / "b", {"png": [_step_frame(0), _step_frame(1)]})
    gt, pred = read_step(tmp_path / "a" / "gt"), read_step(tmp_path / "b" / "png")
    assert list(gt.sequences) == ["gt"]
    pairs = pair_sequences(gt, pred)
    assert [(g.name, p.name) for g, p in pairs[0][1]] == [("000000", "000000"), ("000001", "000001")]


def test_pairing_errors_name_the_difference(tmp_path):
    write_step(tmp_path / "gt", {"s1": [_step_frame(0)] * 3, "s2": [_step_frame(0)]})
    write_step(tmp_path / "p1", {"s1": [_step_frame(0)] * 2, "s2": [_step_frame(0)]})
    write_step(tmp_path / "p2", {"s1": [_step_frame(0)] * 3, "s3": [_step_frame(0)]})
    gt = read_step(tmp_path / "gt")
    with pytest.raises(FormatError, match=r"sequence 's1': frames differ: missing in prediction \['000002'\]"):
        pair_sequences(gt, read_step(tmp_path / "p1"))
    with pytest.raises(FormatError, match=r"sequences differ: missing in prediction \['s2'\]"):
        pair_sequences(gt, read_step(tmp_path / "p2"))
    with pytest.raises(FormatError, match="not a folder"):
        read_step(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no PNG label files"):
        read_step(tmp_path / "empty")


def test_step_to_coco_ids_and_segments():
    sem, inst = _step_frame(0)
    ids, segments = step_to_coco(sem, inst, KITTI_STEP)
    by_id = {s["id"]: s for s in segments}
    car = 13 * 1000 + 3 + 1
    assert by_id[car]["category_id"] == 13 and by_id[car]["iscrowd"] == 0 and by_id[car]["area"] == 6
    assert by_id[car]["bbox"] == [0, 2, 3, 2]
    assert by_id[13 * 1000 + 1]["iscrowd"] == 1  # crowd: car with instance 0
    assert by_id[10 * 1000 + 1]["iscrowd"] == 0  # stuff is never crowd
    assert ids[0, 7] == 0  # void
    assert sum(s["area"] for s in segments) == np.count_nonzero(ids)


def test_coco_panoptic_round_trip(tmp_path):
    frames = [(i, *_step_frame(i)) for i in (5, 9)]
    json_path = write_coco_panoptic(tmp_path, frames, KITTI_STEP)
    data = json.loads(json_path.read_text())
    assert [a["image_id"] for a in data["annotations"]] == [5, 9] and len(data["categories"]) == 19
    got = read_format(tmp_path, "coco")  # the folder holds one JSON and its PNG folder
    assert list(got.sequences) == ["images"] and [f.name for f in got.sequences["images"]] == ["5", "9"]
    assert got.meta.thing_ids == (11, 13)  # categories from the JSON
    lf = got.sequences["images"][0].load()
    sem, inst = _step_frame(5)
    np.testing.assert_array_equal(lf.semantic, sem)
    assert set(np.unique(lf.instance[sem == 13]).tolist()) == {0, 1}  # crowd 0, the car 1 (per-class index)
    ids, segments = lf.coco
    assert ids.shape == sem.shape and {s["id"] for s in segments} == set(np.unique(ids[ids > 0]).tolist())


def test_coco_reader_rejects_unknown_categories(tmp_path):
    write_coco_panoptic(tmp_path, [(1, *_step_frame(0))], KITTI_STEP)
    data = json.loads((tmp_path / "panoptic.json").read_text())
    data["annotations"][0]["segments_info"][0]["category_id"] = 77
    (tmp_path / "panoptic.json").write_text(json.dumps(data))
    ref = read_format(tmp_path / "panoptic.json", "coco").sequences["images"][0]
    with pytest.raises(FormatError, match=r"category ids \[77\]"):
        ref.load()


def test_cityscapes_vps_round_trip_keeps_track_identity(tmp_path):
    videos = {"1": [_step_frame(t) for t in range(3)], "2": [_step_frame(t, crowd=False) for t in range(2)]}
    write_cityscapes_vps(tmp_path, videos, CITYSCAPES)
    write_cityscapes_vps(tmp_path / "pred", videos, CITYSCAPES, prediction=True)
    assert (tmp_path / "panoptic_video" / "0001_0000_synth_gtFine_color.png").is_file()
    assert (tmp_path / "pred" / "pan_pred" / "0001_0002_synth.png").is_file()
    gt = read_format(tmp_path / "panoptic_gt_val_city_vps.json", "cityscapes-vps")
    pred = read_format(tmp_path / "pred", "cityscapes-vps", meta=gt.meta)
    assert list(gt.sequences) == ["0001", "0002"] and len(gt.sequences["0001"]) == 3
    assert [f.name for f in pred.sequences["0002"]] == ["0002_0000_synth", "0002_0001_synth"]
    first, last = (gt.sequences["0001"][i].load() for i in (0, 2))
    car0 = first.instance[(first.semantic == 13) & (first.instance > 0)]
    car2 = last.instance[(last.semantic == 13) & (last.instance > 0)]
    assert np.unique(car0).tolist() == np.unique(car2).tolist() == [1]  # same object, same instance
    assert gt.meta.num_classes == 19 and gt.meta.thing_ids == tuple(range(11, 19))


def test_vipseg_round_trip(tmp_path):
    sem, inst = _step_frame(0, car=48, person=60)
    sem[sem == 10] = 28  # sky
    sem[sem == 0] = 18  # road
    videos = {"12_abc": [(sem, inst), (sem, inst)]}
    write_vipseg(tmp_path, videos, VIPSEG)
    data = json.loads((tmp_path / "panoptic_gt_VIPSeg.json").read_text())
    assert data["videos"][0]["video_id"] == "12_abc" and len(data["categories"]) == 124
    got = read_format(tmp_path, "vipseg")
    assert list(got.sequences) == ["12_abc"] and [f.name for f in got.sequences["12_abc"]] == ["00000000", "00000001"]
    lf = got.sequences["12_abc"][1].load()
    np.testing.assert_array_equal(lf.semantic, sem)
    assert (lf.instance[(sem == 60)] == 1).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside pycocotools.mask.decode
def test_mots_txt_round_trip_and_rle_compatibility(tmp_path):
    a = np.zeros((5, 7), np.int64)
    a[1:3, 1:4] = 1002
    a[3:5, 5:7] = 2005
    b = np.zeros((5, 7), np.int64)
    b[0:2, 0:2] = 10000
    path = write_mots_txt(tmp_path / "0002.txt", [a, np.zeros_like(a), b])
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("0 1002 1 5 7 ")
    # The rle field is pycocotools' compressed RLE of the column-major mask.
    rle = {"size": [5, 7], "counts": lines[0].split(" ")[5].encode()}
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), a == 1002)
    got = read_mots_txt(tmp_path)
    frames = got.sequences["0002"]
    assert [f.name for f in frames] == ["000000", "000001", "000002"]
    for ref, want in zip(frames, [a, np.zeros_like(a), b]):
        np.testing.assert_array_equal(ref.load().mots, want)


def test_mots_txt_errors(tmp_path):
    (tmp_path / "x.txt").write_text("0 1002 1 5 7\n")
    with pytest.raises(FormatError, match="x.txt:1: expected 'frame id class_id height width rle'"):
        read_mots_txt(tmp_path / "x.txt")
    (tmp_path / "y.txt").write_text("0 2002 1 5 7 abc\n")
    with pytest.raises(FormatError, match="does not belong to class 1"):
        read_mots_txt(tmp_path / "y.txt")


def test_mots_png_round_trip(tmp_path):
    a = np.zeros((4, 6), np.int64)
    a[1:3, 2:5] = 2001
    a[0, 0] = 10000
    write_mots_png(tmp_path, {"0005": [a, a]})
    assert cv2.imread(str(tmp_path / "0005" / "000000.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    got = read_mots_png(tmp_path)
    assert list(got.sequences) == ["0005"]
    np.testing.assert_array_equal(got.sequences["0005"][1].load().mots, a)
    assert read_format(tmp_path, "mots").sequences.keys() == got.sequences.keys()
