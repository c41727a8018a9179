"""Association costs between tracks and the segments of a new frame, and the matching.

Panoptic segments do not overlap, so every intersection between a set of previous masks and
the current masks comes from one 2-D histogram of (previous index, current index) pairs over
the pixels: O(pixels) whatever the number of objects, and one `bincount` on the device.
`assign` is the Hungarian matching (`scipy.optimize.linear_sum_assignment`) restricted to
the allowed pairs.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = [
    "FORBIDDEN",
    "assign",
    "mask_iou_from_index_maps",
    "overlap_from_counts",
    "pair_histogram",
    "thing_label_map",
    "warped_pair_counts",
]

FORBIDDEN = 1e6  # cost of a pair that may not be matched


def pair_histogram(a: torch.Tensor, b: torch.Tensor, n_a: int, n_b: int) -> torch.Tensor:
    """Counts of label pairs: ``(n_a + 1, n_b + 1) int64``, entry [i, j] = #{k: a[k] = i and b[k] = j}.

    Args:
        a: ``(K,)`` int64 labels in 0..n_a; b: ``(K,)`` int64 labels in 0..n_b, same device.
    """
    pairs = a * (n_b + 1) + b
    return torch.bincount(pairs, minlength=(n_a + 1) * (n_b + 1)).reshape(n_a + 1, n_b + 1)


def mask_iou_from_index_maps(prev: torch.Tensor, cur: torch.Tensor, n_prev: int, n_cur: int) -> torch.Tensor:
    """IoU between the masks of two index maps.

    Args:
        prev: ``(H, W)`` integer map, values in 0..n_prev, 0 = no mask.
        cur: ``(H, W)`` integer map on the same device, values in 0..n_cur, 0 = no mask.
    Returns:
        ``(n_prev, n_cur) float32`` IoU; entry [i, j] is the IoU of mask i+1 of `prev` with
        mask j+1 of `cur` (0 where a mask is empty).
    """
    if prev.shape != cur.shape:
        raise ValueError(f"index maps differ in shape: {tuple(prev.shape)} vs {tuple(cur.shape)}")
    width = n_cur + 1
    pairs = prev.reshape(-1).long() * width + cur.reshape(-1).long()
    hist = torch.bincount(pairs, minlength=(n_prev + 1) * width).reshape(n_prev + 1, width)  # [P+1, C+1]
    inter = hist[1:, 1:].float()  # [P, C]
    area_prev = hist[1:, :].sum(1).float()  # [P]
    area_cur = hist[:, 1:].sum(0).float()  # [C]
    union = area_prev[:, None] + area_cur[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def thing_label_map(id_map: torch.Tensor, thing_segment_ids: np.ndarray) -> torch.Tensor:
    """Flat map of thing labels: pixel -> 1..M (position of its segment in `thing_segment_ids`), else 0.

    Args:
        id_map: ``(H, W)`` integer segment ids (0 = void), any device.
        thing_segment_ids: ``(M,)`` segment ids of the things, in the order that gives labels 1..M.
    Returns:
        ``(H*W,) int64`` on the device of `id_map`.
    """
    dev = id_map.device
    if dev.type == "cpu":
        # one pass over the (possibly strided) map; ids above the largest listed one (not
        # allowed by PanopticFrame) and negative ones read as 0 through the clipped last entry
        ids = np.asarray(thing_segment_ids, np.int64)
        table = np.zeros(int(np.max(ids, initial=0)) + 2, np.int64)
        table[ids] = np.arange(1, len(ids) + 1)
        table[0] = 0
        return torch.from_numpy(np.take(table, id_map.numpy(), mode="clip").reshape(-1))
    size = int(max(int(np.max(thing_segment_ids, initial=0)), int(id_map.max()) if id_map.numel() else 0)) + 1
    lut = torch.zeros(size, dtype=torch.long, device=dev)
    if len(thing_segment_ids):
        lut[torch.as_tensor(np.asarray(thing_segment_ids), dtype=torch.long, device=dev)] = torch.arange(
            1, len(thing_segment_ids) + 1, device=dev
        )
    # index_select: ~10x faster than advanced indexing for large gathers on CPU
    return lut.index_select(0, id_map.reshape(-1).long())


# A per-track transform beyond this (pixels, or zoom factor) moves every pixel off any frame;
# clipping to it keeps float32 arithmetic finite (a non-finite transform counts as outside).
_FAR = 1e6


def warped_pair_counts(
    labels: torch.Tensor, width: int, n_labels: int, points: torch.Tensor, slot: torch.Tensor, transform: np.ndarray
) -> np.ndarray:
    """Where each track's remembered pixels land: counts of (track, label under the pixel) pairs.

    Args:
        labels: ``((h + 2) * (w + 2),)`` integer label map with a one-pixel ring
            (`features.GridThings.labels`): 0..n_labels - 1 inside, n_labels - 1 on the ring.
        width: ``w``, the grid width without the ring.
        points: ``(2, K) float32`` (row, column) of the remembered pixels, same device.
        slot: ``(K,) int64`` the track (row of `transform`) of each pixel, same device.
        transform: ``(T, 3) float`` per track (k, by, bx): pixel p goes to round(k p + b)
            (float32 arithmetic, halves to even).
    Returns:
        ``(T, n_labels) int64`` (CPU): entry [t, j] = remembered pixels of track t that land
        on label j; a pixel that lands outside the grid counts for the ring's label.
    """
    dev = labels.device
    height = labels.shape[0] // (width + 2) - 2
    n_tracks = transform.shape[0]
    t = np.asarray(transform, np.float64)
    t = np.where(np.isfinite(t).all(1, keepdims=True), np.clip(t, -_FAR, _FAR), [0.0, -_FAR, -_FAR])
    table = torch.as_tensor(t.T, dtype=torch.float32, device=dev)  # [3, T]
    par = table.index_select(1, slot)  # [3, K]
    # row and column, rounded, then clamped onto the ring: one lookup, no inside test
    row = torch.addcmul(par[1], points[0], par[0]).round_().clamp_(-1, height)
    col = torch.addcmul(par[2], points[1], par[0]).round_().clamp_(-1, width)
    flat = torch.add(col, row, alpha=width + 2).add_(width + 3).long()  # [K] padded flat index
    under = labels.index_select(0, flat)  # [K]
    pairs = torch.add(under, slot, alpha=n_labels)
    counts = torch.bincount(pairs, minlength=n_tracks * n_labels)
    return counts.reshape(n_tracks, n_labels).cpu().numpy()


def overlap_from_counts(
    counts: np.ndarray, area: np.ndarray, weight: np.ndarray, full_area: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU and containment of predicted track masks with the current things.

    Args:
        counts: ``(T, M + 2) int`` `warped_pair_counts` (label 0 background, M + 1 outside).
        area: ``(M,) float`` areas of the current things.
        weight: ``(T,) float`` pixels each remembered pixel stands for (a scaled or sub-sampled
            mask is a sample of the object).
        full_area: ``(T,)`` predicted area of each mask with nothing cut off by the frame border.
    Returns:
        ``(iou (T, M), containment (T, M), inside (T,))`` float64: containment is the
        intersection over the smaller of the two areas, inside the fraction of each predicted
        mask inside the frame.
    """
    n_cur = area.shape[0]
    weight = np.asarray(weight, np.float64)[:, None]  # [T, 1]
    inter = counts[:, 1 : n_cur + 1] * weight  # [T, M]
    pred_area = counts[:, : n_cur + 1].sum(1, keepdims=True) * weight  # [T, 1] inside the frame
    union = pred_area + area[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    contain = inter / np.maximum(np.minimum(pred_area, area[None, :]), 1)
    inside = np.minimum(pred_area[:, 0] / np.maximum(full_area, 1e-9), 1.0)
    return iou, contain, inside


def assign(cost: np.ndarray, allowed: np.ndarray, unmatched_cost: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching restricted to `allowed` pairs.

    Args:
        cost: ``(R, C) float`` pair costs; allowed: ``(R, C) bool``.
        unmatched_cost: None: as many allowed pairs as possible, then the least cost. A number
            (above every allowed cost): leaving a row unmatched costs this much, so a set of
            weak pairs never displaces a strong one just to match more rows.
    Returns:
        ``(rows, cols)`` int arrays of the matched pairs (all allowed).
    """
    if not allowed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r_any, c_any = np.flatnonzero(allowed.any(1)), np.flatnonzero(allowed.any(0))
    sub_ok = allowed[r_any][:, c_any]  # chained indexing: ~2x faster than np.ix_ at this size
    fill = FORBIDDEN if unmatched_cost is None else unmatched_cost
    sub = np.where(sub_ok, cost[r_any][:, c_any], fill)
    one_each = r_any.size == c_any.size and (sub_ok.sum(0) == 1).all() and (sub_ok.sum(1) == 1).all()
    if one_each and (sub < fill).sum() == r_any.size:
        # every row and column has one allowed partner, each cheaper than leaving it unmatched:
        # those pairs are the one optimum (the common case of well separated objects)
        rows, cols = np.nonzero(sub_ok)
        return r_any[rows], c_any[cols]
    rows, cols = linear_sum_assignment(sub)
    ok = sub_ok[rows, cols]
    return r_any[rows[ok]], c_any[cols[ok]]
