"""Baseline trackers for comparison: greedy previous-frame IoU, and pass-through.

`GreedyTracker` is the association most video demos use (Detectron2's VideoVisualizer):
each thing of the new frame takes the id of the previous frame's thing of the same class
that it overlaps most, greedily by decreasing mask IoU, if that IoU reaches a threshold.
No memory beyond one frame, no motion model.
"""

from __future__ import annotations

import numpy as np
import torch

from ..types import PanopticFrame
from .base import Tracker, torch_single_thread
from .cost import mask_iou_from_index_maps, thing_label_map

__all__ = ["GreedyTracker", "PassThroughTracker"]


class GreedyTracker(Tracker):
    """Greedy previous-frame mask-IoU association, gated by class.

    Args:
        iou_threshold: minimum mask IoU with a thing of the previous frame to take its id, in (0, 1].
        device: where the IoU histogram is computed; defaults to the id map's device.
    """

    def __init__(self, *, iou_threshold: float = 0.5, device: str | torch.device | None = None):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        self.iou_threshold = float(iou_threshold)
        self.device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        self._next_id = 1
        self._prev_labels: torch.Tensor | None = None  # (H*W,) int64 thing label 0..P
        self._prev_ids = np.zeros(0, np.int64)  # (P,) track id of each previous label
        self._prev_cats = np.zeros(0, np.int64)  # (P,) category id

    @property
    def num_tracks(self) -> int:
        return int(self._prev_ids.size)

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        with torch_single_thread():  # small ops: a team of threads costs more than it saves
            return self._update(pf)

    def _update(self, pf: PanopticFrame) -> PanopticFrame:
        id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
        if self.device is not None:
            id_map = id_map.to(self.device)
        thing_idx = np.flatnonzero(pf.is_thing)
        labels = thing_label_map(id_map, pf.segment_ids[thing_idx])  # (H*W,) 0..M
        cats = pf.category_ids[thing_idx].astype(np.int64)
        n_cur = thing_idx.size
        ids = np.zeros(n_cur, np.int64)
        if self._prev_labels is not None and self._prev_labels.shape != labels.shape:
            raise ValueError("frame size changed; reset() the tracker first")
        if self._prev_labels is not None and n_cur and self._prev_ids.size:
            iou = mask_iou_from_index_maps(self._prev_labels, labels, self._prev_ids.size, n_cur).cpu().numpy()
            iou[self._prev_cats[:, None] != cats[None, :]] = 0.0
            order = np.argsort(-iou, axis=None)
            used_p, used_c = set(), set()
            for flat in order:
                p, c = divmod(int(flat), n_cur)
                if iou[p, c] < self.iou_threshold:
                    break
                if p in used_p or c in used_c:
                    continue
                used_p.add(p)
                used_c.add(c)
                ids[c] = self._prev_ids[p]
        for c in np.flatnonzero(ids == 0):
            ids[c] = self._next_id
            self._next_id += 1
        track_ids = np.full(len(pf), -1, np.int32)
        track_ids[thing_idx] = ids
        self._prev_labels, self._prev_ids, self._prev_cats = labels, ids, cats
        pf.track_ids = track_ids
        return pf


class PassThroughTracker(Tracker):
    """No association: keeps whatever track ids the model gave (per-frame ids otherwise)."""

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        return pf

    def reset(self) -> None:
        pass
