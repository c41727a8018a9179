import inspect

import numpy as np
import pytest
import torch

from vpanoptic.config import TrackerConfig
from vpanoptic.datasets import KITTI_STEP
from vpanoptic.errors import ConfigError
from vpanoptic.tracking import HungarianTracker
from vpanoptic.tracking.appearance import AppearanceCue, _interior
from vpanoptic.tracking.features import grid_things
from vpanoptic.types import Frame, PanopticFrame

H, W = 60, 60
PERSON, ROAD = 11, 0
RED, BLUE, GREY, GREEN = (200, 30, 30), (30, 40, 200), (128, 128, 128), (20, 160, 20)


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
    for key in ("appearance_weight", "appearance_scale", "appearance_gate", "appearance_smoothing", "histogram_bits",
                "reid_distance", "reid_colour"):
        assert getattr(TrackerConfig(), key) == defaults[key].default, key


def test_gate_forbids_pairs_of_different_colour():
    ids = run(make(appearance_gate=0.5, max_center_distance=0.0), crossing_clip())
    # no pair is close enough in colour and overlap: both reappear with new ids, never swapped
    assert set(ids[3].values()).isdisjoint(ids[0].values())


def test_without_images_the_cue_is_off_and_results_are_unchanged():
    off = run(make(), crossing_clip(with_image=False))
    on = run(make(appearance_weight=0.5, appearance_gate=0.1), crossing_clip(with_image=False))
    assert on == off
    tracker = make(appearance_weight=0.5)
    run(tracker, crossing_clip(with_image=False))
    assert tracker._tracks.histogram.shape == (2, 512)
    assert not tracker._tracks.histogram.any()  # no colour learnt from a placeholder image


def test_weight_zero_reads_no_pixels_and_changes_nothing():
    assert run(make(appearance_weight=0.0), crossing_clip()) == run(make(), crossing_clip())
    tracker = make()
    run(tracker, crossing_clip())
    assert tracker._tracks.histogram.shape == (2, 0)  # the cue is off: no histograms at all


def test_histograms_count_the_colours_of_the_segment_pixels():
    # two levels per channel: 8 bins, index r 4 + g 2 + b; every pixel alike (boundary too)
    cue = AppearanceCue(weight=1.0, bits=1, boundary_weight=1.0)
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :3] = RED  # (200, 30, 30): bin 4
    img[:, 3:] = (255, 255, 255)  # bin 7
    img[0, 2] = BLUE  # (30, 40, 200): bin 1
    id_map = torch.tensor([[1] * 3 + [2] * 3] * 4, dtype=torch.int32)
    things = grid_things(id_map, 1, np.array([1, 2]))
    hist = cue.histograms(img, 1, things, (4, 6))
    assert hist.shape == (2, 8) and hist.dtype == np.float32
    assert hist[0] == pytest.approx([0, 1 / 12, 0, 0, 11 / 12, 0, 0, 0])  # shares of the 12 pixels
    assert hist[1] == pytest.approx([0, 0, 0, 0, 0, 0, 0, 1])
    # stride 2: grid pixel (r, c) reads image pixel (2r, 2c): image columns 0, 2 and 4; (0, 2) is blue
    hist2 = cue.histograms(img, 2, grid_things(id_map, 2, np.array([1, 2])), (4, 6))
    assert hist2[0] == pytest.approx([0, 0.25, 0, 0, 0.75, 0, 0, 0]) and hist2[1] == pytest.approx(hist[1])
    # an image tensor takes the torch path: the same histograms
    assert np.array_equal(cue.histograms(torch.from_numpy(img), 1, things, (4, 6)), hist)
    # colour distance 1 - Bhattacharyya overlap: 0 for the same colours, 1 for none in common
    roots = np.sqrt(hist)
    d = cue.distance(roots, hist)
    assert d[0, 0] == pytest.approx(0.0, abs=1e-6) and d[0, 1] == pytest.approx(1.0)
    pure_red = np.eye(8, dtype=np.float32)[[4]]
    assert cue.distance(pure_red, hist)[0, 0] == pytest.approx(1 - np.sqrt(11 / 12))
    # an image of another size than the id map, or none: unknown (zero rows), at no cost or gate
    for image in (img[:2], None):
        assert not cue.histograms(image, 1, things, (4, 6)).any()
    # offline re-tracking passes a zero image broadcast from one pixel; an all-black one is no better
    placeholder = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (4, 6, 3))
    assert not cue.histograms(placeholder, 1, things, (4, 6)).any()
    assert not cue.histograms(np.zeros_like(img), 1, things, (4, 6)).any()
    unknown = cue.distance(roots, np.zeros_like(hist))
    assert np.isnan(unknown).all()
    gated = AppearanceCue(weight=1.0, gate=0.5, bits=1)
    term, allowed = gated.cost(unknown)
    assert not term.any() and allowed.all()
    term, allowed = gated.cost(d)
    assert allowed.tolist() == [[True, False], [False, True]] and term[0, 1] == pytest.approx(1.0)


