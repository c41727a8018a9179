"""Query mask logits → panoptic: DETR's ``PostProcessPanoptic``.

The rule of ``PostProcessPanoptic.forward`` in facebookresearch/detr ``models/segmentation.py``
(read at commit 38553c91), applied to the queries the caller kept (class score above 0.85,
not "no object": ``threshold=0.85`` in ``models/detr.py`` ``build``):

1. The kept queries' mask logits are resized (bilinear, ``align_corners=False``) to the
   processed image size; each pixel goes to the argmax of the softmax over the queries
   (first on ties). No pixel is void.
2. First pass only: the pixels of every stuff query go to the first query of its class
   (``stuff_equiv_classes``, ``dedup=True``).
3. The map of query indices is resized to the target size as a PIL image with
   ``Image.NEAREST`` (source pixel ``floor((x + 0.5) * in / out)``, positions accumulated
   in double as Pillow's ``ImagingScaleAffine`` does), and each query's area is counted.
4. While some query owns at most 4 pixels (``area[i] <= 4``): those queries are removed
   and steps 1 and 3 are redone without step 2. Segments are the remaining queries, in
   query order.

The quirk this keeps: after the merge of step 2 every stuff query but the first of its
class owns no pixel, so step 4 removes it and the recomputed map assigns its pixels by the
argmax again, without merging: a class predicted by two stuff queries ends up as one
segment whose pixels are those the first query wins against the remaining queries.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from .segments import PanopticSegments, empty_segments

__all__ = ["detr_panoptic", "pil_nearest_indices"]


@lru_cache(maxsize=64)
def _pil_nearest(size_in: int, size_out: int) -> tuple[int, ...]:
    step = size_in / size_out  # Pillow: a[0] = (double)(box[2] - box[0]) / xsize
    pos = step * 0.5  # xo = a[2] + a[0] * 0.5, then xo += a[0] per output pixel
    out = []
    for _ in range(size_out):
        out.append(min(max(int(pos), 0), size_in - 1))  # COORD(v): truncation of a non-negative double
        pos += step
    return tuple(out)


def pil_nearest_indices(size_in: int, size_out: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(size_out,) int64`` source index of each output pixel of a Pillow ``NEAREST`` resize."""
    if size_in < 1 or size_out < 1:
        raise ValueError(f"nearest resize from {size_in} to {size_out} pixels; expected sizes >= 1")
    return torch.tensor(_pil_nearest(size_in, size_out), dtype=torch.int64, device=device)


def detr_panoptic(
    mask_logits: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    is_thing: torch.Tensor,
    *,
    processed_size: tuple[int, int] | None = None,
    target_size: tuple[int, int] | None = None,
    small_area_threshold: int = 4,
) -> PanopticSegments:
    """Panoptic id map from the kept queries of DETR (the authors' ``PostProcessPanoptic``).

    Args:
        mask_logits: ``(K, h, w) float`` mask logits of the kept queries, in query order.
        scores: ``(K,) float`` class probability of each query (carried to the output).
        classes: ``(K,) int`` class index of each query (stuff queries of one class merge
            in the first pass); carried to the output as `category_ids`.
        is_thing: ``(K,) bool``.
        processed_size: ``(H', W')`` size the logits are resized to first (the network's
            input size before batching); None keeps ``(h, w)``.
        target_size: ``(H, W)`` of the output (nearest resize); None keeps the processed size.
        small_area_threshold: queries owning at most this many pixels (at the target size)
            are removed and the map recomputed; the authors' 4.
    Returns:
        `PanopticSegments` of size ``target_size``: the remaining queries in query order,
        every pixel assigned (all void when no query remains).
    """
    if small_area_threshold < 0:
        raise ValueError(f"small_area_threshold is {small_area_threshold}; expected >= 0")
    k = int(mask_logits.shape[0])
    device = mask_logits.device
    logits = mask_logits.float()
    if processed_size is not None and tuple(logits.shape[-2:]) != tuple(processed_size) and k:
        logits = F.interpolate(logits[None], size=tuple(processed_size), mode="bilinear", align_corners=False)[0]
    h, w = (int(s) for s in (processed_size or logits.shape[-2:]))
    height, width = (int(s) for s in (target_size or (h, w)))
    if k == 0:
        return empty_segments(height, width, device)
    rows = pil_nearest_indices(h, height, device)  # [H]
    cols = pil_nearest_indices(w, width, device)  # [W]
    flat = logits.reshape(k, h * w)  # [K, h*w]

    # First pass merges stuff queries of one class into the first one of the class.
    classes = classes.to(device=device, dtype=torch.int64)
    things = is_thing.to(device)
    query = torch.arange(k, device=device)
    same = (classes[:, None] == classes[None, :]) & ~things[:, None] & ~things[None, :]  # [K, K]
    same |= torch.eye(k, dtype=torch.bool, device=device)  # a thing keeps its own pixels
    merge_to = torch.where(same, query[None, :], torch.full_like(same, k, dtype=torch.int64)).amin(1)  # [K]

    alive = torch.arange(k, device=device)  # indices of the remaining queries
    lut = merge_to
    while True:
        # the authors' float32 softmax over a (pixels, queries) view: its ties decide pixels
        owner = flat[alive].transpose(0, 1).softmax(-1).argmax(-1)  # [h*w] position in `alive`
        owner = lut[owner].view(h, w)
        owner = owner[rows][:, cols]  # [H, W] nearest resize to the target size
        n = int(alive.shape[0])
        area = torch.zeros(n, dtype=torch.int64, device=device).scatter_add_(
            0, owner.reshape(-1), torch.ones_like(owner.reshape(-1))
        )
        small = area <= small_area_threshold
        if not bool(small.any()):
            break
        alive = alive[~small]
        if alive.numel() == 0:
            return empty_segments(height, width, device)
        lut = torch.arange(int(alive.shape[0]), device=device)  # later passes do not merge
    return PanopticSegments(
        id_map=(owner + 1).to(torch.int32),
        category_ids=classes[alive],
        scores=scores.to(device=device, dtype=torch.float32)[alive].clamp(0, 1),
        is_thing=things[alive],
    )
