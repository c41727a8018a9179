"""Online mask-IoU tracker with Hungarian assignment, gated by class.

Each track keeps the mask of its last observation in a track memory (an index map painted
in order of recency) and a velocity. Before matching, every remembered mask is moved by its
track's velocity times the time since it was seen (so fast objects, a moving camera and
short occlusions still overlap their prediction). A new frame's things are then matched to
the tracks by mask IoU with `scipy.optimize.linear_sum_assignment`; tracks not seen for `max_lost_seconds` (frame
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
    centroid: np.ndarray  # (2,) float64 (y, x) pixels at last_seen
    velocity: np.ndarray  # (2,) float64 (y, x) pixels per second
    area: float  # pixels at last_seen
    hits: int = 1


def _centroids(index_map: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) centroids ``(n, 2) float64`` (NaN if empty) and areas ``(n,)`` of masks 1..n."""
    h, w = index_map.shape
    flat = index_map.reshape(-1).long()
    ys = torch.arange(h, device=index_map.device, dtype=torch.float64).repeat_interleave(w)
    xs = torch.arange(w, device=index_map.device, dtype=torch.float64).repeat(h)
    area = torch.bincount(flat, minlength=n + 1)[1:].double()
    cy = torch.bincount(flat, weights=ys, minlength=n + 1)[1:] / area
    cx = torch.bincount(flat, weights=xs, minlength=n + 1)[1:] / area
    return torch.stack([cy, cx], 1).cpu().numpy(), area.cpu().numpy()


def _shift_masks(index_map: torch.Tensor, shifts: np.ndarray) -> torch.Tensor:
    """Move mask k of an index map by ``shifts[k-1] = (dy, dx)`` pixels (rounded).

    O(masked pixels): every labelled pixel is moved by its mask's shift; pixels leaving the
    frame are dropped, and where two moved masks land on one pixel one of them wins.
    """
    if not np.any(np.abs(shifts) >= 0.5):
        return index_map
    h, w = index_map.shape
    ys, xs = torch.nonzero(index_map, as_tuple=True)
    labels = index_map[ys, xs].long()
    table = torch.zeros((shifts.shape[0] + 1, 2), dtype=torch.long, device=index_map.device)
    table[1:] = torch.as_tensor(np.rint(shifts), dtype=torch.long, device=index_map.device)
    ny, nx = ys + table[labels, 0], xs + table[labels, 1]
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    out = torch.zeros_like(index_map)
    out[ny[inside], nx[inside]] = index_map[ys[inside], xs[inside]]
    return out


