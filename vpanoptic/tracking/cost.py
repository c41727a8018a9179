"""Association costs between tracks and the segments of a new frame.

Panoptic segments do not overlap, so every intersection between a set of previous masks and
the current masks comes from one 2-D histogram of (previous index, current index) pairs over
the pixels: O(pixels) whatever the number of objects, and one `bincount` on the device.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mask_iou_from_index_maps", "pair_histogram", "thing_label_map"]


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
