"""Association passes of the Hungarian tracker: step 5 of `HungarianTracker.update`.

The inputs are one frame's matrices between the T live tracks and the M current things:
IoU and containment of each track's predicted mask with each thing (`cost.py`), each
track's predicted motion, and the things' classes, scores, centres, areas and colour
histograms. Each pass sees only the tracks and things that the earlier ones left:

- 5a: Hungarian on 1 - IoU for the confident segments (score >= `high_score_threshold`;
  every segment without `low_score_pass`);
- 5b: the same for the low-score segments, against the tracks 5a left (`low_score_pass`);
- 5c: centre distance, for small or thin objects that moved more than their own size
  (`max_center_distance`), the larger of two candidate segments preferred
  (`center_size_weight`: a new object enters small, far away or at a border, so the
  smaller one is the likelier newcomer); with `center_weight` > 0 it is merged into 5a and
  5b instead;
- 5d: re-identification by colour near the predicted centre
  (`AppearanceCue.reid_radius`; for a lost track, anywhere between where its prediction
  stopped and where constant velocity would have taken it since it was last seen), at any
  area from the predicted one up to the track's full area (the largest it was seen with
  lately: an object that shrank behind an occluder may come back whole), for
  confident segments only: a low-score segment continues a track by overlap (5b) or centre
  (5c), never by colour at a distance (most low-score segments are false positives, and one
  taken by a lost track keeps it alive and spreads its id over them); then the exits
  (`exit_any_area`): a segment touching the frame border that lies inside the prediction
  of a track running out of the frame continues it at any area (a car driving out of view
  shows only a sliver in its last frame; after re-identification, so a sliver that its own
  track recognises is not taken by a car leaving past it);
- 5e: a track and a confident segment that are each other's only candidate are paired
  even when their areas differ a lot (an object stepping out from behind another,
  `max_growth_ratio`);
- 5f: a young track hands the segment it matched to a lost track that passes the
  re-identification gates, and retires (an object that came back from behind an occluder
  as a sliver too unlike it to be recognised, `takeover_hits`).

In 5a-5c tracks seen a frame ago and lost ones are assigned jointly, the lost ones at a
higher cost (`lost_penalty`; or strictly after, `lost_last`). Every pass is gated by class
and by the colour gate, and a lost track predicted out of the frame has left
(`max_outside_fraction`: it may not claim a newcomer, unless its predicted mask overlaps
the segment by an IoU of at least `outside_min_iou`: the object is still there, cut by the
border); a track that left and stayed unmatched has departed (`TrackTable.departed`): only
5d and 5f may match it, to a segment coming back in at the border within
`reentry_distance` object sizes of where it was last seen; 5a and 5b are also gated by a
minimum IoU (or containment, for masks that grow and shrink), and all but 5e weigh the
colour distance into their cost. The thresholds are the `HungarianTracker` arguments of
the same names (documented there), gathered in `AssociationParams`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .appearance import AppearanceCue
from .cost import FORBIDDEN, assign
from .lifecycle import TrackTable

__all__ = ["AssociationParams", "area_ratio", "associate", "centre_distance"]


@dataclass(frozen=True)
class AssociationParams:
    """The thresholds of the association passes: each field is the `HungarianTracker`
    argument of the same name (validated and documented there). A new threshold is one more
    field here and one more tracker argument (stored as an attribute of that name): the
    tracker builds its instance with `of`, which reads every field off it."""

    iou_threshold: float
    min_containment: float
    max_containment_ratio: float
    exit_any_area: bool
    lost_last: bool
    lost_penalty: float
    low_score_pass: bool
    high_score_threshold: float
    max_center_distance: float
    max_area_ratio: float
    max_growth_ratio: float
    growth_center_distance: float
    reid_area_ratio: float
    takeover_hits: int
    center_weight: float
    center_size_weight: float
    small_object_area: float
    max_outside_fraction: float
    outside_min_iou: float
    reentry_distance: float
    motion_prediction: bool
    max_lost_seconds: float

    @classmethod
    def of(cls, tracker: object) -> AssociationParams:
        """The fields' values read from the attributes of the same names on `tracker`."""
        return cls(**{f.name: getattr(tracker, f.name) for f in fields(cls)})


