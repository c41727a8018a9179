"""The current things on the association grid: label map, pixel lists, areas, centres, border contact.

Step 1 of `HungarianTracker.update`. The things of a frame are labelled 1..M (their order in
the frame's thing list) on the association grid in one pass over the id map (a clamp and a
table lookup; at stride 2 the map's rows are read as int64 pairs of columns, ~2x faster than
an element-strided read); everything else the tracker needs per thing (area, centre, whether
it touches the frame border) comes from the list of thing pixels with two `bincount`s. The
label map has a one-pixel ring of label M + 1 ("outside the frame") around it, so that a
predicted pixel anywhere in the plane reads its label after one clamp of its coordinates
(`cost.warped_pair_counts`).

On the CPU the pixels are listed with NumPy (`np.flatnonzero` is ~3x faster than
`torch.nonzero` at one thread, and the centre sums share one exact float64 bincount); on
other devices with torch. Both give the same result (tested).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["GridThings", "grid_things", "nonzero_indices"]


@dataclass
class GridThings:
    """The M things of one frame on an ``h x w`` association grid.

    Attributes:
        labels: ``((h + 2) * (w + 2),)`` flat label map with a one-pixel ring: 0 = stuff or
            void, 1..M = thing, M + 1 on the ring (outside the grid). uint8 while M < 255
            (int32 or int64 beyond), on the id map's device.
        yx: ``(2, F) int64`` grid row and column of every thing pixel (raster order), same
            device; `y` and `x` are its rows.
        label: ``(F,) int64`` its label in 1..M, same device.
        index: ``(F,) int64`` its place in `labels` (row + 1) * (w + 2) + column + 1, same device.
        area: ``(M,) float64`` grid pixels per thing.
        centroid: ``(M, 2) float64`` (y, x) mean pixel position per thing (NaN for an empty one).
        clipped: ``(M,) bool`` the thing touches the border of the grid (it is cut off).
        height, width: ``h``, ``w``.
    """

    labels: torch.Tensor
    yx: torch.Tensor
    label: torch.Tensor
    index: torch.Tensor
    area: np.ndarray
    centroid: np.ndarray
    clipped: np.ndarray
    height: int
    width: int

    @property
    def y(self) -> torch.Tensor:
        return self.yx[0]

    @property
    def x(self) -> torch.Tensor:
        return self.yx[1]

    @property
    def count(self) -> int:
        """M, the number of things."""
        return int(self.area.shape[0])

    def mask(self, step: int) -> np.ndarray:
        """``(ceil(h / step), ceil(w / step)) bool`` NumPy mask of the thing pixels.

        Every `step`-th row and column is taken.
        """
        grid = self.labels.reshape(self.height + 2, self.width + 2)[1:-1:step, 1:-1:step]
        if grid.device.type == "cpu":
            return grid.numpy() > 0
        return (grid > 0).cpu().numpy()


def nonzero_indices(mask: torch.Tensor) -> torch.Tensor:
    """``(n,) int64`` indices where `mask` ``(K,) bool`` is True, on its device (NumPy on the CPU: ~3x faster)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).squeeze(1)


def grid_things(id_map: torch.Tensor, stride: int, thing_segment_ids: np.ndarray) -> GridThings:
    """Label the things of an id map on its grid of every `stride`-th row and column, list their pixels.

    Args:
        id_map: ``(H, W)`` integer segment ids (0 = void), any device.
        stride: grid step; the grid is ``id_map[::stride, ::stride]``, ``h x w`` pixels.
        thing_segment_ids: ``(M,)`` segment ids of the things, in the order that gives labels
            1..M. Ids not listed (stuff, void, negative, or above the largest listed one) read as 0.
    """
    ids = np.asarray(thing_segment_ids, np.int64).reshape(-1)
    dev = id_map.device
    m = ids.shape[0]
    # the smallest dtype that holds 0..M + 1 (uint8: 1/8 of the memory traffic of int64)
    dtype = torch.uint8 if m < 255 else torch.int32 if dev.type == "cpu" else torch.long
    top = int(np.max(ids, initial=0)) + 1  # ids clamp onto 0..top; entry top is 0
    table = np.zeros(top + 1, np.int64)
    table[ids] = np.arange(1, m + 1)
    table[0] = 0
    lut = torch.as_tensor(table, device=dev).to(dtype)
    index = _grid_index(id_map, stride, top)  # [h, w] the one pass over the map
    height, width = index.shape
    labels = torch.zeros((height + 2, width + 2), dtype=dtype, device=dev)
    labels[1:-1, 1:-1] = lut.index_select(0, index.reshape(-1)).reshape(height, width)
    if dev.type == "cpu":
        return _list_pixels_numpy(labels.numpy(), m)
    return _list_pixels_torch(labels, m)