def test_boundary_pixels_count_less_in_histograms():
    """A 6x6 red thing whose boundary ring took in blue background, and a 2x2 green square
    with no interior pixel: the ring counts `boundary_weight`; the square is read whole."""
    shape = (8, 10)
    img = np.zeros((*shape, 3), np.uint8)
    ids = np.zeros(shape, np.int32)
    ids[1:7, 1:7], img[1:7, 1:7] = 5, BLUE  # the thing, ring included (20 pixels)
    img[2:6, 2:6] = RED  # its 4x4 interior
    ids[0:2, 8:10], img[0:2, 8:10] = 9, (0, 200, 0)  # no pixel with all four neighbours inside
    things = grid_things(torch.from_numpy(ids), 1, np.array([5, 9]))
    red, blue, green = np.eye(8)[4], np.eye(8)[1], np.eye(8)[2]
    for w, share in ((1.0, 16 / 36), (0.25, 16 / 21), (0.0, 1.0)):
        hist = AppearanceCue(weight=1.0, bits=1, boundary_weight=w).histograms(img, 1, things, shape)
        assert hist[0] == pytest.approx(share * red + (1 - share) * blue), w
        assert hist[1] == pytest.approx(green), w  # read whole at any weight
        # the image tensor (torch) path gives the same
        assert AppearanceCue(weight=1.0, bits=1, boundary_weight=w).histograms(
            torch.from_numpy(img), 1, things, shape
        ) == pytest.approx(hist)
    # which pixels are interior: NumPy on the CPU, torch elsewhere, the same answer
    label_map = things.labels.clone()
    cpu = _interior(label_map, things.width + 2, things.index)

    class Elsewhere:  # the same tensors, reporting another device: the torch branch
        def __getattr__(self, name):
            return getattr(label_map, name)

        device = torch.device("meta")

    assert torch.equal(cpu, _interior(Elsewhere(), things.width + 2, things.index))
    assert int(cpu.sum()) == 16 and not cpu[things.label == 2].any()
    with pytest.raises(ValueError, match="colour_boundary_weight"):
        HungarianTracker(colour_boundary_weight=1.5)
    with pytest.raises(ConfigError, match="colour_boundary_weight"):
        TrackerConfig(colour_boundary_weight=-0.1)


def test_track_histograms_are_moving_averages():
    cue = AppearanceCue(weight=1.0, smoothing=0.25, bits=1)
    old = np.array([[1, 0, 0, 0, 0, 0, 0, 0], [0] * 8, [0, 1, 0, 0, 0, 0, 0, 0]], np.float32)
    new = np.array([[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0], [0] * 8], np.float32)
    hist, roots = cue.blend(old, new)
    assert hist[0].tolist() == [0.75, 0.25, 0, 0, 0, 0, 0, 0]
    assert hist[1].tolist() == new[1].tolist()  # a track never seen with pixels takes the new one
    assert hist[2].tolist() == old[2].tolist()  # an unknown observation changes nothing
    assert roots == pytest.approx(np.sqrt(hist))


