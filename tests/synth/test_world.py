"""Tests of the synthetic street world: determinism, exact labels, stable ids, scenarios."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from vpanoptic.errors import ConfigError, UserError
from vpanoptic.synth import (
    KITTI_MIN_HEIGHT,
    SCENARIOS,
    SceneConfig,
    SynthFrame,
    crowd_small_instances,
    default_min_height,
    generate,
)
from vpanoptic.synth.world import IdBook, World

SIZE = (160, 96)                       # (width, height): small frames keep the tests fast
USED = {0, 1, 2, 5, 8, 10, 11, 13}     # road, sidewalk, building, pole, vegetation, sky, person, car
THINGS = [11, 13]
PERSON, CAR = 11, 13


def run(scenario="street", n=10, seed=0, size=SIZE, fps=None) -> list[SynthFrame]:
    """The world itself: every object an instance (no crowd rule; `test_crowd_rule_*` test that)."""
    return list(generate(seed, n, size=size, fps=fps, scenario=scenario, min_instance_height=0))


def boxes(frame: SynthFrame, cls: int | None = None, min_px: int = 1) -> dict[int, tuple]:
    """id -> (pixel count, centroid x, centroid y, bbox width, bbox height) of each thing."""
    out = {}
    for i in np.unique(frame.instance[frame.instance > 0]):
        mask = frame.instance == i
        if cls is not None and frame.semantic[mask][0] != cls:
            continue
        ys, xs = np.nonzero(mask)
        if len(xs) >= min_px:
            out[int(i)] = (len(xs), xs.mean(), ys.mean(), np.ptp(xs) + 1, np.ptp(ys) + 1)
    return out


@pytest.fixture(scope="module")
def street() -> list[SynthFrame]:
    return run("street", n=120, seed=3, fps=20.0)    # 6 s at 20 fps


# ------------------------------------------------------------------ determinism, frames
def test_same_seed_gives_identical_frames_and_other_seeds_differ():
    np.random.seed(1)                               # global RNG state must not matter
    a = run(n=4, seed=7)
    np.random.seed(2)
    b = run(n=4, seed=7)
    c = run(n=4, seed=8)
    for fa, fb, fc in zip(a, b, c):
        assert np.array_equal(fa.image, fb.image)
        assert np.array_equal(fa.semantic, fb.semantic) and np.array_equal(fa.instance, fb.instance)
        assert not np.array_equal(fa.image, fc.image)
        assert not np.array_equal(fa.semantic, fc.semantic)


def test_frames_have_index_time_shapes_and_dtypes():
    frames = run(n=3, fps=4.0, size=(96, 64))
    for i, f in enumerate(frames):
        assert f.index == i and f.time == pytest.approx(i / 4.0)
        assert f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8
        assert f.semantic.shape == f.instance.shape == (64, 96)
        assert f.semantic.dtype == f.instance.dtype == np.int32


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_labels_are_valid_in_every_scenario(scenario):
    for f in run(scenario, n=3, size=(128, 72), fps=2.0):
        assert set(np.unique(f.semantic).tolist()) <= USED                 # every pixel labelled, no void
        assert np.array_equal(f.instance > 0, np.isin(f.semantic, THINGS))
        for i in np.unique(f.instance[f.instance > 0]):                  # an id has a single class
            assert np.unique(f.semantic[f.instance == i]).size == 1


def test_images_are_not_a_color_lookup_of_the_labels(street):
    f = street[50]
    sky = f.image[f.semantic == 10].astype(float)
    road = f.image[f.semantic == 0].astype(float)
    assert road.std(axis=0).mean() > 3                                   # texture and shading
    assert np.abs(sky.mean(axis=0) - road.mean(axis=0)).max() > 20
    car_means = [f.image[f.instance == i].reshape(-1, 3).mean(axis=0)
                 for f in street[::20] for i in boxes(f, CAR, min_px=30)]
    assert len(car_means) >= 5
    assert np.std(car_means, axis=0).max() > 25                          # cars of many colours
    assert not np.array_equal(street[0].image, street[1].image)          # the camera moves


def test_stuff_occludes_things_and_things_occlude_each_other(street):
    # Sidewalk people pass behind poles and trees; cars pass behind each other: the pixel
    # count of some things falls while they stay in view and their id persists.
    seen = {}
    for f in street:
        for i, b in boxes(f).items():
            seen.setdefault(i, []).append((f.index, b[0]))
    dips = [i for i, hist in seen.items() if len(hist) >= 5 and
            any(0 < c < 0.5 * max(p for _, p in hist[:k]) and c < 0.5 * max(p for _, p in hist[k + 1:] or [0])
                for k, (_, c) in enumerate(hist[1:-1], start=1))]
    assert len(dips) >= 2


# ------------------------------------------------------------------ ids
def test_ids_persist_and_move_smoothly(street):
    steps, kept, big = 0, 0, 0
    for a, b in zip(street, street[1:]):
        pa, pb = boxes(a, min_px=40), boxes(b)
        big += len(pa)
        kept += len(pa.keys() & pb.keys())                               # still there one frame later
        for i in pa.keys() & pb.keys():
            (na, xa, ya, _, _), (nb, xb, yb, wb, hb) = pa[i], pb[i]
            if 0.8 < nb / na < 1.25:                                     # not being occluded
                steps += 1
                assert math.hypot(xb - xa, yb - ya) < 0.5 * max(wb, hb), (i, a.index)
    assert steps > 100 and kept >= 0.9 * big


def test_objects_enter_and_leave(street):
    first, last = set(boxes(street[0])), set(boxes(street[-1]))
    assert len(first - last) >= 3 and len(last - first) >= 3
    present = [set(boxes(f)) for f in street]
    entered = [i for i in last - first if not any(i in p for p in present[:10])]
    assert entered                                                       # new ids appear mid-sequence
    assert max(max(p) for p in present if p) > len(first)


def test_world_ids_are_unique_and_never_reused():
    world = World(5, SCENARIOS["street"])
    key_of, gone, alive = {}, set(), set()
    for t in np.arange(0, 30, 0.5):
        things = world.things(float(t))
        keys = {o.key for o in things}
        assert not keys & gone                                           # an object lives once
        gone |= alive - keys
        alive = keys
        for o in things:
            assert o.id >= 1 and key_of.setdefault(o.id, o.key) == o.key
    assert len(gone) > 20 and len(key_of) == len(set(key_of.values()))


def test_id_book():
    book = IdBook()
    assert book.assign([("a",), ("b",)]) == [1, 2]
    assert book.assign([("b",), ("c",)]) == [2, 3]
    assert book.assign([("a",)]) == [4]                                  # a forgotten key gets a new id
    book.reset()
    assert book.assign([("z",)]) == [1]


# ------------------------------------------------------------------ camera
def test_forward_motion_moves_roadside_points_outward_and_closer():
    world = World(0, replace(SCENARIOS["street"], pan_deg=0.0, shake_deg=0.0))
    point = np.array([world.kerbs[1] + 0.35, 2.0, 30.0])
    px = [world.camera(t, 640, 360).to_pixels(world.camera(t, 640, 360).to_camera(point)) for t in (0.0, 1.0, 2.0)]
    offsets = [abs(p[0] - 320) for p in px]
    assert offsets[0] < offsets[1] < offsets[2]


def test_pan_zoom_turns_and_zooms_the_camera():
    pz, st = World(0, SCENARIOS["pan_zoom"]), World(0, SCENARIOS["street"])
    cams = [pz.camera(t, 640, 360) for t in np.arange(0, 10, 0.1)]
    yaw = np.degrees([c.yaw for c in cams])
    focal = np.array([c.focal for c in cams])
    assert np.ptp(yaw) > 30 and focal.max() / focal.min() > 1.8
    assert np.ptp(np.degrees([st.camera(t, 640, 360).yaw for t in np.arange(0, 10, 0.1)])) < 10


# ------------------------------------------------------------------ scenarios
def test_low_fps_samples_the_same_world():
    street = run("street", n=21, seed=2)
    low = run("low_fps", n=7, seed=2)                                    # 3 fps by default
    assert low[1].time == pytest.approx(1 / 3)
    for i, j in ((10, 3), (20, 6)):
        assert np.array_equal(street[i].image, low[j].image)
        assert np.array_equal(street[i].semantic, low[j].semantic)
        pairs = set(zip(street[i].instance.ravel().tolist(), low[j].instance.ravel().tolist()))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})   # same partition


def test_occlusion_hides_a_person_for_about_a_second_then_it_returns():
    frames = run("occlusion", n=70, size=(192, 108))                     # 10 fps
    counts = {}
    for f in frames:
        for i, b in boxes(f, PERSON).items():
            counts.setdefault(i, {})[f.index] = b[0]
    gaps = [(i, b - a - 1) for i, c in counts.items() for a, b in zip(sorted(c), sorted(c)[1:]) if b - a > 1]
    long_gaps = [g for _, g in gaps if g >= 5]
    assert long_gaps and all(5 <= g <= 20 for g in long_gaps)            # 0.5 .. 2 s fully hidden


def test_crowd_has_thirty_people_at_once():
    counts = [len(boxes(f, PERSON)) for f in run("crowd", n=12, size=(320, 180))]
    assert max(counts) >= 30


def _motion_ratios(frames, cls):
    """Per step: bbox-centre displacement / bbox extent along the motion, for objects >= 20 px."""
    out = []
    for a, b in zip(frames, frames[1:]):
        pa, pb = boxes(a, cls, 20), boxes(b, cls, 20)
        for i in pa.keys() & pb.keys():
            (_, xa, ya, _, _), (_, xb, yb, wb, hb) = pa[i], pb[i]
            d = math.hypot(xb - xa, yb - ya)
            if d > 0:
                out.append(d / ((abs(xb - xa) * wb + abs(yb - ya) * hb) / d))
    return np.array(out)


def test_fast_moves_people_by_more_than_half_their_size_per_frame():
    fast = _motion_ratios(run("fast", n=30, size=(192, 108)), PERSON)
    walking = _motion_ratios(run("crossing", n=30, size=(192, 108)), PERSON)     # same camera, walkers
    assert len(fast) > 50 and np.mean(fast > 0.5) > 0.6
    assert len(walking) > 50 and np.mean(walking > 0.5) < 0.2


def test_crossing_paths_cross():
    # Pairs start from opposite kerbs at the same time: their x order swaps mid-road.
    world = World(1, SCENARIOS["crossing"])
    xs = {}
    for t in np.arange(0, 30, 0.5):
        for o in world.things(float(t)):
            if o.key[0] == "c":
                xs.setdefault(o.key[:3], {}).setdefault(o.key[3], []).append((t, o.x))
    swapped = 0
    for pair in xs.values():
        if len(pair) == 2:
            a, b = dict(pair[0]), dict(pair[1])
            common = sorted(a.keys() & b.keys())
            signs = {np.sign(a[t] - b[t]) for t in common}
            swapped += signs == {-1.0, 1.0}
    assert swapped >= 3


# ------------------------------------------------------------------ validation
def test_presets_are_scene_configs():
    assert set(SCENARIOS) == {"street", "crossing", "crowd", "fast", "occlusion", "pan_zoom", "low_fps"}
    assert all(isinstance(c, SceneConfig) for c in SCENARIOS.values())
    assert SCENARIOS["low_fps"].fps < SCENARIOS["street"].fps
    assert replace(SCENARIOS["low_fps"], fps=SCENARIOS["street"].fps) == SCENARIOS["street"]


@pytest.mark.parametrize("kwargs", [dict(cars=-1.0), dict(car_speed=(5.0, 1.0)), dict(hfov_deg=200.0),
                                    dict(zoom=0.5), dict(occlusion_events=True), dict(fps=0.0)])
def test_bad_scene_config_is_rejected(kwargs):
    with pytest.raises(ConfigError):
        SceneConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scenario="rush_hour"), "known: street, crossing"),
    (dict(frames=0), "frames"),
    (dict(fps=0.0), "fps"),
    (dict(size=(32, 96)), "size"),
    (dict(seed=1.5), "seed"),
    (dict(min_instance_height=-1), "min_instance_height"),
    (dict(min_instance_height=500), "min_instance_height"),
])
def test_generate_validates_before_the_first_frame(kwargs, match):
    args = dict(seed=0, frames=2, size=SIZE, scenario="street") | kwargs
    with pytest.raises(ConfigError, match=match) as info:
        generate(**args)                                                 # raises on the call itself
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_custom_config_is_accepted():
    config = replace(SCENARIOS["street"], cars=0.0, parked_cars=0.0, people=0.0, crossing_rate=0.0)
    frames = run(config, n=2)
    assert all(not (f.instance > 0).any() for f in frames)


def test_crowd_small_instances_uses_the_visible_height():
    inst = np.zeros((10, 12), np.int32)
    inst[1:4, 0:8] = 1          # 3 rows high, wide: crowd at min height 4
    inst[2:8, 9] = 2            # 6 rows high, one column: kept
    inst[5:9, 0:2] = 3          # 4 rows: kept (not lower than 4)
    out = crowd_small_instances(inst, 4)
    assert np.array_equal(out == 0, (inst == 0) | (inst == 1))
    assert np.array_equal(out[out > 0], inst[(inst > 0) & (inst != 1)])
    assert crowd_small_instances(inst, 0) is inst and inst[1, 0] == 1          # input never modified


def test_crowd_rule_default_is_kittis_and_keeps_classes():
    size = (320, 180)
    assert default_min_height(375) == 25 and default_min_height(180) == round(180 * KITTI_MIN_HEIGHT)
    raw = list(generate(3, 4, size=size, scenario="street", min_instance_height=0))
    kitti = list(generate(3, 4, size=size, scenario="street"))
    crowded = 0
    for a, b in zip(raw, kitti):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
        kept = b.instance > 0
        assert np.array_equal(b.instance[kept], a.instance[kept])                # ids unchanged
        for i in np.unique(a.instance[a.instance > 0]):
            rows = np.flatnonzero((a.instance == i).any(1))
            tall = rows[-1] - rows[0] + 1 >= default_min_height(size[1])
            assert bool((b.instance == i).any()) == tall
            crowded += not tall
    assert crowded > 0                                           # the street has distant objects
