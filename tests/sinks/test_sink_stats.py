"""segment_stats against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from vpanoptic.sinks.stats import segment_stats


def brute_force(id_map: np.ndarray, segment_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    areas = np.zeros(len(segment_ids), np.int64)
    boxes = np.zeros((len(segment_ids), 4), np.int32)
    for i, sid in enumerate(segment_ids):
        ys, xs = np.nonzero(id_map == sid)
        if ys.size:
            areas[i] = ys.size
            boxes[i] = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    return areas, boxes


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (13, 17), (48, 64)])
def test_random_maps_match_brute_force(seed, shape):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    id_map = rng.integers(0, n + 3, shape).astype(np.int32)  # ids n+1.. are unlisted
    if seed % 2:  # blocky maps: long runs across row ends
        id_map = np.repeat(id_map[:, : max(1, shape[1] // 4)], 4, axis=1)[:, : shape[1]]
        id_map = np.pad(id_map, ((0, 0), (0, shape[1] - id_map.shape[1])), mode="edge")
    segment_ids = rng.permutation(np.arange(1, n + 1)).astype(np.int32)
    areas, boxes = segment_stats(id_map, segment_ids)
    ref_areas, ref_boxes = brute_force(id_map, segment_ids)
    assert areas.dtype == np.int64 and areas.shape == (n,)
    assert boxes.dtype == np.int32 and boxes.shape == (n, 4)
    np.testing.assert_array_equal(areas, ref_areas)
    np.testing.assert_array_equal(boxes, ref_boxes)


def test_large_and_sparse_ids_use_the_search_path():
    rng = np.random.default_rng(1)
    ids = np.array([5, 1 << 23, (1 << 24) - 1, 999_999_937], np.int32)
    id_map = rng.choice(np.concatenate([[0, 77], ids]), size=(20, 30)).astype(np.int32)
    areas, boxes = segment_stats(id_map, ids)
    ref_areas, ref_boxes = brute_force(id_map, ids)
    np.testing.assert_array_equal(areas, ref_areas)
    np.testing.assert_array_equal(boxes, ref_boxes)


def test_hand_made_map():
    id_map = np.array(
        [
            [0, 3, 3, 0],
            [0, 3, 9, 9],
            [4, 0, 9, 0],
        ],
        np.int32,
    )
    areas, boxes = segment_stats(id_map, np.array([9, 3, 4, 8]))
    assert areas.tolist() == [3, 3, 1, 0]
    assert boxes.tolist() == [[2, 1, 2, 2], [1, 0, 2, 2], [0, 2, 1, 1], [0, 0, 0, 0]]


def test_empty_inputs():
    areas, boxes = segment_stats(np.zeros((4, 5), np.int32), np.zeros(0, np.int32))
    assert areas.shape == (0,) and boxes.shape == (0, 4)
    areas, boxes = segment_stats(np.zeros((4, 5), np.int32), np.array([1, 2]))
    assert areas.tolist() == [0, 0] and boxes.tolist() == [[0, 0, 0, 0]] * 2


def test_rejects_non_2d():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        segment_stats(np.zeros((2, 2, 2), np.int32), np.array([1]))
