"""Bottom-up grouping and fusion (Panoptic-DeepLab): network outputs → one panoptic label map.

Pure torch functions, run on the outputs' device. Steps for one image:

1. semantic: the ``(K, h, w)`` logits are upsampled (bilinear) to the output size (the
   frame, or a fraction of it that `resize_labels` then scales up) and arg-maxed → class
   index per pixel; no pixel is left void (void costs STQ / SQ a class).
2. centers: keypoints of the center heatmap (value > `center_threshold`, local maxima in a
   `nms_kernel` window), at most `max_instances`, best first. The heatmap regresses a
   Gaussian of peak 1 (no sigmoid), as in Panoptic-DeepLab.
3. grouping: every thing pixel of the output map moves by its offset (read from the
   nearest network cell) and joins the nearest center.
4. fusion: an instance takes the majority class of its pixels; instances smaller than
   `min_instance_area` pixels go back to the best stuff class of their pixels.

The result is a label map ``class_index * (max_instances + 1) + instance`` (instance 0 for
stuff) plus per-instance scores; `labels_to_segments` turns it into a compact id map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["BilinearLogits", "GroupingParams", "find_centers", "group_panoptic", "labels_to_segments", "resize_labels"]


@dataclass(frozen=True)
class GroupingParams:
    """Thresholds of the grouping step (named, so they can be tuned and reported).

    center_threshold: minimum center heatmap value of an instance, in (0, 1).
    nms_kernel: odd window (output-grid pixels) in which a center must be the maximum.
    max_instances: most instances kept per image (highest center scores first).
    min_instance_area: instances with fewer pixels (frame pixels) are given back to stuff.
    """

    center_threshold: float = 0.2
    nms_kernel: int = 5
    max_instances: int = 64
    min_instance_area: int = 12

    def __post_init__(self):
        if not 0 < self.center_threshold < 1:
            raise ValueError(f"center_threshold is {self.center_threshold}; expected 0 < x < 1")
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel is {self.nms_kernel}; expected an odd number >= 1")
        if self.max_instances < 1:
            raise ValueError(f"max_instances is {self.max_instances}; expected >= 1")
        if self.min_instance_area < 0:
            raise ValueError(f"min_instance_area is {self.min_instance_area}; expected >= 0")


def find_centers(center_logits: torch.Tensor, params: GroupingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance centers of one heatmap.

    Args:
        center_logits: ``(1, h, w)`` float heatmap (regressed Gaussians, peak ~1).
    Returns:
        ``(M, 2)`` float (y, x) output-grid coordinates and ``(M,)`` float scores (heatmap values),
        best first, ``M <= params.max_instances``.
    """
    heat = center_logits.float()[None]  # [1, 1, h, w]
    k = params.nms_kernel
    pooled = F.max_pool2d(heat, k, stride=1, padding=k // 2)
    keep = (heat == pooled) & (heat > params.center_threshold)
    flat = torch.where(keep, heat, torch.zeros_like(heat)).flatten()
    n = int(keep.sum())
    if n == 0:
        return heat.new_zeros((0, 2)), heat.new_zeros((0,))
    scores, idx = torch.topk(flat, min(n, params.max_instances))
    w = heat.shape[-1]
    coords = torch.stack([torch.div(idx, w, rounding_mode="floor"), idx % w], 1).float()
    return coords, scores


class BilinearLogits:
    """Bilinear upsampling of ``(K, h, w)`` logits to ``(H, W)``, evaluated lazily.

    Matches ``F.interpolate(mode="bilinear", align_corners=False)``. `argmax` is exact and
    cheap: where the four low-resolution neighbours of a pixel share their arg-max class, the
    interpolated logits (a convex combination) have that arg-max too, so only the pixels
    between differing neighbours (boundaries) are interpolated.
    """

    def __init__(self, logits: torch.Tensor, size: tuple[int, int]):
        k, h, w = logits.shape
        height, width = size
        self.k, self.size = k, size
        self.flat = logits.float().reshape(k, h * w).t().contiguous()  # [h*w, K]
        dev = logits.device
        y0, y1, wy = self._axis(height, h, dev)
        x0, x1, wx = self._axis(width, w, dev)
        self._y0, self._y1, self._wy = y0, y1, wy  # [H]
        self._x0, self._x1, self._wx = x0, x1, wx  # [W]
        self.low = logits.argmax(0)  # [h, w] arg-max at network resolution
        self.w = w

    @staticmethod
    def _axis(out: int, inp: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = ((torch.arange(out, device=device, dtype=torch.float32) + 0.5) * (inp / out) - 0.5).clamp_(min=0)
        i0 = src.floor().long().clamp_(max=inp - 1)
        i1 = (i0 + 1).clamp_(max=inp - 1)
        return i0, i1, src - i0

    def at(self, pix: torch.Tensor) -> torch.Tensor:
        """Interpolated logits ``(N, K)`` at flat pixel indices ``pix (N,)`` of the ``(H, W)`` map."""
        width = self.size[1]
        py, px = torch.div(pix, width, rounding_mode="floor"), pix % width
        y0, y1, wy = self._y0[py], self._y1[py], self._wy[py, None]
        x0, x1, wx = self._x0[px], self._x1[px], self._wx[px, None]
        f, w = self.flat, self.w
        top = f[y0 * w + x0] * (1 - wx) + f[y0 * w + x1] * wx
        bottom = f[y1 * w + x0] * (1 - wx) + f[y1 * w + x1] * wx
        return top * (1 - wy) + bottom * wy

    def argmax(self) -> torch.Tensor:
        """``(H, W)`` int64 arg-max class of the upsampled logits."""
        r0 = self.low.index_select(0, self._y0)  # [H, w]
        r1 = self.low.index_select(0, self._y1)
        c00 = r0.index_select(1, self._x0)  # [H, W]
        same = (c00 == r0.index_select(1, self._x1)) & (c00 == r1.index_select(1, self._x0)) \
            & (c00 == r1.index_select(1, self._x1))
        edge = (~same).flatten().nonzero()[:, 0]
        if edge.numel():
            c00.view(-1)[edge] = self.at(edge).argmax(1)
        return c00


def group_panoptic(
    sem_logits: torch.Tensor,
    center_logits: torch.Tensor,
    offsets: torch.Tensor,
    out_size: tuple[int, int],
    thing_mask: torch.Tensor,
    params: GroupingParams = GroupingParams(),
    frame_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Panoptic labels of one image from the network outputs.

    Args:
        sem_logits: ``(K, h, w)`` semantic logits.
        center_logits: ``(1, h, w)`` center heatmap.
        offsets: ``(2, h, w)`` (dy, dx) to the center, in output-grid pixels.
        out_size: ``(H, W)`` where the grouping is computed (the frame, or a fraction of it).
        thing_mask: ``(K,)`` bool, True for thing classes.
        frame_size: ``(H, W)`` of the frame, to express `min_instance_area` in frame pixels
            (default: `out_size`).
    Returns:
        labels ``(H, W)`` int64 ``class * M1 + instance`` with ``M1 = max_instances + 1``,
        instance ``1..M`` for things and 0 for stuff; scores ``(M1,)`` float (index 0
        unused); and ``M1``.
    """
    height, width = out_size
    fh, fw = frame_size or out_size
    h, w = sem_logits.shape[-2:]
    k = sem_logits.shape[0]
    device = sem_logits.device
    thing_mask = thing_mask.to(device)
    m1 = params.max_instances + 1
    # 1. semantic at the output size (exact bilinear arg-max, interpolating boundaries only)
    logits = BilinearLogits(sem_logits, (height, width))
    sem = logits.argmax()  # [H, W]
    labels = sem * m1
    is_thing = thing_mask[sem]  # [H, W]
    # 2. centers
    centers, scores = find_centers(center_logits, params)
    all_scores = torch.zeros(m1, device=device)
    pix = is_thing.flatten().nonzero()[:, 0]  # [N] thing pixels
    if pix.numel() == 0:
        return labels, all_scores, m1
    cls = sem.flatten()[pix]
    if centers.shape[0] == 0:
        # No center anywhere: each thing class present becomes one instance.
        inst = torch.zeros_like(pix)
        for j, c in enumerate(torch.unique(cls).tolist()[: params.max_instances], start=1):
            inst[cls == c] = j
            all_scores[j] = params.center_threshold
        center_count = 0
    else:
        # 3. every thing pixel joins the center nearest to where its offset points
        sy, sx = h / height, w / width
        py = torch.div(pix, width, rounding_mode="floor")
        px = pix % width
        gy = (py.float() + 0.5) * sy - 0.5  # [N] output-grid coordinates
        gx = (px.float() + 0.5) * sx - 0.5
        cy = (py.float() * sy).long().clamp_(0, h - 1)
        cx = (px.float() * sx).long().clamp_(0, w - 1)
        off = offsets.float()[:, cy, cx]  # [2, N]
        target = torch.stack([gy + off[0], gx + off[1]], 1)  # [N, 2]
        inst = torch.cdist(target, centers).argmin(1) + 1  # [N] 1..M
        center_count = centers.shape[0]
    # 4. fusion: majority class per instance, small instances back to stuff
    votes = torch.bincount(inst * k + cls, minlength=m1 * k).view(m1, k)
    inst_cls = votes.argmax(1)  # [M1]
    area = votes.sum(1).float() * (fh * fw) / (height * width)  # [M1] in frame pixels
    small = area < params.min_instance_area
    small[0] = False
    pix_label = inst_cls[inst] * m1 + inst
    drop = small[inst]
    if bool(drop.any()):
        stuff_logits = logits.at(pix[drop])  # [n, K]
        stuff_logits[:, thing_mask] = float("-inf")
        pix_label[drop] = stuff_logits.argmax(1) * m1
    labels.view(-1)[pix] = pix_label
    if center_count:
        all_scores[1 : center_count + 1] = scores.clamp(0, 1)
    return labels, all_scores, m1


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer ``(h, w)`` map to ``size = (H, W)`` (pixel centers)."""
    h, w = labels.shape
    height, width = size
    if (h, w) == (height, width):
        return labels
    rows = ((torch.arange(height, device=labels.device) + 0.5) * (h / height)).long().clamp_(max=h - 1)
    cols = ((torch.arange(width, device=labels.device) + 0.5) * (w / width)).long().clamp_(max=w - 1)
    return labels.index_select(0, rows).index_select(1, cols)


def labels_to_segments(labels: torch.Tensor, m1: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Compact ids for a label map from `group_panoptic`.

    Args:
        labels: ``(H, W)`` int64 ``class * m1 + instance``.
    Returns:
        id map ``(H, W)`` int32 with ids ``1..N`` (no void), and the ``(N,)`` int64 labels of
        the segments, in id order (on the same device).
    """
    present = torch.bincount(labels.flatten(), minlength=num_classes * m1) > 0
    seg_labels = present.nonzero()[:, 0]
    lut = torch.cumsum(present.to(torch.int32), 0, dtype=torch.int32)
    return lut[labels], seg_labels
