"""Online mask-IoU tracker with Hungarian assignment, gated by class.

Each track keeps the mask of its last observation and a velocity. The masks live in one
sparse track memory (flat pixel indices + track slot), so the cost of a frame is
proportional to the number of thing pixels, not to the frame size; large frames are
subsampled on a regular grid (`max_pixels`). Every frame:

1. the current things are labelled 1..M on the grid;
2. the camera's motion since the previous frame (background homography) moves every
   remembered pixel and centre (`camera_motion`);
3. each remembered mask is moved by its track's velocity times the time since it was seen
   (`motion_prediction`): fast objects and short occlusions still overlap their prediction;
4. the IoU of predicted masks with current things comes from one histogram (`cost.py`);
5. association: Hungarian on 1 - IoU for confident segments, then the tracks left over
   against low-score segments (`low_score_pass`), then a centre-distance pass for small
   or thin objects that moved more than their own size (`max_center_distance`); in each
   pass the tracks seen a frame ago choose before lost ones (`lost_last`); every pass is
   gated by class and by a minimum IoU (or containment, for masks that grow and shrink);
6. life cycle (`lifecycle.py`): matched tracks update, unmatched segments start tentative
   tracks, tracks unseen for too long (in seconds of frame time) are removed; ids are never
   reused.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..types import PanopticFrame
from .base import Tracker
from .cost import pair_histogram, thing_label_map
from .lifecycle import TrackTable
from .motion import CameraMotionEstimator, warp_points

__all__ = ["HungarianTracker"]

_FORBIDDEN = 1e6  # cost of a pair that may not be matched


def assign(cost: np.ndarray, allowed: np.ndarray, unmatched_cost: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching restricted to `allowed` pairs.

    Args:
        cost: ``(R, C) float`` pair costs; allowed: ``(R, C) bool``.
        unmatched_cost: None: as many allowed pairs as possible, then the least cost. A number
            (above every allowed cost): leaving a row unmatched costs this much, so a set of
            weak pairs never displaces a strong one just to match more rows.
    Returns:
        ``(rows, cols)`` int arrays of the matched pairs (all allowed).
    """
    if not allowed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r_any, c_any = np.flatnonzero(allowed.any(1)), np.flatnonzero(allowed.any(0))
    sub_ok = allowed[np.ix_(r_any, c_any)]
    sub = np.where(sub_ok, cost[np.ix_(r_any, c_any)], _FORBIDDEN if unmatched_cost is None else unmatched_cost)
    rows, cols = linear_sum_assignment(sub)
    ok = sub_ok[rows, cols]
    return r_any[rows[ok]], c_any[cols[ok]]


