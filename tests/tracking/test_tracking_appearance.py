import inspect

import numpy as np
import pytest
import torch

from vpanoptic.config import TrackerConfig
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.errors import ConfigError
from vpanoptic.tracking import HungarianTracker
from vpanoptic.tracking.appearance import AppearanceCue
from vpanoptic.types import Frame, PanopticFrame

H, W = 60, 60
PERSON, ROAD = 11, 0
RED, BLUE, GREY = (200, 30, 30), (30, 40, 200), (128, 128, 128)


def frame_with(objects, t, index, with_image=True):
    """objects: list of (label, colour, (y0, y1, x0, x1)) persons on a grey road."""
    sem = np.full((H, W), ROAD)
    inst = np.zeros((H, W), int)
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = GREY
    for label, colour, (y0, y1, x0, x1) in objects:
        sem[y0:y1, x0:x1] = PERSON
        inst[y0:y1, x0:x1] = label
        img[y0:y1, x0:x1] = colour
    f = Frame(index, index, t, 0.0, img if with_image else np.zeros_like(img))
    pf = PanopticFrame.from_labels(f, sem, inst, KITTI_STEP)
    pf.gt = pf.track_ids.copy()
    pf.track_ids[:] = -1
    return pf


def crossing_clip(with_image=True):
    """Red (1) and blue (2) people side by side; a frame where the model misses both; then both
    reappear between the old positions, red nearer blue's old place and vice versa (by
    position alone, the pairing that swaps the ids is the closer one; no mask overlaps enough
    for an IoU match)."""
    side = [(1, RED, (20, 40, 0, 20)), (2, BLUE, (20, 40, 24, 44))]
    after = [(1, RED, (10, 30, 13, 33)), (2, BLUE, (30, 50, 11, 31))]
    frames = [side, side, [], after, after]
    return [frame_with(objs, 0.1 * k, k, with_image) for k, objs in enumerate(frames)]


def run(tracker, clip):
    out = []
    for pf in clip:
        res = tracker.update(pf)
        out.append({int(g): int(t) for g, t in zip(res.gt, res.track_ids) if g > 0})
    return out


OFF = {"appearance_weight": 0.0, "appearance_gate": 0.0, "reid_distance": 0.0}


def make(**kw):
    """A tracker without motion (the clips are hand-made), the colour cue off unless asked for."""
    return HungarianTracker(motion_prediction=False, camera_motion=False, **{**OFF, **kw})


def test_colour_keeps_ids_of_crossing_objects_through_a_missed_frame():
    swapped = run(make(), crossing_clip())
    assert swapped[3] == {1: swapped[0][2], 2: swapped[0][1]}  # position alone swaps them
    kept = run(make(appearance_weight=0.5), crossing_clip())
    assert kept[3] == kept[0] and kept[4] == kept[0]
    coarse = run(make(appearance_weight=0.5, max_pixels=1000), crossing_clip())  # association grid stride 2
    assert coarse[3] == coarse[0]
    default = run(HungarianTracker(motion_prediction=False, camera_motion=False), crossing_clip())
    assert default[3] == default[0]  # the cue is on by default
    defaults = inspect.signature(HungarianTracker).parameters
    for key in ("appearance_weight", "appearance_scale", "appearance_gate", "appearance_smoothing", "reid_distance", "reid_colour"):
        assert getattr(TrackerConfig(), key) == defaults[key].default, key


def test_gate_forbids_pairs_of_different_colour():
    ids = run(make(appearance_gate=20.0, max_center_distance=0.0), crossing_clip())
    # no pair is close enough in colour and overlap: both reappear with new ids, never swapped
    assert set(ids[3].values()).isdisjoint(ids[0].values())


def test_without_images_the_cue_is_off_and_results_are_unchanged():
    off = run(make(), crossing_clip(with_image=False))
    on = run(make(appearance_weight=0.5, appearance_gate=5.0), crossing_clip(with_image=False))
    assert on == off
    tracker = make(appearance_weight=0.5)
    run(tracker, crossing_clip(with_image=False))
    assert np.isnan(tracker._tracks.colour).all()  # no colour learnt from a placeholder image


def test_weight_zero_reads_no_pixels_and_changes_nothing():
    assert run(make(appearance_weight=0.0), crossing_clip()) == run(make(), crossing_clip())
    tracker = make()
    run(tracker, crossing_clip())
    assert np.isnan(tracker._tracks.colour).all()


