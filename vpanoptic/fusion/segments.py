"""The result type of every post-processing rule and the small table operations they share."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PanopticSegments", "compact", "drop_empty", "empty_segments", "map_categories"]


@dataclass
class PanopticSegments:
    """A fused panoptic result, on one device.

    id_map: ``(H, W) int32``, segment ids 1..S, 0 = void.
    category_ids: ``(S,) int64`` dataset category id of segment i+1 (before `map_categories`:
        whatever label the rule was given, e.g. a network class index).
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


def compact(
    id_map: torch.Tensor, valid: torch.Tensor, categories: torch.Tensor, scores: torch.Tensor, is_thing: torch.Tensor
) -> PanopticSegments:
    """Renumber candidate ids 1..M (``id_map`` values, 0 = void) to 1..S over the `valid` ones.

    Candidates that are not valid become void; the order of the valid ones is kept.
    """
    lut = torch.cumsum(valid.to(torch.int32), 0) * valid  # [M] new id or 0
    lut = torch.cat([lut.new_zeros(1), lut])  # candidate id 0 (void) stays 0
    return PanopticSegments(
        id_map=lut[id_map.long()].to(torch.int32),
        category_ids=categories[valid].to(torch.int64),
        scores=scores[valid].to(torch.float32),
        is_thing=is_thing[valid],
    )


def drop_empty(seg: PanopticSegments) -> PanopticSegments:
    """Remove the segments that own no pixel."""
    s = len(seg)
    if s == 0:
        return seg
    flat = seg.id_map.reshape(-1).long()
    area = torch.zeros(s + 1, dtype=torch.int64, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat))[1:]
    return compact(seg.id_map, area > 0, seg.category_ids, seg.scores, seg.is_thing)


def map_categories(seg: PanopticSegments, lut: torch.Tensor | None = None) -> PanopticSegments:
    """Class index → dataset category through `lut` (``(C,) int64``, -1: no category).

    With `lut` None the segments already carry categories, and those below 0 have none.

    A segment whose class has no dataset category is removed and its pixels become void
    (id 0); the other segments keep their pixels and their order. This runs after the
    rule, so such a segment still took part in it as the authors' code has it.
    """
    if len(seg) == 0:
        return seg
    if lut is None:
        return compact(seg.id_map, seg.category_ids >= 0, seg.category_ids, seg.scores, seg.is_thing)
    cats = lut[seg.category_ids.clamp(0, lut.shape[0] - 1)]
    cats = torch.where((seg.category_ids >= 0) & (seg.category_ids < lut.shape[0]), cats, torch.full_like(cats, -1))
    return compact(seg.id_map, cats >= 0, cats, seg.scores, seg.is_thing)