def centre_distance(
    track_centre: np.ndarray, track_area: np.ndarray, centre: np.ndarray, area: np.ndarray, small_object_area: float
) -> np.ndarray:
    """``(R, C) float64`` distance between centres in object sizes (sqrt of the larger area,
    counted as at least `small_object_area`); non-finite distances are `FORBIDDEN`.

    Args:
        track_centre: ``(R, 2)`` (y, x) predicted track centres; track_area: ``(R,)`` their areas.
        centre: ``(C, 2)`` (y, x) centres of current things; area: ``(C,)`` their areas.
    """
    dist = np.hypot(
        track_centre[:, None, 0] - centre[None, :, 0], track_centre[:, None, 1] - centre[None, :, 1]
    )  # [R, C]
    big = np.maximum(np.maximum(track_area[:, None], area[None, :]), small_object_area)
    norm = dist / np.sqrt(big)
    return np.where(np.isfinite(norm), norm, FORBIDDEN)


def area_ratio(track_area: np.ndarray, area: np.ndarray, small_object_area: float) -> np.ndarray:
    """``(R, C) float64`` larger / smaller of `track_area` ``(R,)`` and `area` ``(C,)``, each
    counted as at least `small_object_area`."""
    a = np.maximum(track_area, small_object_area)[:, None]
    b = np.maximum(area, small_object_area)[None, :]
    return np.maximum(a, b) / np.minimum(a, b)