def test_histograms_tell_apart_objects_of_the_same_mean_colour():
    """Half red, half green vs. all olive (the same mean colour): far apart by histogram."""
    cue = AppearanceCue(weight=1.0, bits=3)
    img = np.zeros((4, 8, 3), np.uint8)
    img[:2, :4], img[2:, :4] = (200, 0, 0), (0, 200, 0)
    img[:, 4:] = (100, 100, 0)
    things = grid_things(torch.tensor([[1] * 4 + [2] * 4] * 4, dtype=torch.int32), 1, np.array([1, 2]))
    hist = cue.histograms(img, 1, things, (4, 8))
    assert img[:, :4].reshape(-1, 3).mean(0).tolist() == img[:, 4:].reshape(-1, 3).mean(0).tolist()
    assert cue.distance(np.sqrt(hist[:1]), hist[1:])[0, 0] == pytest.approx(1.0)


def test_bad_appearance_options_are_rejected():
    with pytest.raises(ValueError, match="appearance"):
        HungarianTracker(appearance_weight=-1.0)
    with pytest.raises(ValueError, match="appearance_smoothing"):
        HungarianTracker(appearance_smoothing=0.0)
    with pytest.raises(ValueError, match="appearance_gate is 25.0; expected a colour distance"):
        HungarianTracker(appearance_gate=25.0)  # a ΔE from before histograms
    with pytest.raises(ValueError, match="histogram_bits"):
        HungarianTracker(histogram_bits=0)
    with pytest.raises(ConfigError, match="appearance_scale"):
        TrackerConfig(appearance_scale=0.0)
    with pytest.raises(ConfigError, match="reid_colour is 8.0"):
        TrackerConfig(reid_colour=8.0)
    with pytest.raises(ConfigError, match="histogram_bits"):
        TrackerConfig(histogram_bits=5)


def jump_clip(with_image=True):
    """A red person jumps 2.5 sizes between frames (a low frame rate); a blue newcomer
    appears nearer to the red one's old place."""
    before = [(1, RED, (20, 30, 0, 10))]
    after = [(1, RED, (20, 30, 25, 35)), (2, BLUE, (32, 42, 8, 18))]
    return [frame_with(objs, 0.3 * k, k, with_image) for k, objs in enumerate([before, before, after])]


def test_reid_pass_matches_a_far_jump_by_colour_only():
    plain = run(make(), jump_clip())
    assert plain[2][1] != plain[0][1]  # too far for IoU and the centre pass: a new id
    ids = run(make(reid_distance=3.0, reid_colour=0.3), jump_clip())
    assert ids[2][1] == ids[0][1] and ids[2][2] != ids[0][1]
    # without pixels the pass is off
    blind = run(make(reid_distance=3.0), jump_clip(with_image=False))
    assert blind == run(make(), jump_clip(with_image=False))


def test_reid_takes_only_confident_segments():
    """A low-score segment (most are false positives) is not re-identified by colour at a
    distance: the red one's track is not spread over it; confident, it is."""
    def clip(score):
        frames = jump_clip()
        frames[2].scores[frames[2].gt == 1] = score
        return frames

    tracker = make(reid_distance=3.0, reid_colour=0.3)
    confident = run(tracker, clip(0.9))
    assert confident[2][1] == confident[0][1]
    tracker.reset()
    weak = run(tracker, clip(0.2))
    assert weak[2][1] != weak[0][1] and weak[2][1] not in (weak[0][1], weak[2][2])
    # without the low-score pass every segment counts as confident
    assert run(make(reid_distance=3.0, reid_colour=0.3, low_score_pass=False), clip(0.2)) == confident


def test_reid_finds_an_object_that_walked_on_behind_an_occluder():
    """A red person (6 x 6 px) walks right at 25 px/s, is hidden for 1.2 s (longer than the
    prediction runs, `max_predict_seconds` 0.5) and reappears where constant velocity puts
    it: more than reid_distance object sizes beyond where the prediction stopped."""

    def at(t, index, visible=True):
        x0 = int(round(2 + 25 * t))
        return frame_with([(1, RED, (25, 31, x0, x0 + 6))] if visible else [], t, index)

    times = [0.1 * k for k in range(17)] + [1.7, 1.8]
    clip = [at(t, k, visible=not 0.45 < t < 1.65) for k, t in enumerate(times)]
    tracker = HungarianTracker(camera_motion=False, max_lost_seconds=1.5, reid_distance=3.0)
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


