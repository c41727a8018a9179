import numpy as np
import pytest

from vpanoptic.tracking import HungarianTracker
from vpanoptic.tracking.appearance import AppearanceCue
from vpanoptic.tracking.association import (
    AssociationParams,
    area_ratio,
    associate,
    centre_distance,
)
from vpanoptic.tracking.cost import FORBIDDEN
from vpanoptic.tracking.lifecycle import TrackTable

CAR, PERSON = 13, 11


def test_area_ratio_counts_tiny_areas_as_small_object_area():
    ratio = area_ratio(np.array([4.0, 100.0]), np.array([16.0, 400.0, 1.0]), small_object_area=16.0)
    np.testing.assert_allclose(ratio, [[1.0, 25.0, 1.0], [6.25, 4.0, 6.25]])


def test_centre_distance_is_in_object_sizes_and_forbids_non_finite():
    track_centre = np.array([[0.0, 0.0], [np.nan, 0.0]])
    dist = centre_distance(track_centre, np.array([100.0, 100.0]), np.array([[6.0, 8.0]]), np.array([25.0]), 16.0)
    assert dist[0, 0] == pytest.approx(10.0 / 10.0)  # 10 px apart, larger area 100 -> size 10
    assert dist[1, 0] == FORBIDDEN


def test_params_are_read_off_the_tracker():
    tracker = HungarianTracker(iou_threshold=0.4, lost_last=True, max_growth_ratio=0)
    params = AssociationParams.of(tracker)
    assert (params.iou_threshold, params.lost_last, params.max_growth_ratio) == (0.4, True, 0.0)
    with pytest.raises(AttributeError):
        params.iou_threshold = 0.5  # frozen


def _associate(tracker, tracks, categories, iou, areas, centroids, scores=None, contain=None, clipped=None,
               inside=None):
    t, m = iou.shape
    return associate(
        AssociationParams.of(tracker),
        AppearanceCue(),  # colour cue off
        tracks,
        now=1.0,
        prev_time=0.9,
        categories=np.asarray(categories, np.int64),
        scores=np.ones(m) if scores is None else np.asarray(scores, float),
        centroids=np.asarray(centroids, float),
        areas=np.asarray(areas, float),
        clipped=np.zeros(m, bool) if clipped is None else np.asarray(clipped, bool),
        hists=np.zeros((m, 0), np.float32),
        iou=iou,
        contain=np.zeros((t, m)) if contain is None else contain,
        inside=np.ones(t) if inside is None else np.asarray(inside, float),
        shift=np.zeros((t, 2)),
        scale=np.ones(t),
    )


def _tracks(categories, centroids, areas, now=0.9):
    tracks = TrackTable()
    tracks.add(np.asarray(categories), now, np.asarray(centroids, float), np.asarray(areas, float))
    return tracks


def test_iou_pass_is_gated_by_class_and_threshold():
    tracks = _tracks([CAR, PERSON, CAR], [[10, 10], [50, 50], [90, 90]], [100, 100, 100])
    iou = np.array([[0.1, 0.9, 0.0], [0.0, 0.0, 0.8], [0.0, 0.0, 0.0]])  # [T=3, M=3]
    # thing 0: car, only IoU 0.1 with track 0 (below 0.3); thing 1: car, IoU 0.9 with track 0;
    # thing 2: car, IoU 0.8 with track 1, a person; everything far apart (no centre pass)
    track_of, free_t, _ = _associate(
        HungarianTracker(), tracks, [CAR, CAR, CAR], iou, [100, 100, 100], [[200, 200], [10, 11], [300, 300]]
    )
    assert track_of.tolist() == [-1, 0, -1]
    assert free_t.tolist() == [False, True, True]


def test_low_score_segments_only_get_the_tracks_confident_ones_left():
    tracks = _tracks([CAR], [[10, 10]], [100])
    iou = np.array([[0.9, 0.5]])  # the low-score segment overlaps more
    track_of, _, _ = _associate(
        HungarianTracker(), tracks, [CAR, CAR], iou, [100, 100], [[10, 10], [11, 11]], scores=[0.2, 0.9]
    )
    assert track_of.tolist() == [-1, 0]


