"""Step 1 of the tracker (`features.grid_things`) and the warped overlap counts (`cost.py`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpanoptic.tracking.cost import assign, overlap_from_counts, warped_pair_counts
from vpanoptic.tracking.features import _list_pixels_numpy, _list_pixels_torch, grid_things, nonzero_indices


def reference(id_map: np.ndarray, stride: int, ids: list[int]):
    """Labels, pixel list, areas, centroids and border contact, the slow obvious way."""
    grid = id_map[::stride, ::stride]
    labels = np.zeros(grid.shape, np.int64)
    for k, i in enumerate(ids):
        labels[grid == i] = k + 1
    y, x = np.nonzero(labels)
    area = np.array([(labels == k + 1).sum() for k in range(len(ids))], np.float64)
    sums = np.array([[y[labels[y, x] == k + 1].sum(), x[labels[y, x] == k + 1].sum()] for k in range(len(ids))])
    with np.errstate(invalid="ignore"):
        cen = sums / area[:, None]  # NaN for a thing with no pixel on the grid
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    clipped = np.array([(edge == k + 1).any() for k in range(len(ids))])
    return labels, y, x, area, cen.reshape(-1, 2), clipped


@pytest.mark.parametrize("stride, width", [(1, 12), (2, 12), (2, 11), (3, 12)])
def test_grid_things_matches_the_obvious_computation(stride, width):
    rng = np.random.default_rng(stride * 100 + width)
    id_map = rng.integers(-2, 9, (10, width)).astype(np.int32)  # negative ids and ids above the listed ones
    id_map[4:8, 2:6] = 40
    ids = [40, 3, 7, 5]  # 5 may be absent from the grid: area 0, centre NaN
    things = grid_things(torch.from_numpy(id_map), stride, np.array(ids))
    labels, y, x, area, cen, clipped = reference(id_map, stride, ids)
    h, w = labels.shape
    assert (things.height, things.width, things.count) == (h, w, len(ids))
    ring = things.labels.reshape(h + 2, w + 2).numpy()
    assert np.array_equal(ring[1:-1, 1:-1], labels)
    assert (ring[0] == len(ids) + 1).all() and (ring[:, -1] == len(ids) + 1).all()  # outside
    assert np.array_equal(things.y.numpy(), y) and np.array_equal(things.x.numpy(), x)
    assert np.array_equal(things.label.numpy(), labels[y, x])
    assert np.array_equal(things.area, area)
    np.testing.assert_allclose(things.centroid, cen, rtol=1e-12)
    assert np.array_equal(things.clipped, clipped)
    assert np.array_equal(things.mask(2), labels[::2, ::2] > 0)


def test_grid_things_on_a_view_of_a_larger_map():
    # a column slice with an odd row stride, and one at an odd offset: the int64 row read does not apply
    big = np.arange(8 * 13, dtype=np.int32).reshape(8, 13) % 7
    for view in (big[:, :12], big[:, 1:13]):
        things = grid_things(torch.from_numpy(view), 2, np.array([3, 5]))
        labels = reference(np.ascontiguousarray(view), 2, [3, 5])[0]
        assert np.array_equal(things.labels.reshape(6, 8).numpy()[1:-1, 1:-1], labels)


def test_numpy_and_torch_paths_agree():
    # the CPU uses NumPy, other devices torch: same result from the same padded label map
    rng = np.random.default_rng(0)
    padded = np.zeros((9, 14), np.uint8)
    padded[1:-1, 1:-1] = rng.integers(0, 4, (7, 12))
    a = _list_pixels_numpy(padded.copy(), 3)
    b = _list_pixels_torch(torch.from_numpy(padded.copy()), 3)
    assert torch.equal(a.labels.long(), b.labels.long())
    assert torch.equal(a.yx, b.yx) and torch.equal(a.label, b.label)
    assert np.array_equal(a.area, b.area) and np.array_equal(a.clipped, b.clipped)
    assert np.array_equal(a.centroid, b.centroid)


def test_grid_things_with_no_things():
    things = grid_things(torch.zeros((4, 6), dtype=torch.int32), 2, np.zeros(0, np.int64))
    assert things.count == 0 and things.label.numel() == 0
    assert (things.labels.reshape(4, 5)[1:-1, 1:-1] == 0).all()


def test_nonzero_indices():
    mask = torch.tensor([False, True, True, False, True])
    assert nonzero_indices(mask).tolist() == [1, 2, 4]
    assert nonzero_indices(torch.zeros(0, dtype=torch.bool)).numel() == 0


def test_warped_pair_counts_reads_the_label_under_each_moved_pixel():
    id_map = torch.tensor([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 2]], dtype=torch.int32)
    things = grid_things(id_map, 1, np.array([1, 2]))  # 3 x 4 grid, labels 0..2, ring 3
    # track 0: object 1's four pixels; track 1: object 2's three pixels
    points = torch.tensor([[0, 0, 1, 1, 0, 1, 2], [0, 1, 0, 1, 3, 3, 3]], dtype=torch.float32)
    slot = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    same = warped_pair_counts(things.labels, 4, 4, points, slot, np.array([[1.0, 0, 0], [1.0, 0, 0]]))
    assert same.tolist() == [[0, 4, 0, 0], [0, 0, 3, 0]]
    # track 0 moves one column right (half on background), track 1 one column right (off the frame)
    moved = warped_pair_counts(things.labels, 4, 4, points, slot, np.array([[1.0, 0, 1], [1.0, 0, 1]]))
    assert moved.tolist() == [[2, 2, 0, 0], [0, 0, 0, 3]]
    # far away, or a non-finite transform: outside
    far = warped_pair_counts(things.labels, 4, 4, points, slot, np.array([[1.0, -1e9, 0], [np.nan, 0, 0]]))
    assert far.tolist() == [[0, 0, 0, 4], [0, 0, 0, 3]]
    # zoom 2 about the origin: (1, 1) -> (2, 2)
    zoom = warped_pair_counts(things.labels, 4, 4, points[:, :4], slot[:4], np.array([[2.0, 0, 0]]))
    assert zoom.tolist() == [[3, 1, 0, 0]]


def test_overlap_from_counts():
    counts = np.array([[0, 4, 0, 0], [1, 0, 2, 1]])  # track 1: 1 px on background, 2 on thing 2, 1 outside
    iou, contain, inside = overlap_from_counts(counts, np.array([4.0, 3.0]), np.array([1.0, 1.0]), np.array([4.0, 4.0]))
    assert iou[0].tolist() == [1.0, 0.0] and iou[1, 1] == pytest.approx(2 / 4)
    assert contain[1, 1] == pytest.approx(2 / 3)
    assert inside.tolist() == [1.0, 0.75]


def test_assign_one_partner_each_and_conflicts():
    cost = np.array([[0.1, 0.5, 0.9], [0.4, 0.2, 0.9], [0.9, 0.9, 0.3]])
    diagonal = np.eye(3, dtype=bool)
    r, c = assign(cost, diagonal)  # one allowed partner each: those pairs
    assert r.tolist() == [0, 1, 2] and c.tolist() == [0, 1, 2]
    r, c = assign(cost, diagonal[[2, 0, 1]])  # a permutation
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 2), (1, 0), (2, 1)]
    conflict = np.array([[True, True, False], [True, False, False], [False, False, False]])
    r, c = assign(cost, conflict)  # as many pairs as possible: row 1 can only take column 0
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 1), (1, 0)]
    # an allowed pair dearer than leaving its row unmatched is not forced in
    r, c = assign(np.array([[0.1, 9.0], [9.0, 5.0]]), np.eye(2, dtype=bool), unmatched_cost=1.0)
    assert 1 not in r.tolist()
    assert assign(cost, np.zeros((3, 3), bool))[0].size == 0