def associate(
    params: AssociationParams,
    app: AppearanceCue,
    tracks: TrackTable,
    *,
    now: float,
    prev_time: float,
    categories: np.ndarray,
    scores: np.ndarray,
    centroids: np.ndarray,
    areas: np.ndarray,
    clipped: np.ndarray,
    hists: np.ndarray,
    iou: np.ndarray,
    contain: np.ndarray,
    inside: np.ndarray,
    shift: np.ndarray,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Match the T `tracks` (at frame time `now`; the previous frame was at `prev_time`) to
    the M current things, pass by pass (5a-5e, see the module docstring).

    Args:
        params: the thresholds; app: the colour cue (its cost, gate and re-identification).
        tracks: the live tracks; their centres and areas as of the last frame seen, already
            carried into this frame by the camera (`warp` still to apply to the area).
        categories: ``(M,) int64`` class of each current thing; scores: ``(M,)`` in [0, 1].
        centroids: ``(M, 2)`` (y, x) grid pixels; areas: ``(M,)`` grid pixels; clipped:
            ``(M,) bool`` touching the frame border; hists: ``(M, bins)`` colour histograms
            (`AppearanceCue.histograms`).
        iou, contain: ``(T, M) float64`` IoU and containment (intersection over the smaller
            area) of each track's predicted mask with each thing; inside: ``(T,)`` fraction
            of each predicted mask inside the frame.
        shift: ``(T, 2)`` (y, x) predicted motion since each track was seen; scale: ``(T,)``
            its predicted growth (linear size factor).
    Returns:
        ``(track_of (M,) int64, free_t (T,) bool, retired (T,) bool)``: the matched track
        slot of each thing (-1: none), the tracks left unmatched, and the young tracks that
        handed their segment to a lost track (5f; to remove).
    """
    n_tracks, n_cur = len(tracks), len(categories)
    if not (n_tracks and n_cur):
        return np.full(n_cur, -1, np.int64), np.ones(n_tracks, bool), np.zeros(n_tracks, bool)
    passes = _Passes(
        params, app, tracks, now, prev_time, categories, scores, centroids, areas, clipped, hists, iou, inside, shift,
        scale,
    )
    passes.overlap(iou, contain)  # 5a, 5b (with 5c when joint)
    passes.centre_and_reid()  # 5c, 5d
    passes.exits(iou, contain)  # 5d, last
    passes.unique_pairs(contain)  # 5e
    passes.takeover()  # 5f
    return passes.track_of, passes.free_t, passes.retired


class _Passes:
    """One frame's association: the inputs of `associate`, what the passes share (the pairs
    that may match at all, predicted centres and areas, colour costs), and the matching so
    far (`track_of`, `free_t`), which each pass extends in place."""

    def __init__(
        self,
        params: AssociationParams,
        app: AppearanceCue,
        tracks: TrackTable,
        now: float,
        prev_time: float,
        categories: np.ndarray,
        scores: np.ndarray,
        centroids: np.ndarray,
        areas: np.ndarray,
        clipped: np.ndarray,
        hists: np.ndarray,
        iou: np.ndarray,
        inside: np.ndarray,
        shift: np.ndarray,
        scale: np.ndarray,
    ):
        self.p, self.app, self.tracks, self.now = params, app, tracks, now
        self.centroids, self.areas = centroids, areas  # [M, 2], [M]
        self.clipped, self.inside = clipped, inside  # [M] touching the border, [T] share of prediction in frame
        n_tracks, n_cur = len(tracks), len(categories)
        self.track_of = np.full(n_cur, -1, np.int64)  # [M] matched track slot per current thing
        self.free_t = np.ones(n_tracks, bool)  # [T] tracks not matched yet
        self.retired = np.zeros(n_tracks, bool)  # [T] young tracks that handed their segment on (5f)
        self.pred_centre = tracks.centroid + shift  # [T, 2] predicted (y, x)
        grown = (scale * tracks.warp[:, 0]) ** 2  # [T] predicted growth of area (motion and zoom)
        self.pred_area = tracks.area * grown  # [T] predicted area
        self.pred_full_area = tracks.full_area * grown  # [T] ... before an occlusion, >= it
        self.confident = (
            scores >= params.high_score_threshold if params.low_score_pass else np.ones(n_cur, bool)
        )  # [M]
        self.recent = tracks.last_seen >= prev_time  # [T] seen in the previous frame
        # 5a-5c: tracks seen in the previous frame choose first, lost ones get what they leave;
        # or all rows at once
        self.row_groups = (self.recent, ~self.recent) if params.lost_last else (np.ones(n_tracks, bool),)
        self.joint = params.center_weight > 0 and params.max_center_distance > 0  # centre distance in 5a, 5b
        self.app_dist = app.distance(tracks.hist_root, hists)  # [T, M] in [0, 1], NaN where unknown
        self.app_cost, app_ok = app.cost(self.app_dist)  # [T, M], [T, M] bool
        # pairs any pass may match: one class, within the colour gate, and not a lost track
        # predicted out of the frame (it has left: it may not claim a newcomer), unless its
        # prediction overlaps the segment well (the object is still there, cut by the border)
        left = ~self.recent & (inside < 1 - params.max_outside_fraction)  # [T]
        same_class = tracks.categories[:, None] == categories[None, :]  # [T, M]
        departed = tracks.departed[:, None]  # [T, 1] left the view earlier: matched only on re-entry
        near_in = ~left[:, None] | (iou >= params.outside_min_iou)  # [T, M]
        self.may_match = same_class & near_in & app_ok & ~departed  # [T, M]
        # 5d and 5f also let a track that left the view take a segment coming back in: one
        # touching the border within `reentry_distance` object sizes of where it was last seen
        self.may_reid = self.may_match
        if params.reentry_distance > 0 and (left.any() or departed.any()):
            back = clipped[None, :] & (
                centre_distance(tracks.centroid, tracks.area * tracks.warp[:, 0] ** 2, centroids, areas,
                                params.small_object_area) <= params.reentry_distance
            )  # [T, M]
            self.may_reid = self.may_match | (same_class & app_ok & (left[:, None] | departed) & back)

    def _match(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Record the pairs (`rows` track slots, `cols` thing indices) as matched."""
        self.track_of[cols], self.free_t[rows] = rows, False

    def _left_over(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)``: slots of the tracks and indices of the things not matched yet."""
        return np.flatnonzero(self.free_t), np.flatnonzero(self.track_of < 0)

    def _centre(self, rows: np.ndarray, cols: np.ndarray, track_centre: np.ndarray | None = None) -> np.ndarray:
        """``(R, C)`` `centre_distance` of tracks `rows` (at `track_centre` ``(T, 2)``, default
        their predicted centres) to things `cols`."""
        track_centre = self.pred_centre if track_centre is None else track_centre
        return centre_distance(
            track_centre[rows], self.pred_area[rows], self.centroids[cols], self.areas[cols], self.p.small_object_area
        )

    def _area_ratio(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``(R, C)`` `area_ratio` of the predicted areas of tracks `rows` and things `cols`."""
        return area_ratio(self.pred_area[rows], self.areas[cols], self.p.small_object_area)

    def _near(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The centre pass between tracks `rows` and things `cols` (index arrays): ``(near,
        centre, area_ok)``, each ``(R, C)``: pairs close enough for the pass (bool, among
        `may_match`), centre distances in object sizes, areas within `max_area_ratio` (bool)."""
        centre = self._centre(rows, cols)
        area_ok = self._area_ratio(rows, cols) <= self.p.max_area_ratio
        near = self.may_match[np.ix_(rows, cols)] & area_ok & (centre <= self.p.max_center_distance)
        return near, centre, area_ok

    def overlap(self, iou: np.ndarray, contain: np.ndarray) -> None:
        """5a and 5b: Hungarian on 1 - IoU (+ colour, + lost penalty, + centre distance when
        joint) for the confident segments, then for the low-score ones, over the pairs with
        an IoU of at least `iou_threshold`, or a containment (`contain` ``(T, M)``) of at
        least `min_containment` with areas at most `max_containment_ratio` apart."""
        p = self.p
        contained = (contain >= p.min_containment) & (
            area_ratio(self.pred_area, self.areas, p.small_object_area) <= p.max_containment_ratio
        )  # [T, M]
        ok_iou = self.may_match & ((iou >= p.iou_threshold) | contained)
        cost, limit = 1.0 - iou + self.app_cost, None  # [T, M]
        if self.joint:  # IoU and centre distance in one pass
            near, centre, _ = self._near(np.arange(self.free_t.size), np.arange(self.track_of.size))
            ok_iou |= near
            cost = cost + p.center_weight * np.minimum(centre, p.max_center_distance)
            limit = 1.0 + p.center_weight * p.max_center_distance + self.app.weight + 1e-3
        if not p.lost_last and p.lost_penalty:  # one joint assignment; lost tracks pay extra
            cost = cost + p.lost_penalty * (~self.recent)[:, None]
            limit = None if limit is None else limit + p.lost_penalty
        for cols_on in (self.confident, ~self.confident):  # 5a: confident segments; 5b: low-score ones
            if not cols_on.any():
                continue
            for rows_on in self.row_groups:
                allowed = ok_iou & (self.free_t & rows_on)[:, None] & (cols_on & (self.track_of < 0))[None, :]
                self._match(*assign(cost, allowed, limit))

    def centre_and_reid(self) -> None:
        """5c: the centre pass (unless joint), then 5d: re-identification by colour, both on
        what the IoU passes left."""
        centre_pass = self.p.max_center_distance > 0 and not self.joint
        reid = self.app.reid_radius > 0
        if not (centre_pass or reid) or not self.free_t.any() or not (self.track_of < 0).any():
            return
        rows, cols = self._left_over()
        near, centre, area_ok = self._near(rows, cols)  # [R, C] each
        if centre_pass:
            # larger segments cost less: of two a track may take, the smaller is left to start
            # a new track (a per-segment term: it changes which segments are taken, not by whom)
            size = np.log(np.maximum(self.areas[cols], self.p.small_object_area) / self.p.small_object_area)  # [C]
            cost = centre + self.app_cost[np.ix_(rows, cols)] - self.p.center_size_weight * size[None, :]
            for rows_on in self.row_groups:
                allowed = near & (self.free_t & rows_on)[rows, None] & (self.track_of < 0)[None, cols]
                r, c = assign(cost, allowed)
                self._match(rows[r], cols[c])
        # re-identification by colour at a distance: confident segments only
        on_r, on_c = self.free_t[rows], (self.track_of[cols] < 0) & self.confident[cols]
        if reid and on_r.any() and on_c.any():
            inner = np.ix_(np.flatnonzero(on_r), np.flatnonzero(on_c))
            self._reidentify(rows[on_r], cols[on_c], centre[inner])

    def _reach(self, rows: np.ndarray, cols: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
        """``(R, C)`` distance in object sizes from things `cols` to where tracks `rows` may
        be: a lost one anywhere between where its prediction stopped (`centre`, their
        ``(R, C)`` predicted centre distances, computed when None) and where constant velocity
        would have taken it since it was last seen (up to `max_lost_seconds`)."""
        reach = self._centre(rows, cols) if centre is None else centre
        if self.p.motion_prediction:
            far_centre = self.tracks.centroid + self.tracks.predict(self.now, self.p.max_lost_seconds)[0]  # [T, 2]
            reach = np.minimum(reach, self._centre(rows, cols, far_centre))
        return reach

    def _reid_area_ratio(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``(R, C)`` how far the areas of things `cols` lie outside the range of tracks
        `rows` from predicted area to predicted full area (`TrackTable.full_area`): the factor
        to the nearer end, 1 within. A lost object that shrank behind an occluder may come back
        at any size up to its full one."""
        small = self.p.small_object_area
        low = np.maximum(self.pred_area[rows], small)[:, None]
        high = np.maximum(self.pred_full_area[rows], small)[:, None]
        area = np.maximum(self.areas[cols], small)[None, :]
        return np.maximum(np.maximum(low / area, area / high), 1.0)

    def takeover(self) -> None:
        """5f: a young track (matched at most `takeover_hits` times, first seen after a lost
        track was last seen) hands the segment it matched to that lost track when they pass
        the re-identification gates: one class, similar colour, within `reid_radius` object
        sizes of where the lost one may be, an area within `reid_area_ratio` of its range
        (`_reid_area_ratio`). An object that came back from behind an occluder first as a
        sliver (too unlike it to be recognised) and got a new track then takes its old id
        back; the young track retires."""
        p, tracks = self.p, self.tracks
        if not p.takeover_hits or not self.app.reid_radius > 0:
            return
        cols = np.flatnonzero(self.track_of >= 0)
        young = self.track_of[cols]
        keep = tracks.hits[young] <= p.takeover_hits
        cols, young = cols[keep], young[keep]
        rows = np.flatnonzero(self.free_t & ~self.recent & (tracks.hits > p.takeover_hits))
        if not cols.size or not rows.size:
            return
        after = tracks.born[young][None, :] > tracks.last_seen[rows][:, None]  # [R, C]
        ok, cost = self._reid_pairs(rows, cols)
        r, c = assign(cost, ok & after)
        if not r.size:
            return
        self.retired[young[c]] = True
        self.free_t[young[c]] = True
        self._match(rows[r], cols[c])

    def _reid_pairs(
        self, rows: np.ndarray, cols: np.ndarray, centre: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The re-identification gates and cost between tracks `rows` and things `cols` (5d,
        5f): ``(ok, cost)``, each ``(R, C)``: pairs of one class and similar colour, within
        `reid_radius` object sizes of where the track may be (`_reach`, from the predicted
        `centre` distances when given) and with an area within `reid_area_ratio` of the
        track's range from predicted to full area (`_reid_area_ratio`); cost = that distance
        + colour."""
        sub = np.ix_(rows, cols)
        reach = self._reach(rows, cols, centre)
        ok = (
            self.may_reid[sub]
            & self.app.similar(self.app_dist[sub])
            & (self._reid_area_ratio(rows, cols) <= self.p.reid_area_ratio)
            & (reach <= self.app.reid_radius)
        )
        return ok, reach + self.app_cost[sub]

    def _reidentify(self, rows: np.ndarray, cols: np.ndarray, centre: np.ndarray) -> None:
        """5d between left-over tracks `rows` and things `cols`, given their ``(R, C)``
        predicted `centre` distances from the centre pass: the pairs `_reid_pairs` allows,
        matched by distance + colour. A lost object is somewhere between where its
        prediction stopped and where it would be at constant velocity all along (up to
        `max_lost_seconds`)."""
        ok, cost = self._reid_pairs(rows, cols, centre)
        r, c = assign(cost, ok)
        self._match(rows[r], cols[c])

    def exits(self, iou: np.ndarray, contain: np.ndarray) -> None:
        """End of 5d (`exit_any_area`): a left-over track whose predicted mask runs out of the
        frame and a left-over segment touching the frame border, at least `min_containment`
        inside that prediction (`contain` ``(T, M)``), are matched at any area, by Hungarian
        on 1 - IoU (`iou` ``(T, M)``) + colour. An object driving out of view shows less of
        itself each frame, faster than its prediction can tell."""
        if not self.p.exit_any_area or not self.free_t.any() or not (self.track_of < 0).any():
            return
        rows, cols = self._left_over()
        sub = np.ix_(rows, cols)
        leaving = (self.inside[rows] < 1.0)[:, None] & self.clipped[None, cols]  # [R, C]
        allowed = self.may_match[sub] & leaving & (contain[sub] >= self.p.min_containment)
        r, c = assign(1.0 - iou[sub] + self.app_cost[sub], allowed)
        self._match(rows[r], cols[c])

    def unique_pairs(self, contain: np.ndarray) -> None:
        """5e: a left-over track and a left-over confident segment of one class (within the
        colour gate) are matched when each is the other's only candidate: the smaller mask at
        least `min_containment` inside the other (`contain` ``(T, M)``), or their predicted
        centres within `growth_center_distance` object sizes, with areas up to
        `max_growth_ratio` apart."""
        p = self.p
        if not p.max_growth_ratio > 0 or not self.free_t.any() or not (self.track_of < 0).any():
            return
        rows, cols = self._left_over()
        sub = np.ix_(rows, cols)
        close = (contain[sub] >= p.min_containment) | (self._centre(rows, cols) <= p.growth_center_distance)
        allowed = self.may_match[sub] & self.confident[None, cols]
        cand = allowed & close & (self._area_ratio(rows, cols) <= p.max_growth_ratio)  # [R, C]
        unique = cand & (cand.sum(1, keepdims=True) == 1) & (cand.sum(0, keepdims=True) == 1)
        r, c = np.nonzero(unique)
        self._match(rows[r], cols[c])
