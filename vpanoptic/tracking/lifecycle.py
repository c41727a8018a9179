"""Track life cycle: a struct of arrays over the live tracks, and per-instance id allocation.

States, derived from the arrays and the frame time (lifetimes in seconds, not frames):

- tentative: seen fewer than `min_hits` times; removed as soon as it has been unseen for
  longer than `tentative_max_lost_seconds` (a false positive does not linger);
- confirmed: seen at least `min_hits` times and matched in the current frame;
- lost: confirmed but unmatched in the current frame; kept (and matched against its
  predicted mask) for `max_lost_seconds`;
- removed: dropped from the table; its id is never given out again by this tracker.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONFIRMED", "LOST", "TENTATIVE", "TrackTable"]

TENTATIVE, CONFIRMED, LOST = 0, 1, 2


class TrackTable:
    """The live tracks of one tracker, as parallel arrays (row = track slot).

    Attributes:
        ids: ``(T,) int64`` track ids, > 0, unique, never reused within the table's life.
        categories: ``(T,) int64`` class of the track (its first confirmed observation's).
        last_seen: ``(T,) float64`` frame time (s) of the last match.
        centroid: ``(T, 2) float64`` (y, x) at `last_seen`, in current-frame coordinates
            (moved with the camera every frame).
        velocity: ``(T, 2) float64`` (y, x) pixels per second, camera motion removed.
        area: ``(T,) float64`` pixels at `last_seen`.
        hits: ``(T,) int64`` number of frames matched.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.categories = np.zeros(0, np.int64)
        self.last_seen = np.zeros(0, np.float64)
        self.centroid = np.zeros((0, 2), np.float64)
        self.velocity = np.zeros((0, 2), np.float64)
        self.area = np.zeros(0, np.float64)
        self.hits = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self.ids.size)

    def add(self, categories: np.ndarray, now: float, centroids: np.ndarray, areas: np.ndarray) -> np.ndarray:
        """Start ``n = len(categories)`` new tracks; returns their ``(n,)`` new slots."""
        n = len(categories)
        start = len(self)
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + n, dtype=np.int64)])
        self.next_id += n
        self.categories = np.concatenate([self.categories, np.asarray(categories, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, now)])
        self.centroid = np.concatenate([self.centroid, np.asarray(centroids, np.float64).reshape(n, 2)])
        self.velocity = np.concatenate([self.velocity, np.zeros((n, 2))])
        self.area = np.concatenate([self.area, np.asarray(areas, np.float64)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        return np.arange(start, start + n)

    def observe(
        self,
        slots: np.ndarray,
        now: float,
        centroids: np.ndarray,
        areas: np.ndarray,
        smoothing: float,
        max_area_change: float = np.inf,
    ) -> None:
        """Matched tracks at `slots` were seen at `centroids` ``(n, 2)`` with `areas` ``(n,)``.

        The velocity is an exponential moving average of displacement / elapsed time with
        weight `smoothing` on the newest step (the first step is taken as is). A step whose
        area changed by more than the factor `max_area_change` (an object being occluded or
        reappearing: its centre moves though the object does not) leaves the velocity as it is.
        """
        if not len(slots):
            return
        dt = now - self.last_seen[slots]  # [n]
        old = self.area[slots]
        change = np.maximum(old, areas) / np.maximum(np.minimum(old, areas), 1.0)
        good = (dt > 0) & np.isfinite(centroids).all(1) & (change <= max_area_change)
        step = np.zeros((len(slots), 2))
        step[good] = (centroids[good] - self.centroid[slots][good]) / dt[good, None]
        first = self.hits[slots] == 1
        new_v = np.where(first[:, None], step, smoothing * step + (1 - smoothing) * self.velocity[slots])
        self.velocity[slots] = np.where(good[:, None], new_v, self.velocity[slots])
        self.centroid[slots] = centroids
        self.area[slots] = areas
        self.last_seen[slots] = now
        self.hits[slots] += 1

    def states(self, now: float, min_hits: int) -> np.ndarray:
        """``(T,) int8`` TENTATIVE, CONFIRMED or LOST at frame time `now`."""
        out = np.where(self.last_seen < now, LOST, CONFIRMED).astype(np.int8)
        out[self.hits < min_hits] = TENTATIVE
        return out

    def expired(self, now: float, min_hits: int, max_lost_seconds: float, tentative_max_lost_seconds: float) -> np.ndarray:
        """``(T,) bool``: tracks to remove at frame time `now`."""
        limit = np.where(self.hits < min_hits, tentative_max_lost_seconds, max_lost_seconds)
        return (now - self.last_seen) > limit

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where `mask` ``(T,) bool`` is True (in order)."""
        for name in ("ids", "categories", "last_seen", "centroid", "velocity", "area", "hits"):
            setattr(self, name, getattr(self, name)[mask])
