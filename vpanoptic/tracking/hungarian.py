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
from .base import Tracker, torch_single_thread
from .cost import overlap_from_counts, warped_pair_counts
from .features import GridThings, grid_things, nonzero_indices
from .lifecycle import TrackTable
from .motion import CameraMotionEstimator, local_similarity

__all__ = ["HungarianTracker"]

_EYE = np.eye(3)


class HungarianTracker(Tracker):
    """Mask IoU + Hungarian association with camera-motion compensation and motion prediction.

    Args:
        iou_threshold: minimum IoU between a track's predicted mask and a segment for a match.
        min_containment: a pair below `iou_threshold` still matches when the intersection
            covers at least this fraction of the smaller of the two masks (a small object
            eroded or dilated by the model from one frame to the next); 1 = nearly never.
        max_containment_ratio: ... and when their areas differ by at most this factor.
        exit_any_area: after re-identification (5d), a left-over segment touching the frame
            border that lies at least `min_containment` inside the predicted mask of a
            left-over track running out of the frame continues that track at any area: an
            object driving out of view shows less of itself each frame, faster than its
            prediction can tell.
        max_lost_seconds: a confirmed track unmatched for longer than this (frame time) is removed.
        min_hits: frames a track must be matched in to be confirmed (tentative before).
        tentative_max_lost_seconds: a tentative track unmatched for longer than this is removed.
        tentative_min_lost_frames: whatever the frame rate, a tentative track survives this many
            missed frames in a row: its limit is at least (n + 0.5) frame intervals (a running
            mean of the time between frames); at 3 fps, 0.3 s is less than one frame.
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
            + RANSAC, thing pixels masked out) and carry each track with it: its centre by the
            homography, its remembered mask by the homography's shift and zoom at that centre.
        cmc_max_side: longer side (pixels) of the grey image the camera motion is estimated on.
        cmc_parallel: fit the camera motion on a second thread while this thread labels the
            frame's things and reads their colours (the fit needs only the image; OpenCV and
            NumPy release the GIL). The same result either way; it shortens `update()` where a
            core is free and costs a few microseconds of hand-over where none is.
        lost_last: in every pass, the tracks matched in the previous frame choose first and
            lost tracks only get what they leave (a lost track's extrapolated mask can never
            take a segment from the track that saw it a frame ago). False: recent and lost
            tracks are assigned jointly (as many matches as possible, so a lost track is not
            starved by a recent one that has another segment to take), see `lost_penalty`.
        lost_penalty: with `lost_last` False, matching a lost track costs this much more (in
            units of IoU): between a recent and a lost track for the same segment, the lost
            one wins only if its predicted IoU is higher by more than this.
        low_score_pass: segments scoring below `high_score_threshold` are matched only after
            the confident ones, to the tracks those left (ByteTrack's second pass, on masks),
            and never re-identified by colour at a distance (5d; most are false positives).
        high_score_threshold: the score splitting confident from low-score segments, in [0, 1].
        max_center_distance: last pass for what IoU left unmatched: a track and a segment
            of the same class whose predicted centres are closer than this many object sizes
            (sqrt of the larger area) are matched. Catches small or thin objects that move
            more than their own width per frame. 0 disables it.
        max_area_ratio: the centre pass only pairs masks whose areas differ by less than this factor.
        max_growth_ratio: pass 5e, after every other: a left-over track and a left-over
            confident segment of one class (within the colour gate) that are each other's only
            candidate are matched when the smaller mask lies at least `min_containment` inside
            the other or their predicted centres are within `growth_center_distance` object
            sizes, with areas up to this factor apart (more than the IoU and centre passes
            allow): an object stepping out from behind another, or a mask the model cut short
            in the previous frame. 0 disables it.
        growth_center_distance: see `max_growth_ratio`, in object sizes (sqrt of the larger area).
        takeover_hits: pass 5f, after every other (with the colour cue's re-identification
            on): a track matched at most this many times, first seen after a lost track was
            last seen, hands the segment it matched to that lost track when the two pass the
            re-identification gates (class, colour within reid_colour, centre within
            reid_distance object sizes of where the lost one may be, areas within
            reid_area_ratio), and is removed: an object that came back from behind an
            occluder first as a sliver too unlike it to be recognised has its old id again
            from then on. 0 disables it.
        center_weight: 0: the centre pass runs after the IoU passes, on what they left. > 0:
            one joint pass per score level whose cost is 1 - IoU + center_weight x normalised
            centre distance, pairs allowed by either gate (neighbouring small objects are told
            apart by position as well as overlap).
        center_size_weight: in the centre pass (not merged: `center_weight` 0), a pair's cost
            is lowered by this x ln(segment area / `small_object_area`): where a track may
            continue into one of several segments, the larger is preferred, since a new object
            enters small (far away at the horizon, or cut by the frame border). Every track pays
            the same for a given segment, so the term decides which segments are left over to
            start new tracks rather than which track takes which. 0 disables it.
        small_object_area: in area ratios and object sizes, a mask counts as at least this
            many (grid) pixels: the area of a tiny mask jumps by whole factors from frame to frame.
        scale_prediction: with motion prediction, also track each object's growth rate (from
            its area, when the mask is at least `scale_min_area` grid pixels and clear of the
            frame border) and scale the remembered mask about its centre accordingly; the centre
            then moves at a speed that grows with the size (a forward-driving camera).
        scale_min_area: smallest mask (grid pixels) whose area change updates the growth rate
            (the area of a small mask is dominated by boundary noise).
        max_scale_rate: growth rates are clipped to +- this much per second (d log(size) / dt;
            3.0: a size growing by 3 x its own size per second).
        growth_model: how the size is extrapolated from the growth rate r over dt: "contact"
            (1 / size linear in time, an object closing in at a constant speed: x 1 / (1 - r
            dt), so an approaching object's growth accelerates) or "exponential" (x e^(r dt));
            see `lifecycle.TrackTable`.
        max_predicted_growth: with "contact", the largest predicted growth factor of linear
            size (the model diverges as r dt nears 1).
        max_outside_fraction: a track whose predicted mask lies more than this fraction outside
            the frame has left the view: if it was not matched in the previous frame it may not
            be matched (it cannot claim a newcomer entering at that border), and if it is left
            unmatched it has departed (see `reentry_distance`). 1 disables it.
        outside_min_iou: ... except to a segment its predicted mask overlaps by at least this
            IoU: the object is still there, cut by the border (a car missed for a frame as it
            drives out of view).
        reentry_distance: a departed track is kept until `max_lost_seconds` and matches
            nothing but a confident segment coming back into view: touching the frame border,
            within this many object sizes of where the track was last seen (moved with the
            camera), and passing the re-identification gates (5d, 5f: colour within
            reid_colour, area): a person at the edge of a crowd who stepped out and back, or
            the camera shaking or panning back. 0: departed tracks are removed at once.
        mask_samples: a remembered mask of at least 4x this many grid pixels keeps only the
            pixels of a regular sub-grid of step m (the power of two with m² <= area /
            mask_samples < 4 m²), each standing for m² pixels: IoU of large masks is estimated
            from mask_samples to 4 x mask_samples pixels, so the cost stops growing with
            object size; 0 = keep every pixel.
        max_pixels: frames with more pixels are subsampled on a regular grid (stride
            ceil(sqrt(H*W / max_pixels))) for association; 0 = never.
        appearance_weight, appearance_scale, appearance_gate, appearance_smoothing, reid_distance,
        reid_colour, histogram_bits: the colour cue, see `appearance.AppearanceCue` (weight,
            scale, gate, smoothing, reid_radius, reid_colour, bits). The colour distance of
            two segments is 1 - the Bhattacharyya overlap of their colour histograms (0 = the
            same colours, 1 = none in common). Each pass's cost gains weight x min(distance /
            scale, 1), pairs farther apart than the gate never match, and a last pass (5d)
            matches what is left by colour (distance at most reid_colour) within
            reid_distance object sizes of the predicted centre, or of the centre
            extrapolated at constant velocity for the whole time lost (up to
            `max_lost_seconds`: an object hidden longer than `max_predict_seconds` has walked
            on behind its occluder), with an area within `reid_area_ratio` of anything from
            the track's predicted area to its full area (more than the centre pass allows: a
            near car at a low frame rate grows several times between frames; colour vouches
            for it). histogram_bits: 2^bits levels per RGB channel.
            colour_boundary_weight: a thing's boundary pixels (a grid neighbour outside it,
            where a model's masks are noisy) count this much of an interior pixel in its
            histogram, in [0, 1]; 1 = every pixel alike.
            Weight, gate and reid_distance all 0 = off (no pixels read); off by itself on
            frames without pixels.
        full_area_seconds: each track remembers its full area, the largest area it was seen
            with, fading by e^(-dt / this) over time dt (s): its size before an occluder began
            to cut it. Re-identification (5d, 5f) accepts any area from the predicted one up
            to the full one (predicted alike), widened by `reid_area_ratio`, so a person who
            shrank to a sliver behind someone comes back whole with their id. 0: the
            predicted area only.
        device: where the IoU histogram is computed; defaults to the id map's device.
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
        velocity_smoothing: float = 0.5,
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
        id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
        if self.device is not None:
            id_map = id_map.to(self.device)
        now = float(pf.frame.time)
        shape = tuple(id_map.shape)
        if self._shape is not None and self._shape != shape:
            raise ValueError(f"frame size changed from {self._shape} to {shape}; reset() the tracker first")
        self._shape = shape
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
