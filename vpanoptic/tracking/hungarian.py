"""Online mask-IoU tracker with Hungarian assignment, gated by class.

Each track keeps the mask of its last observation and a velocity. The masks live in one
sparse track memory (pixel coordinates + track slot), so the cost of a frame is
proportional to the number of thing pixels, not to the frame size; large frames are
subsampled on a regular grid (`max_pixels`) and large masks are remembered on a sub-grid
(`mask_samples`). Every frame:

1. the current things are labelled 1..M on the grid in one pass over the id map, and their
   pixels, areas, centres and border contact are listed (`features.py`); their colour
   histograms are read from the image (`appearance.py`);
2. the camera's motion since the previous frame (background homography) moves every
   track's centre; each track's remembered mask follows it as a similarity (shift and zoom
   of the homography at the track's centre), composed lazily into one per-track transform
   (`TrackTable.warp`), so no remembered pixel is touched (`camera_motion`);
3. each remembered mask is moved by its track's velocity times the time since it was seen
   (`motion_prediction`): fast objects and short occlusions still overlap their prediction;
   with `scale_prediction` it is also scaled about its centre by the track's growth rate
   (objects approaching a forward-driving camera grow and speed up; `growth_model`); a lost
   track whose prediction has left the frame has departed (`max_outside_fraction`): it is
   matched only to an object coming back into view near where it left (`reentry_distance`);
4. the IoU of predicted masks with current things comes from one histogram (`cost.py`):
   every remembered pixel, moved by its track's transform, reads the label under it in a
   label map framed by a ring of "outside";
5. association, passes 5a-5e (`association.py`), each on what the earlier ones left:
   Hungarian on 1 - IoU for confident segments (5a), then the tracks left over against
   low-score segments (5b, `low_score_pass`), then a centre-distance pass for small or thin
   objects that moved more than their own size (5c, `max_center_distance`); in each of
   these tracks seen a frame ago and lost ones are assigned jointly, the lost ones at a
   higher cost (`lost_penalty`; or strictly after, `lost_last`); every pass is gated by
   class, the IoU passes by a minimum IoU (or containment, for masks that grow and shrink);
   with the colour cue (`appearance.py`) every pass also gates by colour (histogram
   overlap), and all but the last weigh it into their cost; a further pass (5d)
   re-identifies left-over tracks by colour near their predicted centre (for a lost track:
   anywhere between where its prediction stopped and where constant velocity would have
   taken it since it was last seen; at any area up to the track's full area, the largest
   it was seen with lately, `full_area_seconds`; confident segments only) and matches a
   segment at the frame border inside the prediction of a track running out of the frame
   at any area (`exit_any_area`); then (5e) a
   track and a segment left over that are each other's only candidate are paired even when
   their areas differ a lot (an object stepping out from behind another,
   `max_growth_ratio`); last (5f) a young track hands the segment it matched to a lost
   track that passes the re-identification gates and retires (`takeover_hits`);
6. life cycle (`lifecycle.py`): matched tracks update, unmatched segments start tentative
   tracks, tracks unseen for too long (in seconds of frame time) are removed; ids are never
   reused.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..types import PanopticFrame
from .appearance import AppearanceCue
from .association import AssociationParams, associate
from .base import Tracker, frame_id_map, torch_single_thread
from .cost import overlap_from_counts, warped_pair_counts
from .features import GridThings, grid_things, nonzero_indices
from .lifecycle import TrackTable
from .motion import CameraMotionEstimator, local_similarity

__all__ = ["HungarianTracker"]

_EYE = np.eye(3)


class HungarianTracker(Tracker):
    """Mask IoU + Hungarian association with camera-motion compensation and motion prediction.

    Every keyword but `device` is a field of `vpanoptic.config.TrackerConfig` and is documented
    there, once; the steps above say where each takes effect. `device`: where the IoU
    histogram is computed; defaults to the id map's device.
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        min_containment: float = 0.8,
        max_containment_ratio: float = 5.0,
        exit_any_area: bool = True,
        max_lost_seconds: float = 1.5,
        min_hits: int = 2,
        tentative_max_lost_seconds: float = 0.3,
        tentative_min_lost_frames: int = 1,
        velocity_smoothing: float = 0.1,
        velocity_area_change: float = 5.0,
        motion_prediction: bool = True,
        max_predict_seconds: float = 0.5,
        static_hypothesis: bool = False,
        camera_motion: bool = True,
        cmc_max_side: int = 320,
        cmc_parallel: bool = True,
        lost_last: bool = False,
        lost_penalty: float = 0.2,
        low_score_pass: bool = True,
        high_score_threshold: float = 0.5,
        max_center_distance: float = 1.0,
        max_area_ratio: float = 4.0,
        max_growth_ratio: float = 16.0,
        growth_center_distance: float = 0.5,
        center_weight: float = 0.0,
        center_size_weight: float = 0.3,
        small_object_area: float = 16.0,
        scale_prediction: bool = True,
        scale_min_area: float = 400.0,
        max_scale_rate: float = 3.0,
        growth_model: str = "contact",
        max_predicted_growth: float = 1.7,
        max_outside_fraction: float = 0.5,
        outside_min_iou: float = 0.5,
        reentry_distance: float = 2.0,
        mask_samples: int = 1024,
        max_pixels: int = 250_000,
        appearance_weight: float = 0.5,
        appearance_scale: float = 1.0,
        appearance_gate: float = 0.5,
        appearance_smoothing: float = 0.3,
        reid_distance: float = 6.0,
        reid_colour: float = 0.35,
        reid_area_ratio: float = 8.0,
        takeover_hits: int = 3,
        full_area_seconds: float = 2.0,
        histogram_bits: int = 3,
        colour_boundary_weight: float = 0.25,
        device: str | torch.device | None = None,
    ):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0 < x <= 1")
        if max_lost_seconds < 0 or tentative_max_lost_seconds < 0:
            raise ValueError(
                f"max_lost_seconds is {max_lost_seconds} and tentative_max_lost_seconds "
                f"{tentative_max_lost_seconds}; expected >= 0"
            )
        if int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits is {min_hits}; expected an integer >= 1")
        if not 0 < velocity_smoothing <= 1:
            raise ValueError(f"velocity_smoothing is {velocity_smoothing}; expected 0 < x <= 1")
        if not 0 <= high_score_threshold <= 1:
            raise ValueError(f"high_score_threshold is {high_score_threshold}; expected 0 <= x <= 1")
        if max_center_distance < 0 or max_area_ratio < 1:
            raise ValueError(
                f"max_center_distance is {max_center_distance} and max_area_ratio {max_area_ratio}; "
                "expected >= 0 and >= 1"
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
        self.exit_any_area = bool(exit_any_area)
        self.max_lost_seconds = float(max_lost_seconds)
        self.min_hits = int(min_hits)
        self.tentative_max_lost_seconds = float(tentative_max_lost_seconds)
        if int(tentative_min_lost_frames) != tentative_min_lost_frames or tentative_min_lost_frames < 0:
            raise ValueError(f"tentative_min_lost_frames is {tentative_min_lost_frames}; expected an integer >= 0")
        self.tentative_min_lost_frames = int(tentative_min_lost_frames)
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
        if lost_penalty < 0:
            raise ValueError(f"lost_penalty is {lost_penalty}; expected >= 0")
        self.lost_penalty = float(lost_penalty)
        self.low_score_pass = bool(low_score_pass)
        self.high_score_threshold = float(high_score_threshold)
        self.max_center_distance = float(max_center_distance)
        self.max_area_ratio = float(max_area_ratio)
        if max_growth_ratio != 0 and max_growth_ratio < 1 or growth_center_distance < 0:
            raise ValueError(
                f"max_growth_ratio is {max_growth_ratio} and growth_center_distance {growth_center_distance}; "
                "expected 0 (off) or >= 1, and >= 0"
            )
        self.max_growth_ratio = float(max_growth_ratio)
        if reid_area_ratio < 1:
            raise ValueError(f"reid_area_ratio is {reid_area_ratio}; expected >= 1")
        self.reid_area_ratio = float(reid_area_ratio)
        if isinstance(takeover_hits, bool) or int(takeover_hits) != takeover_hits or takeover_hits < 0:
            raise ValueError(f"takeover_hits is {takeover_hits}; expected an integer >= 0 (0 = off)")
        self.takeover_hits = int(takeover_hits)
        self.growth_center_distance = float(growth_center_distance)
        if center_weight < 0:
            raise ValueError(f"center_weight is {center_weight}; expected >= 0")
        self.center_weight = float(center_weight)
        if not center_size_weight >= 0:
            raise ValueError(f"center_size_weight is {center_size_weight}; expected >= 0")
        self.center_size_weight = float(center_size_weight)
        self.max_pixels = int(max_pixels)
        if small_object_area < 1:
            raise ValueError(f"small_object_area is {small_object_area}; expected >= 1")
        self.small_object_area = float(small_object_area)
        if scale_min_area < 1 or max_scale_rate < 0:
            raise ValueError(
                f"scale_min_area is {scale_min_area} and max_scale_rate {max_scale_rate}; expected >= 1 and >= 0"
            )
        if not 0 < max_outside_fraction <= 1:
            raise ValueError(f"max_outside_fraction is {max_outside_fraction}; expected 0 < x <= 1")
        if not 0 < outside_min_iou <= 1:
            raise ValueError(f"outside_min_iou is {outside_min_iou}; expected 0 < x <= 1")
        self.outside_min_iou = float(outside_min_iou)
        if not reentry_distance >= 0:
            raise ValueError(f"reentry_distance is {reentry_distance}; expected >= 0 (0 = off)")
        self.reentry_distance = float(reentry_distance)
        TrackTable(0, growth_model, max_predicted_growth, full_area_seconds)  # checks them (ValueError)
        self.growth_model, self.max_predicted_growth = growth_model, float(max_predicted_growth)
        self.full_area_seconds = float(full_area_seconds)
        self.scale_prediction = bool(scale_prediction)
        self.scale_min_area = float(scale_min_area)
        self.max_scale_rate = float(max_scale_rate)
        self.max_outside_fraction = float(max_outside_fraction)
        if int(mask_samples) != mask_samples or mask_samples < 0:
            raise ValueError(f"mask_samples is {mask_samples}; expected an integer >= 0 (0 = keep every pixel)")
        self.mask_samples = int(mask_samples)
        self.device = None if device is None else torch.device(device)
        self._cmc = CameraMotionEstimator(max_side=cmc_max_side) if self.camera_motion else None
        self.cmc_parallel = bool(cmc_parallel) and self._cmc is not None
        # one worker thread, started at the first frame; `close()` (or collecting the tracker) stops it
        self._cmc_worker: ThreadPoolExecutor | None = None
        self._app = AppearanceCue(
            appearance_weight,
            appearance_scale,
            appearance_gate,
            appearance_smoothing,
            reid_distance,
            reid_colour,
            histogram_bits,
            colour_boundary_weight,
        )
        # the thresholds of the association passes, read off the attributes above (fixed from
        # here on, like the colour cue's)
        self._association = AssociationParams.of(self)
        self.reset()

    def reset(self) -> None:
        self._tracks = TrackTable(self._app.bins, self.growth_model, self.max_predicted_growth, self.full_area_seconds)
        # Sparse track memory on the association grid: pixel coordinates and track slot (row of
        # self._tracks) of every remembered pixel; the last mask of each live track.
        self._mem_yx: torch.Tensor | None = None  # (2, K) float32 (row, column), in the frame the track was seen in
        self._mem_slot: torch.Tensor | None = None  # (K,) int64
        self._shape: tuple[int, int] | None = None
        self._prev_time = -math.inf
        self._frame_interval: float | None = None  # running mean of the time between frames (s)
        self.last_homography = np.eye(3)
        if self._cmc is not None:
            self._cmc.reset()

    def close(self) -> None:
        """Stop the camera-motion thread (it starts again with the next `update()`)."""
        worker, self._cmc_worker = self._cmc_worker, None
        if worker is not None:
            worker.shutdown(wait=True)

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    @property
    def memory_pixels(self) -> int:
        """Remembered mask pixels (bounded by live tracks x frame size)."""
        return 0 if self._mem_slot is None else int(self._mem_slot.shape[0])

    def stride(self, height: int, width: int) -> int:
        """Subsampling step of the association grid for an ``height x width`` frame."""
        if not self.max_pixels or height * width <= self.max_pixels:
            return 1
        return math.ceil(math.sqrt(height * width / self.max_pixels))

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        """Assign track ids to the things of `pf` (the next frame), steps 1-6 above.

        Runs with torch at one intra-op thread whatever the caller set (`torch_single_thread`).
        """
        with torch_single_thread():
            return self._update(pf)

    def _update(self, pf: PanopticFrame) -> PanopticFrame:
        id_map = frame_id_map(pf, self.device, self._shape)
        now = float(pf.frame.time)
        shape = self._shape = (int(id_map.shape[0]), int(id_map.shape[1]))
        tracks = self._tracks
        fit_job = None  # step 2's fit, on the worker thread while step 1 runs here
        if self.cmc_parallel:
            if self._cmc_worker is None:
                self._cmc_worker = ThreadPoolExecutor(1, thread_name_prefix="vpanoptic-cmc")
            fit_job = self._cmc_worker.submit(self._cmc.fit, pf.frame.image)

        # Step 1: label the current things 1..M on the grid (stuff and void 0), list their pixels.
        s = self.stride(*shape)
        thing_idx = np.flatnonzero(pf.is_thing)
        cats = pf.category_ids[thing_idx].astype(np.int64)  # [M]
        scores = pf.scores[thing_idx]  # [M]
        things = grid_things(id_map, s, pf.segment_ids[thing_idx])  # one pass over the id map
        n_cur, height, width = things.count, things.height, things.width
        centroids, areas, clipped = things.centroid, things.area, things.clipped  # [M, 2] (y, x), [M], [M]
        hists = self._app.histograms(pf.frame.image, s, things, shape)  # [M, bins], boundary pixels weighted down

        # Step 2: camera motion moves every remembered pixel and centre into this frame.
        if self._cmc is not None:
            # thing mask at about the estimator's working size (strided: no resize of the full map)
            step = max(1, height // self._cmc.working_size(height, width)[0])
            motion = self._cmc.fit(pf.frame.image) if fit_job is None else fit_job.result()
            h_full = self._cmc.finish(motion, things.mask(step))
            self.last_homography = h_full
            if len(tracks) and not (np.abs(h_full - _EYE) <= 1e-8 + 1e-5 * _EYE).all():  # np.allclose, cheaper
                d = np.array([float(s), float(s), 1.0])  # grid -> full resolution
                centre, zoom = local_similarity(h_full * (1.0 / d)[:, None] * d, tracks.centroid)  # [T, 2], [T]
                w = tracks.warp  # compose: p -> zoom (k p + b - c) + c'
                w[:, 1:] = zoom[:, None] * (w[:, 1:] - tracks.centroid) + centre
                w[:, 0] *= zoom
                tracks.centroid = centre

        # Step 3-4: IoU and containment of predicted track masks with current things.
        n_tracks = len(tracks)
        iou, contain = np.zeros((n_tracks, n_cur)), np.zeros((n_tracks, n_cur))
        shift, scale = self._predict(now)  # [T, 2], [T]
        inside = np.ones(n_tracks)  # fraction of each predicted mask inside the frame
        if n_tracks and n_cur and self._mem_slot is not None and self._mem_slot.numel():
            ones, zero = np.ones(n_tracks), np.zeros((n_tracks, 2))
            hypotheses = [(shift, scale)]
            if self.motion_prediction and self.static_hypothesis:
                hypotheses.append((zero, ones))
            for k, (shifts, scales) in enumerate(hypotheses):
                iou_h, contain_h, inside_h = self._overlap(shifts, scales, things)
                if k == 0:
                    iou, contain, inside = iou_h, contain_h, inside_h
                else:
                    iou, contain = np.maximum(iou, iou_h), np.maximum(contain, contain_h)
                    inside = np.maximum(inside, inside_h)

        # Step 5: association passes (`association.py`); each pass sees only what earlier passes left.
        track_of, free_t, retired = associate(
            self._association,
            self._app,
            tracks,
            now=now,
            prev_time=self._prev_time,
            categories=cats,
            scores=scores,
            centroids=centroids,
            areas=areas,
            clipped=clipped,
            hists=hists,
            iou=iou,
            contain=contain,
            inside=inside,
            shift=shift,
            scale=scale,
        )  # [M] matched track slot per current thing (-1: none), [T] tracks left unmatched, [T] retired

        # Step 6: matched things continue their track; the rest start tentative tracks. An
        # unmatched track predicted mostly out of the frame has left the view.
        matched = track_of >= 0
        slots = track_of[matched]
        scale_ok = (
            ~clipped[matched]
            & ~tracks.clipped[slots]
            & (np.minimum(areas[matched], tracks.area[slots]) >= self.scale_min_area)
        )
        tracks.observe(
            slots,
            now,
            centroids[matched],
            areas[matched],
            self.velocity_smoothing,
            self.velocity_area_change,
            scale_ok=scale_ok,
            max_scale_rate=self.max_scale_rate if self.scale_prediction and self.motion_prediction else 0.0,
            clipped=clipped[matched],
        )
        gone = free_t & (inside < 1 - self.max_outside_fraction)  # [T_old] left the view
        if self.reentry_distance > 0:  # kept, departed: matched only if it comes back in
            tracks.departed[: gone.size] |= gone
            gone[:] = False
        new = np.flatnonzero(~matched)
        track_of[new] = tracks.add(cats[new], now, centroids[new], areas[new], clipped[new])
        # every thing's track takes in its colours (a new track, still without any, takes them as they are)
        tracks.histogram[track_of], tracks.hist_root[track_of] = self._app.blend(tracks.histogram[track_of], hists)
        track_ids = np.full(len(pf), -1, np.int32)
        track_ids[thing_idx] = tracks.ids[track_of]

        # Step 7: new memory = current thing pixels (their track slot) + the old pixels of
        # unmatched tracks (also where something now occludes them); forget expired tracks.
        if math.isfinite(self._prev_time) and now > self._prev_time:  # running mean of the frame spacing
            dt = now - self._prev_time
            self._frame_interval = dt if self._frame_interval is None else 0.5 * (self._frame_interval + dt)
        # whatever the frame rate, a tentative track survives `tentative_min_lost_frames` missed frames
        tentative_limit = self.tentative_max_lost_seconds
        if self._frame_interval is not None:
            tentative_limit = max(tentative_limit, (self.tentative_min_lost_frames + 0.5) * self._frame_interval)
        alive = ~tracks.expired(now, self.min_hits, self.max_lost_seconds, tentative_limit)
        alive[: gone.size] &= ~(gone | retired)  # every current thing's track is alive (just seen)
        remap = np.cumsum(alive) - 1  # [T] new slot of each kept track
        dev = things.labels.device
        slot_of_label = torch.as_tensor(np.concatenate([[-1], remap[track_of]]), device=dev)  # [M+1]
        mem_yx = things.yx.float()  # [2, F]
        slots = slot_of_label.index_select(0, things.label)  # [F]
        if self.mask_samples and n_cur:
            # power-of-two steps: ~mask_samples to 4 x mask_samples pixels kept per mask
            steps = 2 ** np.floor(np.log2(np.maximum(areas / self.mask_samples, 1.0)) / 2).astype(np.int64)  # [M]
            tracks.sample_step[track_of] = steps
            if (steps > 1).any():  # large masks: keep a regular sub-grid of their pixels
                low_bits = torch.as_tensor(np.concatenate([[0], steps - 1]), device=dev).index_select(0, things.label)
                on = nonzero_indices(((things.y | things.x) & low_bits) == 0)  # row and column multiples of the step
                mem_yx, slots = mem_yx.index_select(1, on), slots.index_select(0, on)
        # [T_old] tracks whose old pixels stay; a departed track's are never overlapped again
        # (it is matched only by re-entry, on its centre), so they are dropped
        keep = free_t & alive[: free_t.size] & ~tracks.departed[: free_t.size]
        if self._mem_slot is not None and self._mem_slot.numel() and keep.any():
            slot_map = torch.as_tensor(np.where(keep, remap[: keep.size], -1), device=dev)  # [T_old] new slot or -1
            old_slot = slot_map.index_select(0, self._mem_slot)
            on = nonzero_indices(old_slot >= 0)  # [K_old] kept
            mem_yx = torch.cat([mem_yx, self._mem_yx.index_select(1, on)], 1)
            slots = torch.cat([slots, old_slot.index_select(0, on)])
        if not alive.all():
            tracks.keep(alive)
        self._mem_yx, self._mem_slot = mem_yx, slots

        self._prev_time = now
        pf.track_ids = track_ids
        return pf

    def _predict(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-track predicted ``(shift (T, 2) (y, x) grid pixels, scale (T,))`` at frame time `now`."""
        tracks = self._tracks
        if not self.motion_prediction:
            return np.zeros((len(tracks), 2)), np.ones(len(tracks))
        shift, scale = tracks.predict(now, self.max_predict_seconds)
        return shift, (scale if self.scale_prediction else np.ones(len(tracks)))

    def _overlap(
        self, shifts: np.ndarray, scales: np.ndarray, things: GridThings
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IoU and containment ``(T, M) float64`` of the remembered masks, carried by the camera
        (`TrackTable.warp`) then moved by `shifts` ``(T, 2)`` (y, x pixels) and scaled by
        `scales` ``(T,)`` about their centres, with the current `things`; and ``(T,)`` the
        fraction of each predicted mask inside the frame.
        A scaled mask is a sample of the object: each of its pixels counts for scale² pixels."""
        tracks = self._tracks
        n_cur = things.count
        # p -> c + shift + s (k p + b - c) = (s k) p + (s b + (1 - s) c + shift)
        k = scales * tracks.warp[:, 0]  # [T]
        off = scales[:, None] * tracks.warp[:, 1:] + (1 - scales)[:, None] * tracks.centroid + shifts  # [T, 2]
        off = np.where((k == 1.0)[:, None], np.rint(off), off)  # translation only: whole pixels
        transform = np.concatenate([k[:, None], off], 1)  # [T, 3]
        # label under each predicted pixel; M + 1 where it fell outside the frame
        counts = warped_pair_counts(things.labels, things.width, n_cur + 2, self._mem_yx, self._mem_slot, transform)
        # a scaled or sub-sampled mask is a sample: each remembered pixel counts for (k m)² pixels
        return overlap_from_counts(counts, things.area, (k * tracks.sample_step) ** 2, tracks.area * k**2)
