"""KITTI-STEP PNG, COCO panoptic and JSON Lines sinks: every output is read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sink_scenes import CAR, PERSON, scene

from vpanoptic.datasets import CITYSCAPES, KITTI_STEP
from vpanoptic.io.formats import decode_coco_ids, read_kitti_step, read_rgb_png
from vpanoptic.sinks import CocoPanopticSink, JsonlSink, KittiStepSink
from vpanoptic.types import PanopticFrame


def frames() -> list[PanopticFrame]:
    """Three frames with gaps in the indices (dropped frames), one odd-sized scene, one
    with an untracked car, one with a listed segment that has no pixels."""
    out = [scene(0, 0.0), scene(3, 0.1, shift=2, car_track=0), scene(7, 0.25, shift=4, person_track=300)]
    last = out[-1]
    out[-1] = PanopticFrame(  # segment 99 is listed but absent from the map
        frame=last.frame,
        id_map=last.id_map,
        segment_ids=np.append(last.segment_ids, 99),
        category_ids=np.append(last.category_ids, CAR),
        meta=last.meta,
        scores=np.append(last.scores, 0.25),
        track_ids=np.append(last.track_ids, 5),
    )
    return out


# -------------------------------------------------------------------- KITTI-STEP
def test_kitti_png_round_trip(tmp_path):
    out_dir = tmp_path / "kitti"
    pfs = frames() + [scene(9, height=47, width=63)]
    with KittiStepSink(out_dir) as sink:
        for pf in pfs:
            sink.write(pf)
    assert sink.name == "png" and sink.frames_written == 4
    assert sorted(p.name for p in out_dir.iterdir()) == ["000000.png", "000003.png", "000007.png", "000009.png"]
    for pf in pfs:
        semantic, instance = read_kitti_step(out_dir / f"{pf.frame.index:06d}.png")
        ref_semantic, ref_instance = pf.to_labels("track")
        np.testing.assert_array_equal(semantic, ref_semantic)
        np.testing.assert_array_equal(instance, ref_instance)
    # Spot checks of the convention: void → 255, stuff → 0, tracked things → track id.
    semantic, instance = read_kitti_step(out_dir / "000007.png")
    assert semantic[-1, 0] == KITTI_STEP.void_id and instance[-1, 0] == 0
    assert semantic[0, 0] == 10 and instance[0, 0] == 0
    assert semantic[10, 35] == PERSON and instance[10, 35] == 300  # G*256 + B
    assert semantic[-5, -6] == CAR and instance[-5, -6] == 0  # untracked car


def test_kitti_close_and_errors(tmp_path):
    sink = KittiStepSink(tmp_path / "k")
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(scene(0))
    with pytest.raises(ValueError, match="65535"):
        KittiStepSink(tmp_path / "k2").write(scene(0, car_track=70000))


# --------------------------------------------------------------------------- COCO
def test_coco_panoptic_png_and_json(tmp_path):
    out_dir = tmp_path / "coco"
    pfs = frames()
    with CocoPanopticSink(out_dir) as sink:
        for pf in pfs:
            sink.write(pf)
        assert not (out_dir / "panoptic.json").exists()  # written at close
    data = json.loads((out_dir / "panoptic.json").read_text())
    assert set(data) >= {"images", "annotations", "categories"}
    assert sorted(p.name for p in (out_dir / "panoptic").iterdir()) == ["000000.png", "000003.png", "000007.png"]
    assert not any(p.name.startswith(".") for p in out_dir.rglob("*"))  # no temporary files left

    # Categories: all of them, with thing flags and colours.
    cats = {c["id"]: c for c in data["categories"]}
    assert len(cats) == KITTI_STEP.num_classes
    for c in KITTI_STEP.categories:
        assert cats[c.id] == {"id": c.id, "name": c.name, "isthing": int(c.isthing), "color": list(c.color)}

    assert [im["id"] for im in data["images"]] == [0, 3, 7]
    assert [a["image_id"] for a in data["annotations"]] == [0, 3, 7]
    for pf, image, ann in zip(pfs, data["images"], data["annotations"]):
        assert image["width"] == 64 and image["height"] == 48
        assert image["time"] == pytest.approx(pf.frame.time)
        assert ann["file_name"] == f"{pf.frame.index:06d}.png"
        ids = decode_coco_ids(read_rgb_png(out_dir / "panoptic" / ann["file_name"]))
        np.testing.assert_array_equal(ids, pf.id_map)
        infos = ann["segments_info"]
        # JSON ids are exactly the non-void ids of the PNG.
        present = set(np.unique(ids[ids != 0]).tolist())
        assert {s["id"] for s in infos} == present
        by_id = {int(s): i for i, s in enumerate(pf.segment_ids)}
        for s in infos:
            ys, xs = np.nonzero(ids == s["id"])  # area and box measured on the PNG
            assert s["area"] == ys.size
            assert s["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert s["iscrowd"] == 0
            i = by_id[s["id"]]
            assert s["category_id"] == pf.category_ids[i]
            assert s["track_id"] == pf.track_ids[i]
            assert s["score"] == pytest.approx(float(pf.scores[i]), abs=1e-6)
    # Segment 99 of the last frame has no pixels: not listed (panopticapi rejects it).
    assert 99 not in {s["id"] for s in data["annotations"][-1]["segments_info"]}
    # Frame 3's cars are untracked (track id -1, one segment); its person has track 12.
    infos = data["annotations"][1]["segments_info"]
    assert [s["track_id"] for s in infos if s["category_id"] == CAR] == [-1]
    assert [s["track_id"] for s in infos if s["category_id"] == PERSON] == [12]


def test_coco_close_is_idempotent_and_empty_run_is_valid(tmp_path):
    sink = CocoPanopticSink(tmp_path / "c", meta=CITYSCAPES)
    sink.close()
    sink.close()
    data = json.loads((tmp_path / "c" / "panoptic.json").read_text())
    assert data["images"] == [] and data["annotations"] == []
    assert len(data["categories"]) == CITYSCAPES.num_classes
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(scene(0))


def test_coco_after_an_error_holds_frames_so_far(tmp_path):
    with pytest.raises(RuntimeError, match="upstream"):
        with CocoPanopticSink(tmp_path / "c") as sink:
            sink.write(scene(0))
            sink.write(scene(1))
            raise RuntimeError("upstream failure")
    data = json.loads((tmp_path / "c" / "panoptic.json").read_text())
    assert [im["id"] for im in data["images"]] == [0, 1]


def test_coco_rejects_unlisted_ids_and_mixed_datasets(tmp_path):
    sink = CocoPanopticSink(tmp_path / "c")
    pf = scene(0)
    unlisted = PanopticFrame(  # the map still holds the first segment's pixels
        frame=pf.frame,
        id_map=pf.id_map,
        segment_ids=pf.segment_ids[1:],
        category_ids=pf.category_ids[1:],
        meta=pf.meta,
    )
    with pytest.raises(ValueError, match="no segment entry"):
        sink.write(unlisted)
    sink.write(pf)
    other = PanopticFrame(
        frame=pf.frame, id_map=pf.id_map, segment_ids=pf.segment_ids, category_ids=pf.category_ids, meta=CITYSCAPES
    )
    with pytest.raises(ValueError, match="dataset"):
        sink.write(other)
    sink.close()


# -------------------------------------------------------------------------- JSONL
def test_jsonl_lines(tmp_path):
    path = tmp_path / "sub" / "segments.jsonl"
    pfs = frames()
    sink = JsonlSink(path)
    sink.write(pfs[0])
    # Flushed per line: readable before close.
    assert len(path.read_text().splitlines()) == 1
    for pf in pfs[1:]:
        sink.write(pf)
    sink.close()
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(pfs)
    for pf, rec in zip(pfs, lines):
        assert rec["frame"] == pf.frame.index and rec["pts"] == pf.frame.pts
        assert rec["time"] == pytest.approx(pf.frame.time)
        assert (rec["width"], rec["height"]) == (64, 48)
        assert len(rec["segments"]) == len(pf)
        id_map = pf.id_map
        for i, seg in enumerate(rec["segments"]):
            assert set(seg) == {"id", "category_id", "category", "isthing", "track_id", "score", "area", "bbox"}
            assert seg["id"] == pf.segment_ids[i]
            assert seg["category_id"] == pf.category_ids[i]
            assert seg["category"] == KITTI_STEP.category(seg["category_id"]).name
            assert seg["isthing"] is bool(pf.is_thing[i])
            assert seg["track_id"] == pf.track_ids[i]
            assert seg["score"] == pytest.approx(float(pf.scores[i]), abs=1e-6)
            ys, xs = np.nonzero(id_map == seg["id"])
            assert seg["area"] == ys.size
            if ys.size:
                assert seg["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            else:
                assert seg["bbox"] == [0, 0, 0, 0]
    assert {s["category"] for s in lines[0]["segments"]} == {"road", "building", "sky", "person", "car"}
    with pytest.raises(RuntimeError, match="closed"):
        sink.write(pfs[0])


def test_jsonl_non_finite_values_are_null(tmp_path):
    pf = scene(0, float("nan"))
    pf.scores[0] = np.nan
    with JsonlSink(tmp_path / "s.jsonl") as sink:
        sink.write(pf)
    rec = json.loads((tmp_path / "s.jsonl").read_text())
    assert rec["time"] is None and rec["segments"][0]["score"] is None