class HungarianTracker(Tracker):
    """Mask IoU + Hungarian association, with constant-velocity mask prediction.

    Args:
        iou_threshold: minimum IoU between a track's predicted mask and a segment for a match.
        max_lost_seconds: a track unmatched for longer than this (frame time) is removed.
        velocity_smoothing: weight of the newest displacement in the per-track velocity
            estimate (exponential moving average), in (0, 1]; 1 = last displacement only.
        max_center_distance: second pass for what IoU left unmatched: a track and a segment
            of the same class whose predicted centres are closer than this many object sizes
            (sqrt of the larger area) are matched. Catches small or thin objects that move
            more than their own width per frame. 0 disables it.
        max_area_ratio: the second pass only pairs masks whose areas differ by less than this factor.
        device: where the IoU histogram is computed; defaults to the id map's device.
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        max_lost_seconds: float = 1.0,
        velocity_smoothing: float = 0.5,
        max_center_distance: float = 1.0,
        max_area_ratio: float = 2.5,
        device: str | torch.device | None = None,
    ):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        if max_lost_seconds < 0:
            raise ValueError(f"max_lost_seconds is {max_lost_seconds}; expected >= 0")
        if not 0 < velocity_smoothing <= 1:
            raise ValueError(f"velocity_smoothing is {velocity_smoothing}; expected 0 < x <= 1")
        self.iou_threshold = float(iou_threshold)
        self.max_lost_seconds = float(max_lost_seconds)
        if max_center_distance < 0 or max_area_ratio < 1:
            raise ValueError("max_center_distance must be >= 0 and max_area_ratio >= 1")
        self.velocity_smoothing = float(velocity_smoothing)
        self.max_center_distance = float(max_center_distance)
        self.max_area_ratio = float(max_area_ratio)
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
        n_cur = int(thing_idx.size)
        lut = torch.zeros(int(pf.segment_ids.max(initial=0)) + 1, dtype=torch.int32, device=id_map.device)
        if n_cur:
            lut[torch.as_tensor(pf.segment_ids[thing_idx], dtype=torch.long, device=id_map.device)] = torch.arange(
                1, n_cur + 1, dtype=torch.int32, device=id_map.device
            )
        cur = lut[id_map.long()]  # [H, W]
        if self._memory is not None and self._memory.shape != cur.shape:
            raise ValueError(f"frame size changed from {tuple(self._memory.shape)} to {tuple(cur.shape)}; reset() the tracker first")
        cur_centroids, cur_areas = _centroids(cur, n_cur)  # [M, 2], [M]

        # Step 2: predict where each track's last mask is now (constant velocity).
        matches: list[tuple[int, int]] = []
        if self._tracks and n_cur and self._memory is not None:
            shifts = np.stack([t.velocity * (now - t.last_seen) for t in self._tracks])  # [T, 2]
            predicted = _shift_masks(self._memory, shifts)
            # Step 3: IoU of predicted track masks with current things, gated by class.
            iou = mask_iou_from_index_maps(predicted, cur, len(self._tracks), n_cur).cpu().numpy()  # [T, M]
            track_cats = np.array([t.category_id for t in self._tracks])
            same_class = track_cats[:, None] == pf.category_ids[thing_idx][None, :]
            cost = np.where(same_class, 1.0 - iou, 1.0 + 1e-3)
            # Step 4: Hungarian assignment, then the IoU gate.
            rows, cols = linear_sum_assignment(cost)
            matches = [(r, c) for r, c in zip(rows, cols) if same_class[r, c] and iou[r, c] >= self.iou_threshold]
            # Step 4b: centre-distance pass over what is still unmatched.
            if self.max_center_distance > 0:
                matches += self._match_by_distance(matches, same_class, cur_centroids, cur_areas, now)

        # Step 5: matched things continue their track (velocity updated); the rest start new tracks.
        track_ids = np.full(len(pf), -1, np.int32)
        slot = np.zeros(n_cur, np.int64)  # memory slot (track index) of each current thing
        matched = np.zeros(n_cur, bool)
        a = self.velocity_smoothing
        for r, c in matches:
            t = self._tracks[r]
            dt = now - t.last_seen
            if dt > 0 and np.isfinite(cur_centroids[c]).all():
                step = (cur_centroids[c] - t.centroid) / dt
                t.velocity = step if t.hits == 1 else a * step + (1 - a) * t.velocity
            t.centroid = cur_centroids[c]
            t.area = float(cur_areas[c])
            t.last_seen = now
            t.hits += 1
            track_ids[thing_idx[c]] = t.track_id
            slot[c] = r
            matched[c] = True
        for c in np.flatnonzero(~matched):
            self._tracks.append(
                _Track(self._next_id, int(pf.category_ids[thing_idx[c]]), now, cur_centroids[c], np.zeros(2), float(cur_areas[c]))
            )
            track_ids[thing_idx[c]] = self._next_id
            slot[c] = len(self._tracks) - 1
            self._next_id += 1

        # Step 6: forget tracks lost for too long; repaint the memory: current masks on top of
        # the last masks of tracks that are lost but still alive.
        alive = [k for k, t in enumerate(self._tracks) if now - t.last_seen <= self.max_lost_seconds]
        dev = cur.device
        remap = torch.zeros(len(self._tracks) + 1, dtype=torch.int32, device=dev)
        remap[torch.as_tensor(alive, dtype=torch.long, device=dev) + 1] = torch.arange(1, len(alive) + 1, dtype=torch.int32, device=dev)
        slot_of_cur = torch.zeros(n_cur + 1, dtype=torch.long, device=dev)
        slot_of_cur[1:] = torch.as_tensor(slot, dtype=torch.long, device=dev) + 1
        painted = slot_of_cur[cur.long()]  # [H, W] track slot + 1 of the current things
        if self._memory is not None:
            lost = torch.ones(len(self._tracks) + 1, dtype=torch.bool, device=dev)
            lost[0] = False
            lost[slot_of_cur[1:]] = False
            old = self._memory.long()
            painted = torch.where(painted > 0, painted, torch.where(lost[old], old, torch.zeros_like(old)))
        self._memory = remap[painted]
        self._tracks = [self._tracks[k] for k in alive]

        pf.track_ids = track_ids
        return pf

    def _match_by_distance(self, matches, same_class, centroids, areas, now) -> list[tuple[int, int]]:
        """Hungarian on normalised centre distance between unmatched tracks and segments."""
        rows = np.setdiff1d(np.arange(same_class.shape[0]), [r for r, _ in matches])
        cols = np.setdiff1d(np.arange(same_class.shape[1]), [c for _, c in matches])
        if not rows.size or not cols.size:
            return []
        tracks = [self._tracks[r] for r in rows]
        pred = np.stack([t.centroid + t.velocity * (now - t.last_seen) for t in tracks])  # [R, 2]
        t_area = np.array([t.area for t in tracks])  # [R]
        c_area = areas[cols]  # [C]
        dist = np.linalg.norm(pred[:, None, :] - centroids[cols][None, :, :], axis=2)  # [R, C]
        scale = np.sqrt(np.maximum(t_area[:, None], c_area[None, :]))
        norm = dist / np.maximum(scale, 1.0)
        ratio = np.maximum(t_area[:, None], c_area[None, :]) / np.maximum(np.minimum(t_area[:, None], c_area[None, :]), 1.0)
        ok = same_class[np.ix_(rows, cols)] & (ratio <= self.max_area_ratio) & (norm <= self.max_center_distance)
        ok &= np.isfinite(norm)
        if not ok.any():
            return []
        cost = np.where(ok, norm, 1e6)
        r_idx, c_idx = linear_sum_assignment(cost)
        return [(int(rows[r]), int(cols[c])) for r, c in zip(r_idx, c_idx) if ok[r, c]]


class PassThroughTracker(Tracker):
    """No association: keeps whatever track ids the model gave (per-frame ids otherwise)."""

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        return pf

    def reset(self) -> None:
        pass