def test_centre_pass_catches_a_small_object_that_moved_past_its_size():
    tracks = _tracks([PERSON], [[10, 10]], [20])
    iou = np.zeros((1, 1))
    on = _associate(HungarianTracker(), tracks, [PERSON], iou, [20], [[10, 14]])[0]
    off = _associate(HungarianTracker(max_center_distance=0), tracks, [PERSON], iou, [20], [[10, 14]])[0]
    assert on.tolist() == [0] and off.tolist() == [-1]


def test_centre_pass_prefers_the_larger_of_two_segments_and_leaves_the_smaller_to_a_new_track():
    # 3 fps: a car seen once at the horizon; now it is 3x larger and 12 px on, and the next car
    # has appeared 4 px from where it was: the smaller segment is the likelier newcomer
    tracks = _tracks([CAR], [[100, 100]], [400])
    args = (tracks, [CAR, CAR], np.zeros((1, 2)), [300, 1200], [[100, 104], [100, 112]])
    assert _associate(HungarianTracker(), *args)[0].tolist() == [-1, 0]
    assert _associate(HungarianTracker(center_size_weight=0), *args)[0].tolist() == [0, -1]
    # when every segment is taken, the sizes do not change who takes which
    tracks = _tracks([CAR, CAR], [[100, 100], [100, 130]], [400, 1200])
    args = (tracks, [CAR, CAR], np.zeros((2, 2)), [300, 1200], [[100, 104], [100, 126]])
    for weight in (0.0, 0.3, 3.0):
        assert _associate(HungarianTracker(center_size_weight=weight), *args)[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="center_size_weight"):
        HungarianTracker(center_size_weight=-0.1)


def test_unique_pair_allows_a_large_area_change():
    tracks = _tracks([CAR], [[10, 10]], [100])  # a car stepping out from behind another: 10x the area
    args = (tracks, [CAR], np.array([[0.1]]), [1000], [[10, 30]])
    contain = np.array([[0.9]])  # the old mask lies inside the new one
    on = HungarianTracker(max_center_distance=0)
    off = HungarianTracker(max_center_distance=0, max_growth_ratio=0)
    assert _associate(on, *args, contain=contain)[0].tolist() == [0]
    assert _associate(off, *args, contain=contain)[0].tolist() == [-1]


def test_a_border_sliver_inside_a_prediction_running_out_of_the_frame_continues_it_at_any_area():
    # a car driving out: its prediction (2000 px, a fifth of it already outside) holds a 60 px
    # segment at the border, 33x smaller: past every area gate but this one
    tracks = _tracks([CAR], [[50, 590]], [2000])
    args = (tracks, [CAR], np.array([[0.03]]), [60], [[50, 638]])
    contain = np.array([[0.95]])
    assert _associate(HungarianTracker(), *args, contain=contain, clipped=[True], inside=[0.8])[0].tolist() == [0]
    off = HungarianTracker(exit_any_area=False)
    assert _associate(off, *args, contain=contain, clipped=[True], inside=[0.8])[0].tolist() == [-1]
    # not at the border, or a prediction wholly in view: the area gate holds
    assert _associate(HungarianTracker(), *args, contain=contain, clipped=[False], inside=[0.8])[0].tolist() == [-1]
    assert _associate(HungarianTracker(), *args, contain=contain, clipped=[True], inside=[1.0])[0].tolist() == [-1]
    # and it is still a containment: a sliver beside the prediction is not taken
    assert _associate(HungarianTracker(), *args, contain=np.array([[0.3]]), clipped=[True],
                      inside=[0.8])[0].tolist() == [-1]


@pytest.mark.parametrize("n_tracks,n_cur", [(0, 0), (0, 2), (2, 0)])
def test_nothing_to_match(n_tracks, n_cur):
    tracks = _tracks([CAR] * n_tracks, np.zeros((n_tracks, 2)), np.full(n_tracks, 100.0))
    track_of, free_t, retired = _associate(
        HungarianTracker(),
        tracks,
        [CAR] * n_cur,
        np.zeros((n_tracks, n_cur)),
        np.full(n_cur, 100.0),
        np.zeros((n_cur, 2)),
    )
    assert track_of.tolist() == [-1] * n_cur and free_t.tolist() == [True] * n_tracks
    assert retired.tolist() == [False] * n_tracks
