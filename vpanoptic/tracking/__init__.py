"""Trackers: temporally consistent ids for thing segments.

`build_tracker(name, **kwargs)` is the factory: "hungarian" (the default: mask IoU +
Hungarian, camera-motion compensation, motion prediction, life cycle), "greedy" (greedy
previous-frame mask IoU, a baseline), "kalman" (a candidate: per-track Kalman motion state,
mask IoU of the motion-predicted mask, stages by confidence; `kalman.py`), "none"
(pass-through), and the box trackers of roboflow `trackers` fed one box per thing segment: "bytetrack", "sort", "ocsort"
(`peers.py`; ``pip install 'vpanoptic[trackers]'``).
"""

from __future__ import annotations

import inspect

from .base import Tracker, torch_single_thread
from .baselines import GreedyTracker, PassThroughTracker
from .cost import mask_iou_from_index_maps, pair_histogram, thing_label_map
from .hungarian import HungarianTracker
from .kalman import KalmanMaskTracker
from .motion import CameraMotionEstimator
from .peers import PEER_TRACKERS, BoxTrackerAdapter, build_peer_tracker, thing_boxes

TRACKERS = ("hungarian", "kalman", "greedy", "none", *PEER_TRACKERS)

__all__ = [
    "TRACKERS",
    "BoxTrackerAdapter",
    "CameraMotionEstimator",
    "GreedyTracker",
    "HungarianTracker",
    "KalmanMaskTracker",
    "PassThroughTracker",
    "Tracker",
    "build_tracker",
    "mask_iou_from_index_maps",
    "pair_histogram",
    "thing_boxes",
    "thing_label_map",
    "torch_single_thread",
]


def build_tracker(name: str = "hungarian", **kwargs) -> Tracker:
    """Tracker by name.

    Every keyword is a `HungarianTracker` argument (the fields of `TrackerConfig`). The
    baselines accept the same keywords and use what applies to them ("greedy":
    `iou_threshold`, `device`; the box trackers: `fps`, the frame rate given to the library,
    whose default (30) applies otherwise); an unknown keyword is an error for every name.
    """
    own = set(inspect.signature(KalmanMaskTracker).parameters)
    known = set(inspect.signature(HungarianTracker).parameters) | ({"fps"} if name in PEER_TRACKERS else set())
    known |= own if name == "kalman" else set()
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown tracker option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if name == "hungarian":
        return HungarianTracker(**kwargs)
    if name == "greedy":
        return GreedyTracker(**{k: v for k, v in kwargs.items() if k in ("iou_threshold", "device")})
    if name == "kalman":  # the keywords it shares with the hungarian tracker mean the same
        return KalmanMaskTracker(**{k: v for k, v in kwargs.items() if k in own})
    if name == "none":
        return PassThroughTracker()
    if name in PEER_TRACKERS:
        return build_peer_tracker(name, fps=kwargs.get("fps"))
    raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
