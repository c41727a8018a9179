"""Online mask-IoU tracker with Hungarian assignment, gated by class.

Each track keeps the mask of its last observation in a track memory (an index map painted
in order of recency). A new frame's things are matched to the tracks by mask IoU with
`scipy.optimize.linear_sum_assignment`; tracks not seen for `max_lost_seconds` (frame
timestamps, not frame counts) are removed and their ids are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..types import PanopticFrame
from .base import Tracker
from .cost import mask_iou_from_index_maps

__all__ = ["HungarianTracker", "PassThroughTracker"]


@dataclass
class _Track:
    track_id: int
    category_id: int
    last_seen: float  # frame time in seconds
    hits: int = 1


class HungarianTracker(Tracker):
    """Mask IoU + Hungarian association.

    Args:
        iou_threshold: minimum IoU of an accepted match, in (0, 1].
        max_lost_seconds: a track unmatched for longer than this (frame time) is removed.
        device: where the IoU histogram is computed; defaults to the id map's device.
    """

    def __init__(self, *, iou_threshold: float = 0.3, max_lost_seconds: float = 1.0, device: str | torch.device | None = None):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        if max_lost_seconds < 0:
            raise ValueError(f"max_lost_seconds is {max_lost_seconds}; expected >= 0")
        self.iou_threshold = float(iou_threshold)
        self.max_lost_seconds = float(max_lost_seconds)
        self.device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        self._next_id = 1
        self._tracks: list[_Track] = []
        self._memory: torch.Tensor | None = None  # (H, W) int32, 0 = none, k = self._tracks[k-1]

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
        if self.device is not None:
            id_map = id_map.to(self.device)
        now = pf.frame.time

        # Step 1: index map of the current things (1..M), stuff and void 0.
        thing_idx = np.flatnonzero(pf.is_thing)
        lut = torch.zeros(int(pf.segment_ids.max(initial=0)) + 1, dtype=torch.int32, device=id_map.device)
        if thing_idx.size:
            lut[torch.as_tensor(pf.segment_ids[thing_idx], dtype=torch.long, device=id_map.device)] = torch.arange(
                1, thing_idx.size + 1, dtype=torch.int32, device=id_map.device
            )
        cur = lut[id_map.long()]  # [H, W]
        if self._memory is not None and self._memory.shape != cur.shape:
            raise ValueError(f"frame size changed from {tuple(self._memory.shape)} to {tuple(cur.shape)}; reset() the tracker first")

        # Step 2: IoU between remembered track masks and current things, gated by class.
        matches: list[tuple[int, int]] = []
        if self._tracks and thing_idx.size and self._memory is not None:
            iou = mask_iou_from_index_maps(self._memory, cur, len(self._tracks), thing_idx.size).cpu().numpy()
            track_cats = np.array([t.category_id for t in self._tracks])
            same_class = track_cats[:, None] == pf.category_ids[thing_idx][None, :]
            cost = np.where(same_class, 1.0 - iou, 1.0 + 1e-3)
            # Step 3: Hungarian assignment, then the IoU gate.
            rows, cols = linear_sum_assignment(cost)
            matches = [(r, c) for r, c in zip(rows, cols) if same_class[r, c] and iou[r, c] >= self.iou_threshold]

        # Step 4: matched things inherit their track's id; the rest start new tracks.
        track_ids = np.full(len(pf), -1, np.int32)
        order = np.zeros(thing_idx.size, np.int64)  # memory slot of each current thing
        matched = set()
        for r, c in matches:
            t = self._tracks[r]
            t.last_seen = now
            t.hits += 1
            track_ids[thing_idx[c]] = t.track_id
            order[c] = r
            matched.add(c)
        for c in range(thing_idx.size):
            if c in matched:
                continue
            self._tracks.append(_Track(self._next_id, int(pf.category_ids[thing_idx[c]]), now))
            track_ids[thing_idx[c]] = self._next_id
            order[c] = len(self._tracks) - 1
            self._next_id += 1

        # Step 5: forget tracks lost for too long; repaint the memory (current masks on top of
        # the last masks of tracks that are lost but still alive).
        alive = [k for k, t in enumerate(self._tracks) if now - t.last_seen <= self.max_lost_seconds]
        remap = torch.zeros(len(self._tracks) + 1, dtype=torch.int32, device=cur.device)
        remap[torch.as_tensor(alive, dtype=torch.long, device=cur.device) + 1] = torch.arange(
            1, len(alive) + 1, dtype=torch.int32, device=cur.device
        )
        slot_of_cur = torch.zeros(thing_idx.size + 1, dtype=torch.long, device=cur.device)
        slot_of_cur[1:] = torch.as_tensor(order, dtype=torch.long, device=cur.device) + 1
        painted = slot_of_cur[cur.long()]  # [H, W] slot+1 of the current things
        if self._memory is not None:
            # Keep old pixels only for tracks that were not seen in this frame.
            lost = torch.ones(len(self._tracks) + 1, dtype=torch.bool, device=cur.device)
            lost[0] = False
            lost[torch.as_tensor(order, dtype=torch.long, device=cur.device) + 1] = False
            old = self._memory.long()
            painted = torch.where(painted > 0, painted, torch.where(lost[old], old, torch.zeros_like(old)))
        self._memory = remap[painted]
        self._tracks = [self._tracks[k] for k in alive]

        pf.track_ids = track_ids
        return pf


class PassThroughTracker(Tracker):
    """No association: keeps whatever track ids the model gave (per-frame ids otherwise)."""

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        return pf

    def reset(self) -> None:
        pass
