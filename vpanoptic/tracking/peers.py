"""Box trackers from other libraries, run on panoptic frames.

A box tracker sees one detection per thing segment: the segment's tight box ``(x1, y1, x2,
y2)``, its score and its class. It answers, for each detection it matched to a track, that
track's id; `BoxTrackerAdapter` paints those ids back onto the segments and gives every
segment the tracker left out (a tentative track, a low-score detection) a fresh id of its
own, so every thing has a track id as with vpanoptic's own trackers. Library ids are mapped
to ids counted by the adapter, so `reset()` restarts them at 1 whatever the library counts.

The trackers of roboflow `trackers` (ByteTrack, SORT, OC-SORT; Apache-2.0) are registered
by name (`build_peer_tracker`), imported only when used: ``pip install 'vpanoptic[trackers]'``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from scipy.ndimage import find_objects

from ..types import PanopticFrame
from .base import Tracker

__all__ = ["PEER_TRACKERS", "BoxStep", "BoxTrackerAdapter", "build_peer_tracker", "thing_boxes"]

INSTALL_HINT = "pip install 'vpanoptic[trackers]'"


class BoxStep(Protocol):
    """One frame of a box tracker.

    Called with boxes ``(M, 4) float32`` xyxy pixels, scores ``(M,) float32``, classes
    ``(M,) int64`` and the image ``(H, W, 3) uint8`` (RGB; None without pixels); returns
    ``(M,) int64``: the tracker's id for each detection, 0 where it gave none.
    """

    def __call__(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, image) -> np.ndarray: ...


def thing_boxes(pf: PanopticFrame) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the thing segments of `pf` that have pixels, and their tight boxes.

    Returns:
        ``(M,) int64`` indices into the segments of `pf`, and ``(M, 4) float32`` boxes
        ``(x1, y1, x2, y2)`` in pixels (x2, y2 exclusive). A thing segment without a pixel
        in `id_map` gets no box.
    """
    id_map = pf.id_map_numpy()
    thing_idx = np.flatnonzero(pf.is_thing)
    if thing_idx.size == 0:
        return thing_idx.astype(np.int64), np.zeros((0, 4), np.float32)
    ids = pf.segment_ids[thing_idx].astype(np.int64)
    lut = np.zeros(int(pf.segment_ids.max()) + 1, np.int32)
    lut[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    slices = find_objects(lut[id_map], max_label=ids.size)  # one (rows, cols) slice pair per label, None if absent
    keep = np.array([s is not None for s in slices], bool)
    boxes = np.array(
        [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices if s is not None], np.float32
    ).reshape(-1, 4)
    return thing_idx[keep].astype(np.int64), boxes


class BoxTrackerAdapter(Tracker):
    """A box tracker fed one detection per thing segment; its ids painted back on the segments.

    Args:
        make_step: builds a fresh `BoxStep` (called at construction and on every `reset()`).
        name: shown in `repr`.
    """

    def __init__(self, make_step: Callable[[], BoxStep], name: str = "box tracker"):
        self._make_step = make_step
        self.name = name
        self.reset()

    def __repr__(self) -> str:
        return f"BoxTrackerAdapter({self.name!r})"

    def reset(self) -> None:
        self._step = self._make_step()
        self._book: dict[int, int] = {}  # library id -> our id
        self._next_id = 1

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        idx, boxes = thing_boxes(pf)
        scores = pf.scores[idx].astype(np.float32)
        classes = pf.category_ids[idx].astype(np.int64)
        image = None if pf.frame.image is None or pf.frame.image.size == 0 else pf.frame.image
        # called on every frame, empty or not: the libraries count lost time in frames
        lib_ids = np.asarray(self._step(boxes, scores, classes, image), np.int64).reshape(-1)
        if lib_ids.shape != (idx.size,):
            raise ValueError(f"box tracker returned {lib_ids.shape} ids for {idx.size} detections")
        track_ids = np.where(pf.is_thing, 0, -1).astype(np.int32)
        for i, lib in zip(idx.tolist(), lib_ids.tolist()):
            if lib > 0 and lib not in self._book:
                self._book[lib] = self._next_id
                self._next_id += 1
            if lib > 0:
                track_ids[i] = self._book[lib]
            else:  # left out by the tracker: a track of one frame
                track_ids[i] = self._next_id
                self._next_id += 1
        for i in np.flatnonzero(track_ids == 0):  # things without pixels
            track_ids[i] = self._next_id
            self._next_id += 1
        pf.track_ids = track_ids
        return pf


def ids_by_index(n: int, det_index: np.ndarray, lib_ids: np.ndarray) -> np.ndarray:
    """``(n,) int64`` ids: ``lib_ids[k]`` at detection ``det_index[k]``, 0 elsewhere."""
    out = np.zeros(n, np.int64)
    det_index = np.asarray(det_index, np.int64)
    ok = (det_index >= 0) & (det_index < n)
    out[det_index[ok]] = np.asarray(lib_ids, np.int64)[ok]
    return out


def _roboflow_step(kind: str, fps: float | None) -> Callable[[], BoxStep]:
    try:
        import supervision as sv
        import trackers
    except ImportError as e:
        raise ImportError(f"tracker {kind!r} needs roboflow trackers: {INSTALL_HINT}") from e
    cls = {"bytetrack": "ByteTrackTracker", "sort": "SORTTracker", "ocsort": "OCSORTTracker"}[kind]
    tracker_cls = getattr(trackers, cls, None)
    if tracker_cls is None:
        raise ImportError(f"this version of roboflow trackers has no {cls}: {INSTALL_HINT}")

    def make() -> BoxStep:
        kwargs = {}
        if fps is not None and "frame_rate" in tracker_cls.__init__.__code__.co_varnames:
            kwargs["frame_rate"] = fps
        tracker = tracker_cls(**kwargs)

        def step(boxes, scores, classes, image):
            n = boxes.shape[0]
            dets = sv.Detections(xyxy=boxes.astype(np.float32), confidence=scores, class_id=classes,
                                 data={"det_index": np.arange(n)})
            out = tracker.update(dets)
            if not len(out):  # an empty result carries no data
                return np.zeros(n, np.int64)
            tid = np.asarray(out.tracker_id if out.tracker_id is not None else np.full(len(out), -1), np.int64)
            # the library counts ids from 0 and marks "no id" with -1
            return ids_by_index(n, out.data["det_index"], np.where(tid >= 0, tid + 1, 0))

        return step

    return make


PEER_TRACKERS = ("bytetrack", "sort", "ocsort")


def build_peer_tracker(name: str, *, fps: float | None = None, device: str | torch.device | None = None) -> Tracker:
    """A roboflow `trackers` tracker ("bytetrack", "sort", "ocsort") behind `BoxTrackerAdapter`.

    `fps` is passed as the library's frame rate where its constructor takes one (its
    default otherwise); `device` is accepted for a uniform signature and unused (the box
    trackers run in NumPy).
    """
    if name not in PEER_TRACKERS:
        raise ValueError(f"unknown peer tracker {name!r}; choose from {', '.join(PEER_TRACKERS)}")
    return BoxTrackerAdapter(_roboflow_step(name, fps), name=f"trackers.{name}")
