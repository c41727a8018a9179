"""Pure functions that turn model outputs into one panoptic id map, on the tensors' device.

- `fuse_things_and_stuff`: instance masks + a semantic map → panoptic (the Panoptic FPN /
  EfficientPS heuristic of Kirillov et al. 2019, detectron2
  ``combine_semantic_and_instance_outputs``): things are pasted in decreasing score, a thing
  mostly hidden by higher-scoring ones is dropped, and stuff fills the pixels left free where
  its area is large enough.
- `combine_query_masks`: per-query soft masks + class scores → panoptic (the MaskFormer /
  Mask2Former / DETR rule): each pixel goes to the query with the highest score × mask
  probability; a query that keeps too little of its own mask is dropped; stuff queries of
  one class merge into one segment.

Both take and return torch tensors on any device and never move data to the host except
for the final compaction of the (small) segment table. No state, no model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

__all__ = ["PanopticSegments", "fuse_things_and_stuff", "combine_query_masks", "empty_segments"]


@dataclass
class PanopticSegments:
    """A fused panoptic result, on one device.

    id_map: ``(H, W) int32``, segment ids 1..S, 0 = void.
    category_ids: ``(S,) int64`` dataset category id of segment i+1.
    scores: ``(S,) float32`` in [0, 1].
    is_thing: ``(S,) bool``.
    """

    id_map: torch.Tensor
    category_ids: torch.Tensor
    scores: torch.Tensor
    is_thing: torch.Tensor

    def __len__(self) -> int:
        return int(self.category_ids.shape[0])


def empty_segments(height: int, width: int, device: torch.device | str = "cpu") -> PanopticSegments:
    """An all-void result of size ``(height, width)``."""
    return PanopticSegments(
        id_map=torch.zeros((height, width), dtype=torch.int32, device=device),
        category_ids=torch.zeros(0, dtype=torch.int64, device=device),
        scores=torch.zeros(0, dtype=torch.float32, device=device),
        is_thing=torch.zeros(0, dtype=torch.bool, device=device),
    )


def _compact(
    id_map: torch.Tensor, valid: torch.Tensor, categories: torch.Tensor, scores: torch.Tensor, is_thing: torch.Tensor
) -> PanopticSegments:
    """Renumber candidate ids 1..M (``id_map`` values, 0 = void) to 1..S over the `valid` ones."""
    lut = torch.cumsum(valid.to(torch.int32), 0) * valid  # [M] new id or 0
    lut = torch.cat([lut.new_zeros(1), lut])  # candidate id 0 (void) stays 0
    return PanopticSegments(
        id_map=lut[id_map.long()].to(torch.int32),
        category_ids=categories[valid].to(torch.int64),
        scores=scores[valid].to(torch.float32),
        is_thing=is_thing[valid],
    )


def fuse_things_and_stuff(
    masks: torch.Tensor,
    scores: torch.Tensor,
    categories: torch.Tensor,
    semantic: torch.Tensor | None = None,
    *,
    stuff_ids: Sequence[int] | torch.Tensor = (),
    score_threshold: float = 0.5,
    overlap_threshold: float = 0.5,
    stuff_area_threshold: int = 4096,
    height: int | None = None,
    width: int | None = None,
) -> PanopticSegments:
    """Paste things by score, then fill the free pixels with stuff.

    Args:
        masks: ``(N, H, W) bool`` instance masks.
        scores: ``(N,) float`` detection scores in [0, 1].
        categories: ``(N,) int`` dataset category ids of the instances (things).
        semantic: ``(H, W) int`` dataset category id per pixel, or None (things only). Values
            not in `stuff_ids` (thing classes, a "things" catch-all, void) are ignored.
        stuff_ids: the category ids taken from `semantic` as stuff.
        score_threshold: instances scoring below it are not pasted.
        overlap_threshold: an instance whose pixels are more than this fraction already
            taken by higher-scoring instances is dropped; otherwise only its free pixels are used.
        stuff_area_threshold: a stuff class needs at least this many free pixels to be kept.
        height, width: output size when there is neither a mask nor a semantic map.
    Returns:
        `PanopticSegments`: things first (in decreasing score), then stuff in `stuff_ids` order.
    """
    if not 0 <= overlap_threshold <= 1:
        raise ValueError(f"overlap_threshold is {overlap_threshold}; expected 0 <= x <= 1")
    if stuff_area_threshold < 0:
        raise ValueError(f"stuff_area_threshold is {stuff_area_threshold}; expected >= 0")
    n = int(masks.shape[0])
    if semantic is not None:
        h, w = semantic.shape
        device = semantic.device
    elif masks.dim() == 3 and n > 0:
        h, w = masks.shape[1:]
        device = masks.device
    else:
        if height is None or width is None:
            raise ValueError("fuse_things_and_stuff needs height and width when there are no masks and no semantic map")
        h, w, device = height, width, masks.device
    if n and tuple(masks.shape[1:]) != (h, w):
        raise ValueError(f"masks are {tuple(masks.shape[1:])} but the semantic map is {(h, w)}")
    if not (scores.shape[0] == categories.shape[0] == n):
        raise ValueError(f"{n} masks but {scores.shape[0]} scores and {categories.shape[0]} categories")

    # Step 1: things, in decreasing score; candidate id of the k-th is k+1.
    id_map = torch.zeros((h, w), dtype=torch.int32, device=device)
    order = torch.argsort(scores, descending=True)
    masks_sorted = masks[order].to(torch.bool)  # [N, H, W]
    scores_sorted = scores[order].to(torch.float32)
    kept = torch.zeros(n, dtype=torch.bool, device=device)
    occupied = torch.zeros((h, w), dtype=torch.bool, device=device)
    for k in range(n):  # sequential by definition; tensor decisions keep the device free of syncs
        mask = masks_sorted[k]
        area = mask.sum()
        overlap = (mask & occupied).sum()
        keep = (scores_sorted[k] >= score_threshold) & (area > 0) & (overlap <= overlap_threshold * area)
        new = mask & ~occupied & keep
        id_map = torch.where(new, torch.full_like(id_map, k + 1), id_map)
        occupied |= new
        kept[k] = keep & new.any()

    # Step 2: stuff fills free pixels, one segment per class with enough area.
    stuff = torch.as_tensor(stuff_ids, dtype=torch.int64, device=device).reshape(-1)
    s = int(stuff.shape[0])
    stuff_kept = torch.zeros(s, dtype=torch.bool, device=device)
    if semantic is not None and s:
        size = int(max(int(stuff.max()), 0)) + 1
        lut = torch.full((size + 1,), -1, dtype=torch.int64, device=device)
        lut[stuff] = torch.arange(s, device=device)
        sem = semantic.to(torch.int64)
        sem = torch.where((sem >= 0) & (sem < size), sem, torch.full_like(sem, size))  # out of range → -1
        sidx = lut[sem]  # [H, W] stuff index or -1
        sidx = torch.where(occupied, torch.full_like(sidx, -1), sidx)
        areas = torch.zeros(s + 1, dtype=torch.int64, device=device).scatter_add_(
            0, (sidx + 1).reshape(-1), torch.ones(h * w, dtype=torch.int64, device=device)
        )[1:]
        stuff_kept = areas >= max(stuff_area_threshold, 1)
        take = (sidx >= 0) & stuff_kept[sidx.clamp(min=0)]
        id_map = torch.where(take, (sidx + n + 1).to(torch.int32), id_map)

    valid = torch.cat([kept, stuff_kept])
    cats = torch.cat([categories[order].to(torch.int64), stuff])
    scs = torch.cat([scores_sorted, torch.ones(s, dtype=torch.float32, device=device)])
    things = torch.cat([torch.ones(n, dtype=torch.bool, device=device), torch.zeros(s, dtype=torch.bool, device=device)])
    return _compact(id_map, valid, cats, scs, things)


def combine_query_masks(
    mask_probs: torch.Tensor,
    scores: torch.Tensor,
    categories: torch.Tensor,
    is_thing: torch.Tensor,
    *,
    mask_threshold: float = 0.5,
    overlap_threshold: float = 0.8,
) -> PanopticSegments:
    """Panoptic id map from the kept queries of a mask-classification model.

    Args:
        mask_probs: ``(K, H, W) float`` mask probabilities in [0, 1] (sigmoid of mask logits).
        scores: ``(K,) float`` class confidence of each query.
        categories: ``(K,) int`` dataset category id of each query.
        is_thing: ``(K,) bool``.
        mask_threshold: a pixel belongs to its query only where the query's probability reaches it.
        overlap_threshold: a query is dropped when the pixels it wins are less than this
            fraction of its own mask (``prob >= mask_threshold``).
    Returns:
        `PanopticSegments`: things one segment per query (in query order), then stuff one
        segment per category (in category order; score: the best of its queries).
    """
    if not 0 <= overlap_threshold <= 1:
        raise ValueError(f"overlap_threshold is {overlap_threshold}; expected 0 <= x <= 1")
    k, h, w = mask_probs.shape
    device = mask_probs.device
    if k == 0:
        return empty_segments(h, w, device)
    probs = mask_probs.float()
    owner = (scores.float().view(k, 1, 1) * probs).argmax(0)  # [H, W] winning query
    strong_all = probs >= mask_threshold  # [K, H, W]
    original_area = strong_all.reshape(k, -1).sum(1)  # [K]
    strong = strong_all.gather(0, owner.unsqueeze(0))[0]  # [H, W] winner's own mask holds the pixel
    flat = owner.reshape(-1)
    won_area = torch.zeros(k, dtype=torch.int64, device=device).scatter_add_(0, flat, torch.ones_like(flat))
    final_area = torch.zeros(k, dtype=torch.int64, device=device).scatter_add_(0, flat, strong.reshape(-1).long())
    valid = (won_area > 0) & (original_area > 0) & (final_area > 0) & (won_area >= overlap_threshold * original_area)

    # Stuff queries of one category share a segment; things keep one each.
    cats = categories.to(torch.int64)
    key = torch.where(is_thing, torch.arange(k, device=device), k + cats)  # [K]
    key = torch.where(valid, key, torch.full_like(key, -1))
    uniq, inverse = torch.unique(key, return_inverse=True)  # sorted; -1 first when present
    has_invalid = bool((uniq[0] < 0).item())
    seg_of_query = inverse + (0 if has_invalid else 1)  # [K] 1..S, 0 for invalid
    seg_of_query = torch.where(valid, seg_of_query, torch.zeros_like(seg_of_query))
    n_seg = int(uniq.shape[0]) - (1 if has_invalid else 0)
    lut = torch.cat([seg_of_query.new_zeros(1), seg_of_query])  # query k → lut[k + 1]
    id_map = torch.where(strong, lut[flat.view(h, w) + 1], torch.zeros_like(owner)).to(torch.int32)
    seg_cats = torch.zeros(n_seg + 1, dtype=torch.int64, device=device).scatter_(0, seg_of_query, cats)[1:]
    seg_scores = torch.zeros(n_seg + 1, dtype=torch.float32, device=device).scatter_reduce_(
        0, seg_of_query, scores.float(), reduce="amax", include_self=False
    )[1:]
    seg_thing = torch.zeros(n_seg + 1, dtype=torch.bool, device=device).scatter_(0, seg_of_query, is_thing)[1:]
    return _drop_empty(PanopticSegments(id_map, seg_cats, seg_scores.clamp(0, 1), seg_thing))


def _drop_empty(seg: PanopticSegments) -> PanopticSegments:
    """Remove segments that own no pixel (a stuff query group can lose all its pixels)."""
    s = len(seg)
    if s == 0:
        return seg
    flat = seg.id_map.reshape(-1).long()
    area = torch.zeros(s + 1, dtype=torch.int64, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat))[1:]
    return _compact(seg.id_map, area > 0, seg.category_ids, seg.scores, seg.is_thing)