def _grid_index(id_map: torch.Tensor, stride: int, top: int) -> torch.Tensor:
    """``id_map[::stride, ::stride]`` clamped to 0..top, contiguous ``(h, w)``."""
    height, width = id_map.shape
    if (
        stride == 2
        and id_map.device.type == "cpu"
        and id_map.dtype == torch.int32
        and width % 2 == 0
        and id_map.stride(1) == 1
        and id_map.stride(0) % 2 == 0
        and id_map.storage_offset() % 2 == 0
        and sys.byteorder == "little"
    ):
        # an int64 holds columns 2j (its low half) and 2j + 1: a pass over whole rows is ~2x
        # faster than an element-strided one; a negative id reads as >= 2**31 (above top)
        return (id_map[::2].view(torch.int64) & 0xFFFFFFFF).clamp_(max=top)
    grid = id_map[::stride, ::stride] if stride > 1 else id_map
    return grid.clamp(0, top)


def _finish(area: np.ndarray, sum_y: np.ndarray, sum_x: np.ndarray, border: np.ndarray):
    """``(area, centroid, clipped)`` from per-label counts (index 0 = background)."""
    area = area[1:].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.stack([sum_y[1:] / area, sum_x[1:] / area], 1)
    return area, centroid, border[1 : area.shape[0] + 1]


def _list_pixels_numpy(labels: np.ndarray, m: int) -> GridThings:
    """`GridThings` from a padded label map ``(h + 2, w + 2)`` whose ring is still 0 (sets the ring)."""
    height, width = labels.shape[0] - 2, labels.shape[1] - 2
    flat = labels.reshape(-1)
    pix = np.flatnonzero(flat != 0)  # [F] padded flat index
    small = flat[pix]  # [F] in 1..M, the map's dtype
    label = small.astype(np.int64)
    yx = np.empty((2, pix.size), np.int64)
    y, x = yx
    np.floor_divide(pix, width + 2, out=y)  # padded row
    np.subtract(pix, y * (width + 2) + 1, out=x)
    y -= 1
    area = torch.bincount(torch.from_numpy(small), minlength=m + 1).numpy()  # torch: no int64 copy needed
    bits = int(pix.size * max(width - 1, 1)).bit_length()  # any label's sum of x is below 2**bits
    if (pix.size * max(height - 1, 1) + 1) << bits <= 1 << 53:
        # both sums in one bincount: y 2**bits + x, exact in float64
        packed = np.bincount(label, weights=(y << bits) + x, minlength=m + 1)
        sum_y = np.floor(packed / float(1 << bits))
        sum_x = packed - sum_y * float(1 << bits)
    else:
        sum_y = np.bincount(label, weights=y, minlength=m + 1)
        sum_x = np.bincount(label, weights=x, minlength=m + 1)
    border = np.zeros(m + 1, bool)
    for edge in (labels[1], labels[height], labels[1:-1, 1], labels[1:-1, width]):
        border[edge] = True
    border[0] = False
    outside = m + 1
    labels[0], labels[-1], labels[:, 0], labels[:, -1] = outside, outside, outside, outside
    area, centroid, clipped = _finish(area, sum_y, sum_x, border)
    as_t = torch.from_numpy
    return GridThings(as_t(flat), as_t(yx), as_t(label), as_t(pix), area, centroid, clipped, height, width)


def _list_pixels_torch(labels: torch.Tensor, m: int) -> GridThings:
    """`_list_pixels_numpy` with torch ops, on any device."""
    height, width = labels.shape[0] - 2, labels.shape[1] - 2
    inner = labels[1:-1, 1:-1].reshape(-1)  # a copy
    pix = torch.nonzero(inner).squeeze(1)  # [F] grid flat index
    label = inner.index_select(0, pix).long()
    y = torch.div(pix, width, rounding_mode="floor")
    x = pix - y * width
    n = m + 1
    area = torch.bincount(label, minlength=n)
    sum_y = torch.bincount(label, weights=y.double(), minlength=n)
    sum_x = torch.bincount(label, weights=x.double(), minlength=n)
    edges = torch.cat([labels[1, 1:-1], labels[height, 1:-1], labels[1:-1, 1], labels[1:-1, width]]).long()
    border = torch.bincount(edges, minlength=n) > 0
    area, sum_y, sum_x, border = (t.cpu().numpy() for t in (area, sum_y, sum_x, border))
    border[0] = False
    labels[0], labels[-1], labels[:, 0], labels[:, -1] = m + 1, m + 1, m + 1, m + 1
    area, centroid, clipped = _finish(area, sum_y, sum_x, border)
    index = (y + 1) * (width + 2) + x + 1
    return GridThings(labels.reshape(-1), torch.stack([y, x]), label, index, area, centroid, clipped, height, width)
