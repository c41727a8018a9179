"""Overlay drawing and track colours."""

from __future__ import annotations

import colorsys
import subprocess
import sys

import numpy as np
import pytest
import torch

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.types import Frame, PanopticFrame
from vpanoptic.viz import label_layout, overlay, segment_colors, track_color, track_colors

CAR, PERSON, ROAD, SKY = 13, 11, 0, 10


def make_frame(height: int = 48, width: int = 64, *, car_track: int = 7) -> PanopticFrame:
    """Sky over road, a car (rows 20..34, cols 10..39) and a person (rows 2..17, cols 45..54), void corner."""
    sem = np.full((height, width), ROAD, np.int32)
    sem[: height // 3] = SKY
    inst = np.zeros((height, width), np.int32)
    sem[20:35, 10:40] = CAR
    inst[20:35, 10:40] = car_track
    sem[2:18, 45:55] = PERSON
    inst[2:18, 45:55] = 3
    sem[-3:, -3:] = KITTI_STEP.void_id
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PanopticFrame.from_labels(Frame(0, 0, 0.0, 0.0, image), sem, inst, KITTI_STEP)


def blend(image: np.ndarray, color, alpha: float) -> np.ndarray:
    return image.astype(np.float64) * (1 - alpha) + np.asarray(color, np.float64) * alpha


# ------------------------------------------------------------------ track colours
def test_track_color_matches_golden_ratio_hsv():
    for tid in [0, 1, 2, 3, 17, 255, 65535, 10**6]:
        tier = tid % 3
        sat, val = (0.85, 0.65, 1.0)[tier], (0.95, 1.0, 0.75)[tier]
        ref = colorsys.hsv_to_rgb((tid * 0.6180339887498949) % 1.0, sat, val)
        assert np.abs(np.array(track_color(tid)) - np.array(ref) * 255).max() <= 0.5 + 1e-6


def test_track_color_is_deterministic_across_processes():
    ids = [1, 2, 3, 42, 1000]
    here = [track_color(i) for i in ids]
    code = f"from vpanoptic.viz import track_color; print([track_color(i) for i in {ids}])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == str(here)
    assert here == [track_color(i) for i in ids]
    assert all(isinstance(c, int) and 0 <= c <= 255 for rgb in here for c in rgb)


def test_track_colors_are_distinct():
    colors = track_colors(np.arange(1, 201)).astype(np.int64)  # [200, 3]
    assert colors.shape == (200, 3) and track_colors(np.arange(3)).dtype == np.uint8
    assert len({tuple(c) for c in colors.tolist()}) == 200
    # Consecutive ids (which usually coexist) are far apart.
    step = np.abs(np.diff(colors, axis=0)).sum(axis=1)
    assert step.min() > 60
    # Among the first 20 ids every pair differs clearly.
    first = colors[:20]
    dist = np.abs(first[:, None] - first[None]).sum(-1) + np.eye(20, dtype=np.int64) * 1000
    assert dist.min() > 30
    assert [track_color(i) for i in range(1, 6)] == [tuple(c) for c in track_colors(np.arange(1, 6)).tolist()]


# ------------------------------------------------------------------------ overlay
def test_overlay_shape_dtype_and_input_untouched():
    pf = make_frame(47, 63)  # odd sizes
    before = pf.frame.image.copy()
    out = overlay(pf)
    assert out.shape == (47, 63, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(pf.frame.image, before)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_colors_blend_by_kind(alpha):
    pf = make_frame()
    image = pf.frame.image
    out = overlay(pf, alpha=alpha, labels=False, contours=False).astype(np.float64)
    car_color = track_color(7)
    # Tracked thing: its track colour.
    np.testing.assert_allclose(out[20:35, 10:40], blend(image[20:35, 10:40], car_color, alpha), atol=1)
    # Stuff: the category colour.
    sky = (slice(0, 16), slice(0, 40))
    np.testing.assert_allclose(out[sky], blend(image[sky], KITTI_STEP.category(SKY).color, alpha), atol=1)
    road = (slice(40, 45), slice(0, 60))
    np.testing.assert_allclose(out[road], blend(image[road], KITTI_STEP.category(ROAD).color, alpha), atol=1)
    # Void: the image itself.
    np.testing.assert_array_equal(out[-3:, -3:], image[-3:, -3:])


def test_untracked_thing_takes_category_color():
    pf = make_frame(car_track=0)
    assert pf.track_ids[pf.category_ids == CAR].tolist() == [-1]
    out = overlay(pf, alpha=1.0, labels=False, contours=False)
    assert tuple(out[25, 20]) == KITTI_STEP.category(CAR).color
    colors = segment_colors(pf)
    assert tuple(colors[pf.category_ids == PERSON][0]) == track_color(3)


def test_contours_outline_things_in_full_color():
    pf = make_frame()
    plain = overlay(pf, labels=False, contours=False)
    out = overlay(pf, labels=False, contours=True)
    changed = np.any(out != plain, axis=-1)
    expected = np.zeros(changed.shape, bool)
    for r0, r1, c0, c1 in [(20, 35, 10, 40), (2, 18, 45, 55)]:
        expected[r0:r1, c0:c1] = True
        expected[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = False
    # The border is the inner ring of each thing (pixels where the blend already equals
    # the full colour could be unchanged, hence the subset test and the count).
    assert not (changed & ~expected).any()
    assert changed.sum() >= 0.9 * expected.sum()
    assert tuple(out[20, 25]) == track_color(7)
    assert tuple(out[27, 10]) == track_color(7)


def test_labels_are_drawn_near_each_thing():
    pf = make_frame(96, 128)
    plain = overlay(pf, labels=False)
    out = overlay(pf, labels=True)
    changed = np.any(out != plain, axis=-1)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    # Text starts at the things' top-left corners (car at (10, 20), person at (45, 2)).
    assert changed[18:40, 8:60].any() and changed[0:20, 43:100].any()
    assert ys.max() < 45 and xs.min() >= 8
    # White text with a dark outline.
    assert (out[changed] >= 250).all(axis=-1).any() and (out[changed] <= 5).all(axis=-1).any()
    # No things, no labels.
    stuff_only = pf[~pf.is_thing]
    np.testing.assert_array_equal(overlay(stuff_only, labels=True), overlay(stuff_only, labels=False))


def test_overlay_edge_cases():
    pf = make_frame()
    empty = pf[np.zeros(len(pf), bool)]
    np.testing.assert_array_equal(overlay(empty), pf.frame.image)
    tensor_pf = PanopticFrame(
        frame=pf.frame,
        id_map=torch.from_numpy(pf.id_map),
        segment_ids=pf.segment_ids,
        category_ids=pf.category_ids,
        meta=pf.meta,
        track_ids=pf.track_ids,
    )
    np.testing.assert_array_equal(overlay(tensor_pf), overlay(pf))
    with pytest.raises(ValueError, match="alpha"):
        overlay(pf, alpha=1.5)


def test_large_segment_ids():
    pf = make_frame()
    big = (pf.segment_ids.astype(np.int64) * 1_000_003).astype(np.int32)
    lut = np.zeros(pf.segment_ids.max() + 1, np.int32)
    lut[pf.segment_ids] = big
    remapped = PanopticFrame(
        frame=pf.frame,
        id_map=lut[pf.id_map],
        segment_ids=big,
        category_ids=pf.category_ids,
        meta=pf.meta,
        track_ids=pf.track_ids,
    )
    np.testing.assert_array_equal(overlay(remapped), overlay(pf))


def test_small_things_get_no_label():
    sem = np.zeros((120, 160), int)
    inst = np.zeros((120, 160), int)
    sem[60:110, 10:90], inst[60:110, 10:90] = 13, 1  # big car, bottom left
    sem[5:8, 150:153], inst[5:8, 150:153] = 13, 2  # 9-pixel car, top right
    frame = Frame(0, 0, 0.0, 0.0, np.full((120, 160, 3), 90, np.uint8))
    pf = PanopticFrame.from_labels(frame, sem, inst, KITTI_STEP)
    plain = overlay(pf, labels=False)
    labelled = overlay(pf, labels=True, min_label_fraction=0.01)
    changed = np.any(labelled != plain, axis=2)
    assert changed[55:120, :100].any()  # the big car's label
    assert not changed[:40, 100:].any()  # nothing written near the tiny car
    every = overlay(pf, labels=True, min_label_fraction=0)
    assert np.any(every != plain, axis=2)[:40, 100:].any()


def distant_cars() -> PanopticFrame:
    """640×360: a big car in front and sixteen small cars (10×8) side by side on the horizon, 2 px apart."""
    sem = np.full((360, 640), ROAD, np.int32)
    sem[:150] = SKY
    inst = np.zeros((360, 640), np.int32)
    sem[220:340, 200:460], inst[220:340, 200:460] = CAR, 1
    for j in range(16):
        x = 150 + j * 10
        sem[150:160, x:x + 8], inst[150:160, x:x + 8] = CAR, 20 + j
    frame = Frame(0, 0, 0.0, 0.0, np.full((360, 640, 3), 90, np.uint8))
    return PanopticFrame.from_labels(frame, sem, inst, KITTI_STEP)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_nearby_small_things_do_not_overlap():
    pf = distant_cars()
    layout = label_layout(pf, min_label_fraction=0)
    # The scene is crowded: each label is wider than three cars.
    assert all(lab.box[2] - lab.box[0] > 30 for lab in layout)
    boxes = [lab.box for lab in layout]
    assert all(not _overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 for x0, y0, x1, y1 in boxes)
    # The big car comes first, at its top-left corner; some small cars still get a label
    # (inside, above or below their car), each beside its own car; the others none.
    big = int(np.flatnonzero(pf.track_ids == 1)[0])
    assert layout[0].segment == big and layout[0].text == "car 1" and layout[0].box[:2] == (200, 220)
    small = layout[1:]
    assert 2 <= len(small) < 16
    for lab in small:
        track = int(pf.track_ids[lab.segment])
        assert lab.text == f"car {track}"
        car_x = 150 + (track - 20) * 10
        assert lab.box[0] <= car_x + 8 and lab.box[2] >= car_x  # overlaps its car's columns
        assert lab.box[3] >= 150 and lab.box[1] <= 160  # touches its car's rows
    # Drawing stays inside the boxes of the layout.
    changed = np.any(overlay(pf, min_label_fraction=0) != overlay(pf, labels=False), axis=2)
    inside = np.zeros_like(changed)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert changed.any() and not (changed & ~inside).any()
    for x0, y0, x1, y1 in boxes:
        assert changed[y0:y1, x0:x1].any()


def test_label_layout_edge_cases():
    pf = distant_cars()
    assert label_layout(pf[~pf.is_thing]) == []
    assert label_layout(pf[np.zeros(len(pf), bool)]) == []
    # The default size threshold (0.1 % of the frame) leaves the 80-pixel distant cars out.
    assert [lab.text for lab in label_layout(pf)] == ["car 1"]
    tiny = make_frame(12, 16)  # a label larger than the frame is not drawn
    assert label_layout(tiny, min_label_fraction=0) == []
