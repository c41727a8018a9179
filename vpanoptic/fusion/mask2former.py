"""Query masks → panoptic: Mask2Former's ``panoptic_inference``.

The rule of ``MaskFormer.panoptic_inference`` in facebookresearch/Mask2Former
``mask2former/maskformer_model.py`` (read at commit 161be514), applied to the queries the
caller kept (class score above ``OBJECT_MASK_THRESHOLD``, not "no object"):

1. Each pixel goes to the query with the highest ``score × sigmoid(mask)`` (first on ties).
2. Queries in order: one is valid when it wins a pixel, its own mask (``prob >= 0.5``) is
   not empty, it wins a pixel of its own mask, and ``won / own >= overlap_threshold``
   (float64, as the Python division there).
3. A valid query's segment is the pixels it wins inside its own mask; the others stay void.
   Stuff queries of one class share the segment of the first valid one; a thing is one
   segment per query. Segment ids follow the first valid query of each segment.

Defaults are the panoptic configs' ``TEST.OBJECT_MASK_THRESHOLD`` 0.8 and
``TEST.OVERLAP_THRESHOLD`` 0.8 (e.g. ``configs/coco/panoptic-segmentation/
maskformer2_R50_bs16_50ep.yaml``); the 0.5 mask threshold is written in the function.
"""

from __future__ import annotations

import torch

from .segments import PanopticSegments, empty_segments

__all__ = ["combine_query_masks"]


def combine_query_masks(
    mask_probs: torch.Tensor,
    scores: torch.Tensor,
    categories: torch.Tensor,
    is_thing: torch.Tensor,
    *,
    mask_threshold: float = 0.5,
    overlap_threshold: float = 0.8,
) -> PanopticSegments:
    """Panoptic id map from the kept queries of a mask-classification model (Mask2Former's rule).

    Args:
        mask_probs: ``(K, H, W) float`` mask probabilities in [0, 1] (sigmoid of mask logits).
        scores: ``(K,) float`` class confidence of each query.
        categories: ``(K,) int`` class of each query (stuff queries of one class merge);
            carried to the output as it is.
        is_thing: ``(K,) bool``.
        mask_threshold: a pixel belongs to its query only where the query's probability reaches it.
        overlap_threshold: a query is dropped when the pixels it wins are less than this
            fraction of its own mask (``prob >= mask_threshold``).
    Returns:
        `PanopticSegments` in Mask2Former's segment order; a merged stuff segment's score
        is the best of its queries.
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
    ratio = won_area.double() / original_area.clamp(min=1).double()
    valid = (won_area > 0) & (original_area > 0) & (final_area > 0) & ~(ratio < overlap_threshold)

    # Group: a thing is its own group, stuff groups by class; number groups by first valid query.
    cats = categories.to(torch.int64)
    query = torch.arange(k, device=device)
    key = torch.where(is_thing.to(device), query, k + cats - cats.min())  # [K]
    uniq, inverse = torch.unique(key[valid], return_inverse=True)  # [G], [V]
    g = int(uniq.shape[0])
    if g == 0:
        return empty_segments(h, w, device)
    first = torch.full((g,), k, dtype=torch.int64, device=device).scatter_reduce_(
        0, inverse, query[valid], reduce="amin"
    )
    rank = torch.empty(g, dtype=torch.int64, device=device)
    rank[torch.argsort(first)] = torch.arange(1, g + 1, device=device)
    seg_of_query = torch.zeros(k, dtype=torch.int64, device=device)
    seg_of_query[valid] = rank[inverse]  # [K] 1..G, 0 for dropped queries
    id_map = torch.where(strong, seg_of_query[flat.view(h, w)], torch.zeros_like(owner)).to(torch.int32)
    seg_cats = torch.zeros(g + 1, dtype=torch.int64, device=device).scatter_(0, seg_of_query, cats)[1:]
    seg_scores = torch.zeros(g + 1, dtype=torch.float32, device=device).scatter_reduce_(
        0, seg_of_query, scores.float(), reduce="amax", include_self=False
    )[1:]
    seg_thing = torch.zeros(g + 1, dtype=torch.bool, device=device).scatter_(0, seg_of_query, is_thing.to(device))[1:]
    return PanopticSegments(id_map, seg_cats, seg_scores.clamp(0, 1), seg_thing)