@pytest.mark.parametrize("full_area_seconds, kept", [(2.0, True), (0.0, False)])
def test_reid_finds_an_object_back_at_full_size_after_it_shrank_behind_an_occluder(full_area_seconds, kept):
    """A red person (16 x 16 px) is cut from the right by an occluder over three frames down
    to a 1 px sliver (its centre moves left as it shrinks), is hidden for two frames and
    comes back whole 1.5 sizes to the right: no overlap, beyond the centre pass, 16 times the
    sliver's area (more than reid_area_ratio 8) but the area it had before the occluder."""
    def person(x0, x1):
        return [(1, RED, (20, 36, x0, x1))]

    frames = [person(10, 26)] * 3 + [person(10, 22), person(10, 16), person(10, 11), [], []] + [person(34, 50)] * 2
    clip = [frame_with(objs, 0.1 * k, k) for k, objs in enumerate(frames)]
    tracker = HungarianTracker(camera_motion=False, full_area_seconds=full_area_seconds)
    ids = run(tracker, clip)
    assert ids[5][1] == ids[0][1]  # the sliver still continues the track by overlap
    assert (ids[8][1] == ids[0][1]) == kept and (ids[9][1] == ids[0][1]) == kept
    assert tracker.reid_area_ratio < 16


@pytest.mark.parametrize("reentry_distance, kept", [(2.0, True), (0.0, False)])
def test_a_person_who_stepped_out_of_view_and_back_keeps_the_id(reentry_distance, kept):
    """A red person walks out at the right border (gone for two frames) and steps back in
    where they left: their departed track takes them back (colour, border, 2 object sizes).
    A blue newcomer entering at the same place later is not taken for them."""
    def person(x0, colour=RED, label=1):
        return [(label, colour, (20, 36, x0, min(x0 + 10, W)))]

    frames = [person(x) for x in (38, 44, 50, 56)] + [[], []] + [person(52), person(50)]
    clip = [frame_with(objs, 0.1 * k, k) for k, objs in enumerate(frames)]
    tracker = HungarianTracker(camera_motion=False, reentry_distance=reentry_distance)
    ids = run(tracker, clip)
    assert (ids[6][1] == ids[0][1]) == kept and ids[7][1] == ids[6][1]
    tracker.reset()
    stranger = [frame_with(objs, 0.1 * k, k) for k, objs in enumerate(frames[:6] + [person(52, BLUE, 2)])]
    ids = run(tracker, stranger)
    assert ids[6][2] != ids[0][1]


@pytest.mark.parametrize("takeover_hits", [3, 0])
def test_a_young_track_hands_a_returning_object_back_to_its_old_track(takeover_hits):
    """A person (red over blue) is seen 4 times, hidden for 2 frames, and comes back 20 px to
    the right first as a sliver that is half another colour (too unlike it for the
    re-identification pass: a new track), then whole, where the sliver's track matches it by
    IoU. The young track hands the person back to the old one and retires."""
    whole = [(1, RED, (20, 36, 10, 20)), (1, BLUE, (36, 40, 10, 20))]
    sliver = [(1, RED, (20, 28, 30, 36)), (1, GREEN, (28, 40, 30, 36))]  # 40 % red, 60 % green
    back = [(1, RED, (20, 36, 30, 40)), (1, BLUE, (36, 40, 30, 40))]
    frames = [whole] * 4 + [[], [], sliver, back, back]
    clip = [frame_with(objs, 0.1 * k, k) for k, objs in enumerate(frames)]
    tracker = make(appearance_weight=0.5, appearance_gate=0.5, reid_distance=6.0, takeover_hits=takeover_hits)
    ids = []
    for pf in clip:
        ids.append(run(tracker, [pf])[0])
        if len(ids) == 8:
            tracks_after_takeover = tracker.num_tracks
    assert ids[6][1] != ids[0][1]  # the sliver: a new track
    if takeover_hits:
        assert ids[7][1] == ids[8][1] == ids[0][1]
        assert tracks_after_takeover == 1  # the young track retired at once
    else:
        assert ids[7][1] == ids[8][1] == ids[6][1]
        assert tracks_after_takeover == 2
