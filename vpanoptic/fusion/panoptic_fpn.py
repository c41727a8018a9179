"""Instances + a semantic map → panoptic: detectron2's Panoptic FPN rule.

The rule of ``combine_semantic_and_instance_outputs`` in facebookresearch/detectron2
``detectron2/modeling/meta_arch/panoptic_fpn.py`` (read at commit 39d18584), itself after
panopticapi's ``combine_semantic_and_instance_predictions.py``:

1. Instances in decreasing score; the first one scoring below ``score_threshold`` ends
   the pass (``score < thresh: break``).
2. An instance with an empty mask is skipped; one whose mask is more than
   ``overlap_threshold`` already taken (``intersect / area > overlap``, float64 as in
   Python) is skipped; otherwise it takes its free pixels only.
3. Stuff: each semantic label in increasing order, except the "things" label, takes its
   free pixels when there are at least ``stuff_area_threshold`` of them (``area < limit``
   is skipped).

Defaults are detectron2's ``MODEL.PANOPTIC_FPN.COMBINE`` (``detectron2/config/defaults.py``):
``INSTANCES_CONFIDENCE_THRESH`` 0.5, ``OVERLAP_THRESH`` 0.5, ``STUFF_AREA_LIMIT`` 4096.
Departures, all where detectron2 leaves the result unspecified or keeps an empty segment:
equal scores keep the detector's order (a stable sort; ``argsort(-scores)`` is not), and a
stuff class with no free pixel never becomes a segment (detectron2 lists one with area 0
when the limit is 0), nor does a thing left with no free pixel (possible only with
``overlap_threshold`` 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .segments import PanopticSegments, compact

__all__ = ["fuse_things_and_stuff"]


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
    """Paste things by score, then fill the free pixels with stuff (detectron2's rule).

    Args:
        masks: ``(N, H, W) bool`` instance masks.
        scores: ``(N,) float`` detection scores in [0, 1].
        categories: ``(N,) int`` labels of the instances (carried to the output as they are).
        semantic: ``(H, W) int`` semantic label per pixel, or None (things only). Values not
            in `stuff_ids` (a "things" label, void) never become stuff.
        stuff_ids: the semantic labels taken as stuff, in the order the rule visits them
            (detectron2: increasing semantic-head index).
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
    order = torch.sort(scores, descending=True, stable=True).indices
    masks_sorted = masks[order].to(torch.bool)  # [N, H, W]
    scores_sorted = scores[order].to(torch.float32)
    # detectron2 compares Python floats: the score and the overlap ratio in float64
    above = scores_sorted.double() >= score_threshold  # [N]; sorted, so the first False ends the pass
    above = torch.cumprod(above.to(torch.int32), 0).bool()
    kept = torch.zeros(n, dtype=torch.bool, device=device)
    occupied = torch.zeros((h, w), dtype=torch.bool, device=device)
    for k in range(n):  # sequential by definition; tensor decisions keep the device free of syncs
        mask = masks_sorted[k]
        area = mask.sum()
        overlap = (mask & occupied).sum()
        too_hidden = overlap.double() / area.clamp(min=1).double() > overlap_threshold
        keep = above[k] & (area > 0) & ~too_hidden
        new = mask & ~occupied & keep
        id_map = torch.where(new, torch.full_like(id_map, k + 1), id_map)
        occupied |= new
        kept[k] = keep & new.any()  # with overlap_threshold 1 a fully hidden one would own nothing

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
    things = torch.cat(
        [torch.ones(n, dtype=torch.bool, device=device), torch.zeros(s, dtype=torch.bool, device=device)]
    )
    return compact(id_map, valid, cats, scs, things)