def test_mean_colours_are_lab_of_the_segment_pixels():
    cue = AppearanceCue(weight=1.0)
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :3] = RED
    img[:, 3:] = (255, 255, 255)
    labels = torch.tensor([[1] * 3 + [2] * 3] * 4).reshape(-1)
    fg = torch.nonzero(labels).squeeze(1)
    lab = cue.colours(img, 1, fg // 6, fg % 6, labels[fg], 2, (4, 6))
    assert lab[1] == pytest.approx([100.0, 0.0, 0.0], abs=0.5)  # white
    assert lab[0, 1] > 40  # red: large positive a*
    # stride 2: grid pixel (r, c) reads image pixel (2r, 2c)
    grid = torch.tensor([[1, 1, 2]] * 2).reshape(-1)  # image columns 0, 2 (red) and 4 (white)
    lab2 = cue.colours(img, 2, torch.arange(6) // 3, torch.arange(6) % 3, grid, 2, (4, 6))
    assert lab2[0] == pytest.approx(lab[0], abs=1e-3) and lab2[1] == pytest.approx(lab[1], abs=1e-3)
    # an image tensor takes the torch path: the same colours
    assert np.array_equal(cue.colours(torch.from_numpy(img), 1, fg // 6, fg % 6, labels[fg], 2, (4, 6)), lab)
    # an image of another size than the id map, or none: unknown colours
    assert np.isnan(cue.colours(img[:2], 1, fg // 6, fg % 6, labels[fg], 2, (4, 6))).all()
    assert np.isnan(cue.colours(None, 1, fg // 6, fg % 6, labels[fg], 2, (4, 6))).all()
    # offline re-tracking passes a zero image broadcast from one pixel; an all-black one is no better
    placeholder = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (4, 6, 3))
    assert np.isnan(cue.colours(placeholder, 1, fg // 6, fg % 6, labels[fg], 2, (4, 6))).all()
    assert np.isnan(cue.colours(np.zeros_like(img), 1, fg // 6, fg % 6, labels[fg], 2, (4, 6))).all()

def test_bad_appearance_options_are_rejected():
    with pytest.raises(ValueError, match="appearance"):
        HungarianTracker(appearance_weight=-1.0)
    with pytest.raises(ValueError, match="appearance_smoothing"):
        HungarianTracker(appearance_smoothing=0.0)
    with pytest.raises(ConfigError, match="appearance_scale"):
        TrackerConfig(appearance_scale=0.0)


def jump_clip(with_image=True):
    """A red person jumps 2.5 sizes between frames (a low frame rate); a blue newcomer
    appears nearer to the red one's old place."""
    before = [(1, RED, (20, 30, 0, 10))]
    after = [(1, RED, (20, 30, 25, 35)), (2, BLUE, (32, 42, 8, 18))]
    return [frame_with(objs, 0.3 * k, k, with_image) for k, objs in enumerate([before, before, after])]


def test_reid_pass_matches_a_far_jump_by_colour_only():
    plain = run(make(), jump_clip())
    assert plain[2][1] != plain[0][1]  # too far for IoU and the centre pass: a new id
    ids = run(make(reid_distance=3.0, reid_colour=8.0), jump_clip())
    assert ids[2][1] == ids[0][1] and ids[2][2] != ids[0][1]
    # without pixels the pass is off
    blind = run(make(reid_distance=3.0), jump_clip(with_image=False))
    assert blind == run(make(), jump_clip(with_image=False))


def test_reid_finds_an_object_that_walked_on_behind_an_occluder():
    """A red person (6 x 6 px) walks right at 25 px/s, is hidden for 1.2 s (longer than the
    prediction runs, `max_predict_seconds` 0.5) and reappears where constant velocity puts
    it: more than reid_distance object sizes beyond where the prediction stopped."""

    def at(t, index, visible=True):
        x0 = int(round(2 + 25 * t))
        return frame_with([(1, RED, (25, 31, x0, x0 + 6))] if visible else [], t, index)

    times = [0.1 * k for k in range(17)] + [1.7, 1.8]
    clip = [at(t, k, visible=not 0.45 < t < 1.65) for k, t in enumerate(times)]
    tracker = HungarianTracker(camera_motion=False, max_lost_seconds=1.5)
    ids = run(tracker, clip)
    assert ids[0] and ids[-1] == ids[0] and ids[-2] == ids[0]
    stopped = 25 * (0.4 + tracker.max_predict_seconds)  # where the prediction stops
    assert (25 * 1.7 - stopped) / 6 > tracker._app.reid_radius


@pytest.mark.parametrize("reid_area_ratio, kept", [(8.0, True), (4.0, False)])
def test_reid_follows_a_near_object_that_grew_between_frames(reid_area_ratio, kept):
    """A red car seen twice at 6 x 6 px, then (a low frame rate, the camera driving on) at
    14 x 14 px 1.3 object sizes away: no overlap, beyond the centre pass, 5.4 times the area."""
    small, big = (1, RED, (20, 26, 10, 16)), (1, RED, (16, 30, 24, 38))
    clip = [frame_with([small], 0.0, 0), frame_with([small], 0.33, 1), frame_with([big], 0.67, 2)]
    ids = run(HungarianTracker(camera_motion=False, reid_area_ratio=reid_area_ratio), clip)
    assert (ids[2][1] == ids[0][1]) == kept
