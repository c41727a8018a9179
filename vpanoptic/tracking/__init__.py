"""Trackers: temporally consistent ids for thing segments.

`build_tracker(name, **kwargs)` is the factory: "hungarian" (the default: mask IoU +
Hungarian, camera-motion compensation, motion prediction, life cycle), "greedy" (greedy
previous-frame mask IoU, a baseline) and "none" (pass-through).
"""

from __future__ import annotations

import inspect

from .base import Tracker, torch_single_thread
from .baselines import GreedyTracker, PassThroughTracker
from .cost import mask_iou_from_index_maps, pair_histogram, thing_label_map
from .hungarian import HungarianTracker
from .motion import CameraMotionEstimator

TRACKERS = ("hungarian", "greedy", "none")

__all__ = [
    "TRACKERS",
    "CameraMotionEstimator",
    "GreedyTracker",
    "HungarianTracker",
    "PassThroughTracker",
    "Tracker",
    "build_tracker",
    "mask_iou_from_index_maps",
    "pair_histogram",
    "thing_label_map",
    "torch_single_thread",
]


def build_tracker(name: str = "hungarian", **kwargs) -> Tracker:
    """Tracker by name.

    Every keyword is a `HungarianTracker` argument (the fields of `TrackerConfig`). The
    baselines accept the same keywords and use what applies to them ("greedy":
    `iou_threshold`, `device`); an unknown keyword is an error for every name.
    """
    known = set(inspect.signature(HungarianTracker).parameters)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown tracker option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if name == "hungarian":
        return HungarianTracker(**kwargs)
    if name == "greedy":
        return GreedyTracker(**{k: v for k, v in kwargs.items() if k in ("iou_threshold", "device")})
    if name == "none":
        return PassThroughTracker()
    raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
