"""Association costs between tracks and the segments of a new frame.

Panoptic segments do not overlap, so every intersection between a set of previous masks and
the current masks comes from one 2-D histogram of (previous index, current index) pairs over
the pixels: O(pixels) whatever the number of objects, and one `bincount` on the device.
"""

from __future__ import annotations

import torch

__all__ = ["mask_iou_from_index_maps"]


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
