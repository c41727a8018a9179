"""Mask tracker around a per-track Kalman motion state, associated in stages by confidence.

What the box trackers that win on held-out data share (ByteTrack, BoT-SORT, OC-SORT), on
masks. Each track keeps a constant-velocity Kalman filter on its centre and linear size
(square root of the area), in grid pixels and seconds (so the same settings hold at any
frame rate), and the pixels of its last mask. Every frame:

1. the things are labelled on the association grid and their pixels, areas and centres
   listed (`features.grid_things`);
2. with `camera_motion`, the background homography since the previous frame moves every
   track's filter and remembered mask (shift and zoom at the track's centre);
3. each filter predicts the track's centre and size at this frame's time; the remembered mask
   is moved and scaled onto that prediction, and its IoU with every thing comes from one
   histogram (`cost.warped_pair_counts`);
4. association in stages, each gated by class, on what the earlier left:
   a. confident segments (score >= `high_score_threshold`) against every track, Hungarian
      on 1 - IoU, pairs below `iou_threshold` only when the smaller mask lies mostly inside
      the other (`CONTAINMENT`: an object cut by an occluder or the frame border);
   b. the tracks left against low-score segments, IoU at least `LOW_SCORE_IOU`;
   c. with `motion_gate`, the tracks left against confident segments left whose centre
      lies inside the filter's prediction (Mahalanobis distance below `GATE_CHI2`) at a
      similar size: an object that moved more than its own size, or came back from behind
      an occluder, where the predicted mask no longer overlaps it;
5. life cycle: matched tracks update their filter and mask (a match much smaller than its
   prediction is partly hidden: it moves the filter less and the whole mask is kept,
   `PARTIAL_AREA`); confident segments left start tentative tracks; a tentative track
   missed more than `TENTATIVE_LOST_FRAMES` frames in a row is removed, a confirmed one
   after `max_lost_seconds`; low-score segments left get an id of their own for one frame.
   Ids are never reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..types import PanopticFrame
from .base import Tracker, frame_id_map, torch_single_thread
from .cost import assign, overlap_from_counts, warped_pair_counts
from .features import grid_things
from .motion import CameraMotionEstimator, local_similarity

__all__ = ["KalmanMaskTracker"]

# Not settings: fixed by the method, or shown not to matter, each for the reason given.
MAX_PIXELS = 250_000  # frames above this many pixels are associated on a strided grid (cost)
MASK_SAMPLES = 1024  # a remembered mask keeps about this many pixels (IoU error < 2 %)
LOW_SCORE_IOU = 0.5  # stage b: low-score segments are mostly false positives (ByteTrack's 0.5)
CONTAINMENT = 0.8  # stage a: a part of an object (cut by an occluder) lies this much inside its prediction
PARTIAL_AREA = 0.5  # a match below this fraction of its predicted area is partly hidden (occluder, border)
PARTIAL_NOISE = 10.0  # ... its centre and size are measured this much less precisely; its mask is kept whole
GATE_CHI2 = 9.21  # stage c: 99 % of a 2-D Gaussian lies within this squared Mahalanobis distance
GATE_AREA_RATIO = 2.0  # stage c: a thing's linear size changes by less than this between sightings
SCALE_LIMITS = (0.5, 2.0)  # a predicted mask is scaled by at most this much (noisy size estimates)
NOMINAL_DT = 0.1  # s: the noise below is per step of this length (the filter scales it with dt)
POS_NOISE = 0.05  # position process noise per step, in object sizes (ByteTrack: 1/20 of the height)
VEL_NOISE = 0.25  # velocity process noise per step, object sizes per second
MEAS_NOISE = 0.05  # measurement noise of a mask's centre and size, in object sizes
INIT_VEL_STD = 10.0  # a new track's velocity is unknown: std in object sizes per second
TENTATIVE_LOST_FRAMES = 1  # a tentative track survives this many missed frames (a model misses a few %)


@dataclass
class _Track:
    id: int
    category: int
    mean: np.ndarray  # (6,) cy, cx, size, vy, vx, vsize (grid px, px/s)
    cov: np.ndarray  # (6, 6)
    time: float  # time of `mean`
    points: np.ndarray  # (2, K) float32 remembered mask pixels (row, col) when last seen
    weight: float  # grid pixels each remembered pixel stands for
    anchor: np.ndarray  # (3,) k, by, bx: remembered pixel p is at k p + b in this frame (camera motion)
    seen_centre: np.ndarray  # (2,) centre when last seen, in this frame's coordinates
    seen_size: float  # linear size when last seen, in this frame's scale
    seen: float  # time last matched
    hits: int = 1


def _transition(dt: float) -> np.ndarray:
    f = np.eye(6)
    f[:3, 3:] = dt * np.eye(3)
    return f


def _process_noise(size: float, dt: float) -> np.ndarray:
    steps = max(dt, 1e-6) / NOMINAL_DT
    pos, vel = (POS_NOISE * size) ** 2 * steps, (VEL_NOISE * size) ** 2 * steps
    return np.diag([pos, pos, pos, vel, vel, vel])


class KalmanMaskTracker(Tracker):
    """Kalman motion state + mask IoU of the motion-predicted mask, stages by confidence.

    Args:
        iou_threshold: minimum IoU of a track's predicted mask with a confident segment (stage a).
        high_score_threshold: segments scoring at least this are confident, in [0, 1].
        max_lost_seconds: a confirmed track unmatched for longer than this (frame time) is removed.
        min_hits: matches that confirm a track (see `TENTATIVE_LOST_FRAMES` for tentative ones).
        motion_gate: stage c (centre inside the filter's prediction) on or off.
        camera_motion: compensate the camera's motion (background homography, OpenCV).
        device: where the label map and IoU histogram are computed; defaults to the id map's.
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        high_score_threshold: float = 0.5,
        max_lost_seconds: float = 1.5,
        min_hits: int = 2,
        motion_gate: bool = True,
        camera_motion: bool = True,
        device: str | torch.device | None = None,
    ):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        if not 0 <= high_score_threshold <= 1:
            raise ValueError(f"high_score_threshold is {high_score_threshold}; expected 0 <= x <= 1")
        if max_lost_seconds < 0:
            raise ValueError(f"max_lost_seconds is {max_lost_seconds}; expected >= 0")
        if isinstance(min_hits, bool) or int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits is {min_hits}; expected an integer >= 1")
        self.iou_threshold = float(iou_threshold)
        self.high_score_threshold = float(high_score_threshold)
        self.max_lost_seconds = float(max_lost_seconds)
        self.min_hits = int(min_hits)
        self.motion_gate = bool(motion_gate)
        self.device = None if device is None else torch.device(device)
        self._cmc = CameraMotionEstimator() if camera_motion else None
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._shape: tuple[int, int] | None = None
        self._last_time: float | None = None
        self._pixels = None  # this frame's thing pixels grouped by label (`_mask_points`)
        self._interval = 0.0  # time between the last two frames
        if self._cmc is not None:
            self._cmc.reset()

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        """Assign track ids to the things of `pf` (the next frame, in time order)."""
        with torch_single_thread():
            return self._update(pf)

    def _update(self, pf: PanopticFrame) -> PanopticFrame:
        id_map = frame_id_map(pf, self.device, self._shape)
        shape = self._shape = (int(id_map.shape[0]), int(id_map.shape[1]))
        now = float(pf.frame.time)

        # Step 1: things on the grid.
        stride = max(1, math.ceil(math.sqrt(shape[0] * shape[1] / MAX_PIXELS)))
        thing_idx = np.flatnonzero(pf.is_thing)
        cats = pf.category_ids[thing_idx].astype(np.int64)  # [M]
        confident = pf.scores[thing_idx] >= self.high_score_threshold  # [M]
        things = grid_things(id_map, stride, pf.segment_ids[thing_idx])
        m = things.count
        present = things.area > 0  # [M] things with a grid pixel
        size = np.sqrt(np.maximum(things.area, 1.0))  # [M]

        # Step 2: camera motion.
        if self._cmc is not None:
            step = max(1, things.height // self._cmc.working_size(*shape)[0])
            h = self._cmc.estimate(pf.frame.image, things.mask(step))
            if self._tracks and not np.allclose(h, np.eye(3)):
                d = np.array([float(stride), float(stride), 1.0])
                self._follow_camera(h * (1.0 / d)[:, None] * d)

        # Step 3: predicted masks and their IoU with the things.
        tracks = self._tracks
        t = len(tracks)
        pred = np.zeros((t, 6))
        covs = np.zeros((t, 6, 6))
        for k, tr in enumerate(tracks):
            dt = now - tr.time
            f = _transition(dt)
            pred[k] = f @ tr.mean
            covs[k] = f @ tr.cov @ f.T + _process_noise(max(tr.mean[2], 1.0), dt)
        iou, contain = np.zeros((t, m)), np.zeros((t, m))
        if t and m:
            iou, contain = self._predicted_iou(things, pred)
        same_class = np.array([tr.category for tr in tracks])[:, None] == cats[None, :] if t else np.zeros((0, m), bool)
        free_t = np.ones(t, bool)
        free_m = present.copy()
        match_t: list[int] = []
        match_m: list[int] = []

        def take(rows, cols, allowed, cost):
            r_idx, c_idx = np.flatnonzero(rows), np.flatnonzero(cols)
            if not r_idx.size or not c_idx.size:
                return
            ok = allowed[r_idx][:, c_idx]
            r, c = assign(cost[r_idx][:, c_idx], ok)
            for i, j in zip(r_idx[r].tolist(), c_idx[c].tolist()):
                match_t.append(i)
                match_m.append(j)
                free_t[i] = False
                free_m[j] = False

        # Step 4a-b: confident segments, then low-score ones.
        overlap = (iou >= self.iou_threshold) | (contain >= CONTAINMENT)
        take(free_t, free_m & confident, same_class & overlap, 1.0 - iou)
        take(free_t, free_m & ~confident, same_class & (iou >= LOW_SCORE_IOU), 1.0 - iou)
        # Step 4c: centre inside the filter's prediction (a new track's velocity is uncertain:
        # its gate is wide, so an object faster than its own size is still followed).
        if self.motion_gate and t and m:
            d2 = self._mahalanobis(pred, covs, things.centroid, size)  # [T, M]
            ratio = np.maximum(pred[:, 2:3], 1.0) / size[None, :]
            similar = (ratio < GATE_AREA_RATIO) & (ratio > 1 / GATE_AREA_RATIO)
            take(free_t, free_m & confident, same_class & (d2 < GATE_CHI2) & similar, d2)

        # Step 5: life cycle.
        track_ids = np.where(pf.is_thing, 0, -1).astype(np.int32)
        for i, j in zip(match_t, match_m):
            tr = tracks[i]
            self._observe(tr, pred[i], covs[i], things, j, now)
            track_ids[thing_idx[j]] = tr.id
        kept = []
        if self._last_time is not None and now > self._last_time:
            self._interval = now - self._last_time
        self._last_time = now
        tentative_limit = (TENTATIVE_LOST_FRAMES + 0.5) * self._interval
        for i, tr in enumerate(tracks):
            limit = tentative_limit if tr.hits < self.min_hits else self.max_lost_seconds
            if free_t[i] and now - tr.seen > limit:
                continue  # lost for too long
            kept.append(tr)
        for j in np.flatnonzero(free_m & confident):
            tr = self._new_track(int(cats[j]), things, j, now)
            kept.append(tr)
            track_ids[thing_idx[j]] = tr.id
        self._tracks = kept
        for j in np.flatnonzero(track_ids[thing_idx] == 0):  # low-score or without a grid pixel
            track_ids[thing_idx[j]] = self._next_id
            self._next_id += 1
        self._pixels = None
        pf.track_ids = track_ids
        return pf

    # ------------------------------------------------------------------ helpers
    def _predicted_iou(self, things, pred: np.ndarray) -> np.ndarray:
        """``(T, M)`` IoU and containment (intersection over the smaller mask) of each track's
        remembered mask, moved and scaled onto its prediction, with the things."""
        tracks = self._tracks
        transform = np.zeros((len(tracks), 3))
        weight = np.zeros(len(tracks))
        full = np.zeros(len(tracks))
        for k, tr in enumerate(tracks):
            scale = float(np.clip(max(pred[k, 2], 1.0) / max(tr.seen_size, 1.0), *SCALE_LIMITS))
            ka, b = tr.anchor[0], tr.anchor[1:]
            # p -> scale (ka p + b - seen_centre) + predicted centre
            transform[k, 0] = scale * ka
            transform[k, 1:] = scale * (b - tr.seen_centre) + pred[k, :2]
            weight[k] = tr.weight * (scale * ka) ** 2
            full[k] = tr.points.shape[1] * weight[k]
        points = np.concatenate([tr.points for tr in tracks], 1)
        slot = np.repeat(np.arange(len(tracks)), [tr.points.shape[1] for tr in tracks])
        dev = things.labels.device
        counts = warped_pair_counts(things.labels.long(), things.width, things.count + 2,
                                    torch.as_tensor(points, device=dev), torch.as_tensor(slot, device=dev), transform)
        iou, contain, _ = overlap_from_counts(counts, things.area, weight, full)
        return iou, contain

    @staticmethod
    def _mahalanobis(pred: np.ndarray, covs: np.ndarray, centroid: np.ndarray, size: np.ndarray) -> np.ndarray:
        """``(T, M)`` squared Mahalanobis distance of the things' centres from the predicted ones."""
        s = covs[:, :2, :2] + (MEAS_NOISE * np.maximum(pred[:, 2], 1.0))[:, None, None] ** 2 * np.eye(2)
        inv = np.linalg.inv(s)  # [T, 2, 2]
        diff = np.nan_to_num(centroid, nan=-1e9)[None, :, :] - pred[:, None, :2]  # [T, M, 2]
        return np.einsum("tmi,tij,tmj->tm", diff, inv, diff)

    def _mask_points(self, things, j: int) -> tuple[np.ndarray, float]:
        """``(2, K) float32`` pixels of thing j (every n-th of a large mask) and the pixels each stands for."""
        if self._pixels is None or self._pixels[0] is not things:
            yx = things.yx.cpu().numpy()
            order = np.argsort(things.label.cpu().numpy(), kind="stable")  # pixels grouped by label
            bounds = np.searchsorted(things.label.cpu().numpy()[order], np.arange(1, things.count + 2))
            self._pixels = (things, yx[:, order].astype(np.float32), bounds)
        _, yx, bounds = self._pixels
        sel = yx[:, bounds[j]: bounds[j + 1]]
        n = sel.shape[1]
        step = max(1, n // MASK_SAMPLES)
        return np.ascontiguousarray(sel[:, ::step]), n / max(-(-n // step), 1)

    def _new_track(self, category: int, things, j: int, now: float) -> _Track:
        pts, w = self._mask_points(things, j)
        size = math.sqrt(max(things.area[j], 1.0))
        mean = np.array([*things.centroid[j], size, 0.0, 0.0, 0.0])
        std = np.array([MEAS_NOISE, MEAS_NOISE, MEAS_NOISE, INIT_VEL_STD, INIT_VEL_STD, INIT_VEL_STD]) * size
        tr = _Track(self._next_id, category, mean, np.diag(std**2), now, pts, w, np.array([1.0, 0.0, 0.0]),
                    things.centroid[j].copy(), size, now)
        self._next_id += 1
        return tr

    def _observe(self, tr: _Track, mean: np.ndarray, cov: np.ndarray, things, j: int, now: float) -> None:
        size = math.sqrt(max(things.area[j], 1.0))
        partial = size**2 < PARTIAL_AREA * max(mean[2], 1.0) ** 2
        z = np.array([*things.centroid[j], size])
        r = np.eye(3) * (MEAS_NOISE * max(size, mean[2]) * (PARTIAL_NOISE if partial else 1.0)) ** 2
        s = cov[:3, :3] + r
        gain = cov[:, :3] @ np.linalg.inv(s)  # [6, 3]
        tr.mean = mean + gain @ (z - mean[:3])
        tr.cov = (np.eye(6) - gain @ np.eye(3, 6)) @ cov
        tr.time = now
        tr.seen, tr.hits = now, tr.hits + 1
        if partial:  # keep the whole mask, moved with the filter's centre
            tr.anchor = np.array([tr.anchor[0], *(tr.anchor[1:] - tr.seen_centre + tr.mean[:2])])
            tr.seen_centre = tr.mean[:2].copy()
            return
        tr.points, tr.weight = self._mask_points(things, j)
        tr.anchor = np.array([1.0, 0.0, 0.0])
        tr.seen_centre, tr.seen_size = things.centroid[j].copy(), size

    def _follow_camera(self, h: np.ndarray) -> None:
        """Move every track's filter and remembered mask by the homography `h` (grid pixels)."""
        tracks = self._tracks
        means = np.array([tr.mean[:2] for tr in tracks])
        seen = np.array([tr.seen_centre for tr in tracks])
        moved, zoom = local_similarity(h, means)
        moved_seen, zoom_seen = local_similarity(h, seen)
        for k, tr in enumerate(tracks):
            tr.mean[:2], tr.mean[2:] = moved[k], tr.mean[2:] * np.array([zoom[k], zoom[k], zoom[k], zoom[k]])
            z = zoom_seen[k]
            tr.anchor = np.array([z * tr.anchor[0], *(z * (tr.anchor[1:] - tr.seen_centre) + moved_seen[k])])
            tr.seen_centre, tr.seen_size = moved_seen[k], tr.seen_size * z