class HungarianTracker(Tracker):
    """Mask IoU + Hungarian association with camera-motion compensation and motion prediction.

    Args:
        iou_threshold: minimum IoU between a track's predicted mask and a segment for a match.
        min_containment: a pair below `iou_threshold` still matches when the intersection
            covers at least this fraction of the smaller of the two masks (a small object
            eroded or dilated by the model from one frame to the next); 1 = nearly never.
        max_containment_ratio: ... and when their areas differ by at most this factor.
        max_lost_seconds: a confirmed track unmatched for longer than this (frame time) is removed.
        min_hits: frames a track must be matched in to be confirmed (tentative before).
        tentative_max_lost_seconds: a tentative track unmatched for longer than this is removed.
        velocity_smoothing: weight of the newest displacement in the per-track velocity
            estimate (exponential moving average), in (0, 1]; 1 = last displacement only.
        velocity_area_change: a match whose mask area changed by more than this factor
            (partial occlusion: the centre moves, the object need not) does not update the velocity.
        motion_prediction: move remembered masks by their velocity before matching.
        max_predict_seconds: a lost track is extrapolated at its velocity for at most this long,
            then waits there (a long straight-line guess sweeps over other objects).
        static_hypothesis: with motion prediction, also score each remembered mask where it
            was (after camera motion) and keep the better IoU of the two, so that a wrong
            velocity cannot lose a standing object.
        camera_motion: estimate the background homography between frames (OpenCV sparse flow
            + RANSAC, thing pixels masked out) and move remembered masks with it.
        cmc_max_side: longer side (pixels) of the grey image the camera motion is estimated on.
        lost_last: in every pass, the tracks matched in the previous frame choose first and
            lost tracks only get what they leave (a lost track's extrapolated mask cannot
            steal a segment from the track that saw it a frame ago).
        low_score_pass: segments scoring below `high_score_threshold` are matched only after
            the confident ones, to the tracks those left (ByteTrack's second pass, on masks).
        high_score_threshold: the score splitting confident from low-score segments, in [0, 1].
        max_center_distance: last pass for what IoU left unmatched: a track and a segment
            of the same class whose predicted centres are closer than this many object sizes
            (sqrt of the larger area) are matched. Catches small or thin objects that move
            more than their own width per frame. 0 disables it.
        max_area_ratio: the centre pass only pairs masks whose areas differ by less than this factor.
        center_weight: 0: the centre pass runs after the IoU passes, on what they left. > 0:
            one joint pass per score level whose cost is 1 - IoU + center_weight x normalised
            centre distance, pairs allowed by either gate (neighbouring small objects are told
            apart by position as well as overlap).
        small_object_area: in area ratios and object sizes, a mask counts as at least this
            many (grid) pixels: the area of a tiny mask jumps by whole factors from frame to frame.
        max_pixels: frames with more pixels are subsampled on a regular grid (stride
            ceil(sqrt(H*W / max_pixels))) for association; 0 = never.
        device: where the IoU histogram is computed; defaults to the id map's device.
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        min_containment: float = 0.8,
        max_containment_ratio: float = 5.0,
        max_lost_seconds: float = 1.5,
        min_hits: int = 2,
        tentative_max_lost_seconds: float = 0.3,
        velocity_smoothing: float = 0.5,
        velocity_area_change: float = 3.0,
        motion_prediction: bool = True,
        max_predict_seconds: float = 0.5,
        static_hypothesis: bool = False,
        camera_motion: bool = True,
        cmc_max_side: int = 320,
        lost_last: bool = True,
        low_score_pass: bool = True,
        high_score_threshold: float = 0.5,
        max_center_distance: float = 1.0,
        max_area_ratio: float = 4.0,
        center_weight: float = 0.0,
        small_object_area: float = 16.0,
        max_pixels: int = 250_000,
        device: str | torch.device | None = None,
    ):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        if max_lost_seconds < 0 or tentative_max_lost_seconds < 0:
            raise ValueError(
                f"max_lost_seconds is {max_lost_seconds} and tentative_max_lost_seconds {tentative_max_lost_seconds}; expected >= 0"
            )
        if int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits is {min_hits}; expected an integer >= 1")
        if not 0 < velocity_smoothing <= 1:
            raise ValueError(f"velocity_smoothing is {velocity_smoothing}; expected 0 < x <= 1")
        if not 0 <= high_score_threshold <= 1:
            raise ValueError(f"high_score_threshold is {high_score_threshold}; expected 0 <= x <= 1")
        if max_center_distance < 0 or max_area_ratio < 1:
            raise ValueError(
                f"max_center_distance is {max_center_distance} and max_area_ratio {max_area_ratio}; expected >= 0 and >= 1"
            )
        if max_pixels < 0:
            raise ValueError(f"max_pixels is {max_pixels}; expected >= 0 (0 = never subsample)")
        if not 0 < min_containment <= 1:
            raise ValueError(f"min_containment is {min_containment}; expected 0 < x <= 1")
        self.iou_threshold = float(iou_threshold)
        self.min_containment = float(min_containment)
        if max_containment_ratio < 1:
            raise ValueError(f"max_containment_ratio is {max_containment_ratio}; expected >= 1")
        self.max_containment_ratio = float(max_containment_ratio)
        self.max_lost_seconds = float(max_lost_seconds)
        self.min_hits = int(min_hits)
        self.tentative_max_lost_seconds = float(tentative_max_lost_seconds)
        self.velocity_smoothing = float(velocity_smoothing)
        if velocity_area_change < 1:
            raise ValueError(f"velocity_area_change is {velocity_area_change}; expected >= 1")
        self.velocity_area_change = float(velocity_area_change)
        self.motion_prediction = bool(motion_prediction)
        if max_predict_seconds < 0:
            raise ValueError(f"max_predict_seconds is {max_predict_seconds}; expected >= 0")
        self.max_predict_seconds = float(max_predict_seconds)
        self.static_hypothesis = bool(static_hypothesis)
        self.camera_motion = bool(camera_motion)
        self.lost_last = bool(lost_last)
        self.low_score_pass = bool(low_score_pass)
        self.high_score_threshold = float(high_score_threshold)
        self.max_center_distance = float(max_center_distance)
        self.max_area_ratio = float(max_area_ratio)
        if center_weight < 0:
            raise ValueError(f"center_weight is {center_weight}; expected >= 0")
        self.center_weight = float(center_weight)
        self.max_pixels = int(max_pixels)
        if small_object_area < 1:
            raise ValueError(f"small_object_area is {small_object_area}; expected >= 1")
        self.small_object_area = float(small_object_area)
        self.device = None if device is None else torch.device(device)
        self._cmc = CameraMotionEstimator(max_side=cmc_max_side) if self.camera_motion else None
        self.reset()

    def reset(self) -> None:
        self._tracks = TrackTable()
        # Sparse track memory on the association grid: flat pixel index and track slot (row of
        # self._tracks) of every remembered pixel; the last mask of each live track.
        self._mem_pix: torch.Tensor | None = None  # (K,) int64
        self._mem_slot: torch.Tensor | None = None  # (K,) int64
        self._shape: tuple[int, int] | None = None
        self._prev_time = -math.inf
        self.last_homography = np.eye(3)
        if self._cmc is not None:
            self._cmc.reset()

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    @property
    def memory_pixels(self) -> int:
        """Remembered mask pixels (bounded by live tracks x frame size)."""
        return 0 if self._mem_pix is None else int(self._mem_pix.numel())

    def stride(self, height: int, width: int) -> int:
        """Subsampling step of the association grid for an ``height x width`` frame."""
        if not self.max_pixels or height * width <= self.max_pixels:
            return 1
        return math.ceil(math.sqrt(height * width / self.max_pixels))

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
        if self.device is not None:
            id_map = id_map.to(self.device)
        now = float(pf.frame.time)
        shape = tuple(id_map.shape)
        if self._shape is not None and self._shape != shape:
            raise ValueError(f"frame size changed from {self._shape} to {shape}; reset() the tracker first")
        self._shape = shape
        tracks = self._tracks

        # Step 1: label the current things 1..M on the grid (stuff and void 0).
        s = self.stride(*shape)
        grid = id_map[::s, ::s].contiguous() if s > 1 else id_map
        height, width = grid.shape
        thing_idx = np.flatnonzero(pf.is_thing)
        n_cur = int(thing_idx.size)
        cats = pf.category_ids[thing_idx].astype(np.int64)  # [M]
        scores = pf.scores[thing_idx]  # [M]
        cur = thing_label_map(grid, pf.segment_ids[thing_idx])  # [h*w] in 0..M
        fg = torch.nonzero(cur).squeeze(1)  # [F] thing pixels
        fg_label = cur.index_select(0, fg)  # [F] in 1..M
        cur_area_t = torch.bincount(fg_label, minlength=n_cur + 1)[1:].double()  # [M]
        cy = torch.bincount(fg_label, weights=(fg // width).double(), minlength=n_cur + 1)[1:] / cur_area_t
        cx = torch.bincount(fg_label, weights=(fg % width).double(), minlength=n_cur + 1)[1:] / cur_area_t
        centroids = torch.stack([cy, cx], 1).cpu().numpy()  # [M, 2] (y, x)
        areas = cur_area_t.cpu().numpy()  # [M]

        # Step 2: camera motion moves every remembered pixel and centre into this frame.
        if self._cmc is not None:
            # thing mask at about the estimator's working size (strided: no resize of the full map)
            step = max(1, height // self._cmc.working_size(height, width)[0])
            things = (cur.reshape(height, width)[::step, ::step] > 0).cpu().numpy()
            h_full = self._cmc.estimate(pf.frame.image, things)
            self.last_homography = h_full
            if len(tracks) and not np.allclose(h_full, np.eye(3)):
                self._warp_memory(h_full, s, height, width)

        # Step 3-4: IoU of predicted track masks with current things, gated by class.
        n_tracks = len(tracks)
        iou = np.zeros((n_tracks, n_cur))
        contain = np.zeros((n_tracks, n_cur))
        if n_tracks and n_cur and self._mem_pix is not None and self._mem_pix.numel():
            dt = np.minimum(now - tracks.last_seen, self.max_predict_seconds)  # [T]
            zero = np.zeros((n_tracks, 2))
            hypotheses = [tracks.velocity * dt[:, None]] if self.motion_prediction else [zero]
            if self.motion_prediction and self.static_hypothesis:
                hypotheses.append(zero)
            for shifts in hypotheses:
                iou_h, contain_h = self._overlap(shifts, cur, cur_area_t, n_cur, height, width)
                iou, contain = np.maximum(iou, iou_h), np.maximum(contain, contain_h)
        same_class = tracks.categories[:, None] == cats[None, :]  # [T, M]

        # Step 5: association passes; each pass sees only what earlier passes left.
        track_of = np.full(n_cur, -1, np.int64)  # matched track slot per current thing
        free_t = np.ones(n_tracks, bool)
        if n_tracks and n_cur:
            ratio = self._area_ratio(tracks.area, areas)  # [T, M]
            contained = (contain >= self.min_containment) & (ratio <= self.max_containment_ratio)
            ok_iou = same_class & ((iou >= self.iou_threshold) | contained)
            confident = scores >= self.high_score_threshold if self.low_score_pass else np.ones(n_cur, bool)
            joint = self.center_weight > 0 and self.max_center_distance > 0
            cost, limit = 1.0 - iou, None
            if joint:  # IoU and centre distance in one pass
                ok_iou |= self._near(same_class, centroids, areas, now)
                cost = cost + self.center_weight * np.minimum(self._center_cost, self.max_center_distance)
                limit = 1.0 + self.center_weight * self.max_center_distance + 1e-3
            # tracks seen in the previous frame choose first; lost ones get what they leave
            recent = tracks.last_seen >= self._prev_time
            row_groups = (recent, ~recent) if self.lost_last else (np.ones(n_tracks, bool),)
            for cols_on in (confident, ~confident):  # 5a: confident segments; 5b: low-score ones
                for rows_on in row_groups:
                    allowed = ok_iou & (free_t & rows_on)[:, None] & (cols_on & (track_of < 0))[None, :]
                    r, c = assign(cost, allowed, limit)
                    track_of[c], free_t[r] = r, False
            if self.max_center_distance > 0 and not joint:  # 5c: centre distance
                near = self._near(same_class, centroids, areas, now)
                for rows_on in row_groups:
                    allowed = near & (free_t & rows_on)[:, None] & (track_of < 0)[None, :]
                    r, c = assign(self._center_cost, allowed)
                    track_of[c], free_t[r] = r, False

        # Step 6: matched things continue their track; the rest start tentative tracks.
        matched = track_of >= 0
        tracks.observe(
            track_of[matched], now, centroids[matched], areas[matched], self.velocity_smoothing, self.velocity_area_change
        )
        new = np.flatnonzero(~matched)
        track_of[new] = tracks.add(cats[new], now, centroids[new], areas[new])
        track_ids = np.full(len(pf), -1, np.int32)
        track_ids[thing_idx] = tracks.ids[track_of]

        # Step 7: new memory = current thing pixels (their track slot) + the old pixels of
        # unmatched tracks (also where something now occludes them); forget expired tracks.
        dev = cur.device
        slot_of_label = torch.as_tensor(np.concatenate([[-1], track_of]), dtype=torch.long, device=dev)  # [M+1]
        pix, slots = fg, slot_of_label.index_select(0, fg_label)
        if self._mem_pix is not None and self._mem_pix.numel():
            seen = torch.as_tensor(~free_t, dtype=torch.bool, device=dev)  # [T_old]
            keep = ~seen.index_select(0, self._mem_slot)
            pix = torch.cat([pix, self._mem_pix[keep]])
            slots = torch.cat([slots, self._mem_slot[keep]])
        alive = ~tracks.expired(now, self.min_hits, self.max_lost_seconds, self.tentative_max_lost_seconds)
        if not alive.all():
            remap = np.full(len(tracks), -1, np.int64)
            remap[alive] = np.arange(int(alive.sum()))
            slots = torch.as_tensor(remap, device=dev).index_select(0, slots)
            kept = slots >= 0
            pix, slots = pix[kept], slots[kept]
            tracks.keep(alive)
        self._mem_pix, self._mem_slot = pix, slots

        self._prev_time = now
        pf.track_ids = track_ids
        return pf

    def _overlap(self, shifts, cur, cur_area_t, n_cur: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """IoU and containment ``(T, M) float64`` of the remembered masks moved by `shifts`
        ``(T, 2)`` (y, x pixels) with the current things `cur` ``(h*w,)`` labelled 0..M."""
        n_tracks = len(self._tracks)
        table = torch.as_tensor(np.rint(shifts), dtype=torch.long, device=cur.device)  # [T, 2]
        step = table.index_select(0, self._mem_slot)  # [K, 2]
        py = self._mem_pix // width + step[:, 0]
        px = self._mem_pix % width + step[:, 1]
        inside = (py >= 0) & (py < height) & (px >= 0) & (px < width)
        pred_slot = self._mem_slot[inside] + 1  # [K'] in 1..T
        under = cur.index_select(0, py[inside] * width + px[inside])  # [K'] label under each predicted pixel
        hist = pair_histogram(pred_slot, under, n_tracks, n_cur)  # [T+1, M+1]
        inter = hist[1:, 1:].double()  # [T, M]
        pred_area = hist[1:].sum(1, keepdim=True).double()  # [T, 1]
        union = pred_area + cur_area_t[None, :] - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
        contain = inter / torch.minimum(pred_area, cur_area_t[None, :]).clamp(min=1)
        return iou.cpu().numpy(), contain.cpu().numpy()

    def _warp_memory(self, h_full: np.ndarray, s: int, height: int, width: int) -> None:
        """Move remembered pixels and track centres by the homography `h_full` (full-res coords)."""
        d = np.diag([float(s), float(s), 1.0])  # grid -> full resolution
        h = np.linalg.inv(d) @ h_full @ d
        tracks = self._tracks
        cy, cx = warp_points(h, torch.from_numpy(tracks.centroid[:, 0]), torch.from_numpy(tracks.centroid[:, 1]))
        tracks.centroid = torch.stack([cy, cx], 1).double().numpy()
        if self._mem_pix is None or not self._mem_pix.numel():
            return
        y, x = warp_points(h, self._mem_pix // width, self._mem_pix % width)
        y, x = torch.round(y).long(), torch.round(x).long()
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        self._mem_pix = (y * width + x)[inside]
        self._mem_slot = self._mem_slot[inside]

    def _near(self, same_class: np.ndarray, centroids: np.ndarray, areas: np.ndarray, now: float) -> np.ndarray:
        """``(T, M) bool`` pairs close enough for the centre pass; sets `self._center_cost`."""
        tracks = self._tracks
        dt = np.minimum(now - tracks.last_seen, self.max_predict_seconds)
        pred = tracks.centroid + (tracks.velocity * dt[:, None] if self.motion_prediction else 0.0)  # [T, 2]
        dist = np.linalg.norm(pred[:, None, :] - centroids[None, :, :], axis=2)  # [T, M]
        big = np.maximum(np.maximum(tracks.area[:, None], areas[None, :]), self.small_object_area)
        norm = dist / np.sqrt(big)
        self._center_cost = np.where(np.isfinite(norm), norm, _FORBIDDEN)
        ratio = self._area_ratio(tracks.area, areas)
        return same_class & (ratio <= self.max_area_ratio) & (norm <= self.max_center_distance)

    def _area_ratio(self, track_area: np.ndarray, cur_area: np.ndarray) -> np.ndarray:
        """``(T, M)`` larger / smaller area, each counted as at least `small_object_area`."""
        a = np.maximum(track_area, self.small_object_area)[:, None]
        b = np.maximum(cur_area, self.small_object_area)[None, :]
        return np.maximum(a, b) / np.minimum(a, b)
