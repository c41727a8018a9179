"""Per-segment pixel statistics (area and bounding box) of a panoptic id map.

The id map is scanned once as horizontal runs of equal ids (one comparison per pixel);
everything else works on the runs, whose number is usually a few per row per segment (a
few thousand for a 1280x720 frame), and at most one per pixel. Area is the sum of run
lengths; the box spans the smallest run start to the largest run end, and the first to the
last row holding a run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["segment_stats"]


def segment_stats(id_map: np.ndarray, segment_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area and bounding box of each segment.

    Args:
        id_map: ``(H, W)`` integer segment id per pixel (0 = void).
        segment_ids: ``(N,)`` ids to measure; ids present in `id_map` but not listed here
            are ignored, listed ids absent from `id_map` get area 0 and box ``[0, 0, 0, 0]``.

    Returns:
        areas: ``(N,) int64`` pixel counts, in the order of `segment_ids`.
        bboxes: ``(N, 4) int32`` boxes ``[x, y, w, h]`` (COCO convention: top-left corner,
            width and height in pixels, so a single pixel at (x, y) is ``[x, y, 1, 1]``).
    """
    id_map = np.asarray(id_map)
    segment_ids = np.asarray(segment_ids).reshape(-1)
    if id_map.ndim != 2:
        raise ValueError(f"id_map must be (H, W); got shape {id_map.shape}")
    n = segment_ids.shape[0]
    areas = np.zeros(n, dtype=np.int64)
    bboxes = np.zeros((n, 4), dtype=np.int32)
    height, width = id_map.shape
    if n == 0 or id_map.size == 0:
        return areas, bboxes

    # 1. Run starts in the flattened map: where the id changes, or a new row begins.
    flat = id_map.reshape(-1)
    change = np.empty(flat.shape[0], dtype=bool)
    change[0] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    change[::width] = True
    starts = np.flatnonzero(change)  # [R]
    lengths = np.diff(starts, append=flat.shape[0])  # [R]
    run_ids = flat[starts]  # [R]

    # 2. Map run ids to positions in `segment_ids`; drop void and unlisted ids.
    seg = _positions(run_ids, segment_ids)  # [R] index into segment_ids, -1 = not listed
    keep = seg >= 0
    seg, starts, lengths = seg[keep], starts[keep], lengths[keep]
    if seg.size == 0:
        return areas, bboxes
    rows = starts // width  # [R']
    x0 = starts - rows * width  # [R']
    x1 = x0 + lengths  # [R'] exclusive end

    # 3. Reduce runs per segment.
    areas[:] = np.bincount(seg, weights=lengths, minlength=n).astype(np.int64)
    present = areas > 0
    xmin = np.full(n, width, dtype=np.int64)
    xmax = np.zeros(n, dtype=np.int64)
    np.minimum.at(xmin, seg, x0)
    np.maximum.at(xmax, seg, x1)
    ymin = np.full(n, height, dtype=np.int64)
    ymax = np.zeros(n, dtype=np.int64)
    np.minimum.at(ymin, seg, rows)
    np.maximum.at(ymax, seg, rows + 1)
    bboxes[present, 0] = xmin[present]
    bboxes[present, 1] = ymin[present]
    bboxes[present, 2] = (xmax - xmin)[present]
    bboxes[present, 3] = (ymax - ymin)[present]
    return areas, bboxes


# Largest id for which a dense lookup table is used instead of a binary search.
_MAX_LUT_ID = 1 << 22


def _positions(values: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
    """Index of each of `values` ``(R,)`` in `segment_ids` ``(N,)``, -1 where not listed.

    Returns ``(R,) int64``. A lookup table when ids are small (the usual case), else a
    binary search over the sorted ids.
    """
    n = segment_ids.shape[0]
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi <= _MAX_LUT_ID:
        lut = np.full(hi + 1, -1, dtype=np.int64)
        listed = (segment_ids >= 0) & (segment_ids <= hi)
        lut[segment_ids[listed]] = np.flatnonzero(listed)
        return lut[values]
    order = np.argsort(segment_ids, kind="stable")
    sorted_ids = segment_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, values), n - 1)  # [R]
    return np.where(sorted_ids[pos] == values, order[pos], -1)
