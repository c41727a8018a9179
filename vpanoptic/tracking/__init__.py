"""Trackers: temporally consistent ids for thing segments."""

from .base import Tracker
from .cost import mask_iou_from_index_maps
from .hungarian import HungarianTracker, PassThroughTracker

TRACKERS = ("hungarian", "none")

__all__ = ["Tracker", "HungarianTracker", "PassThroughTracker", "mask_iou_from_index_maps", "build_tracker", "TRACKERS"]


def build_tracker(name: str = "hungarian", **kwargs) -> Tracker:
    """Tracker by name: "hungarian" (mask IoU + Hungarian) or "none" (pass-through)."""
    if name == "hungarian":
        return HungarianTracker(**kwargs)
    if name == "none":
        return PassThroughTracker()
    raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
