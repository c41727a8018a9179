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

__all__ = ["CONFIRMED", "GROWTH_MODELS", "LOST", "TENTATIVE", "TrackTable"]

TENTATIVE, CONFIRMED, LOST = 0, 1, 2
GROWTH_MODELS = ("contact", "exponential")
# `smoothing` is the weight of a step this long (s); a step of dt weighs 1 - (1 - w)^(dt / this),
# so that the average spans the same time at any frame rate (per frame, 25 fps lost ids: docs)
SMOOTHING_STEP = 0.1


class TrackTable:
    """The live tracks of one tracker, as parallel arrays (row = track slot).

    Attributes:
        ids: ``(T,) int64`` track ids, > 0, unique, never reused within the table's life.
        categories: ``(T,) int64`` class of the track (its first confirmed observation's).
        last_seen: ``(T,) float64`` frame time (s) of the last match.
        born: ``(T,) float64`` frame time (s) of the first observation.
        centroid: ``(T, 2) float64`` (y, x) at `last_seen`, in current-frame coordinates
            (moved with the camera every frame).
        velocity: ``(T, 2) float64`` (y, x) pixels per second at `last_seen`, camera motion removed.
        scale_rate: ``(T,) float64`` growth rate of the object's linear size at `last_seen`,
            d log(size) / dt per second (> 0: approaching the camera); 0 unless scale updates
            are given.
        area: ``(T,) float64`` pixels at `last_seen`.
        full_area: ``(T,) float64`` the largest area the track was seen with, fading by
            e^(-dt / `full_area_seconds`) over time dt and following the camera's zoom, as of
            `last_seen` (>= `area`): its size before an occluder began to cut it.
        departed: ``(T,) bool`` the track left the view (unmatched while predicted mostly
            outside the frame) and has not been matched since.
        hits: ``(T,) int64`` number of frames matched.
        clipped: ``(T,) bool`` the mask at `last_seen` touched the frame border (cut off).
        warp: ``(T, 3) float64`` (k, by, bx): the camera's motion since `last_seen`, per track,
            as a similarity about the track: a remembered pixel p (coordinates of the frame it
            was seen in) is at ``k * p + b`` now. Identity ``(1, 0, 0)`` when just seen.
        sample_step: ``(T,) int64`` the remembered mask keeps one pixel in sample_step² (a
            regular sub-grid), each standing for sample_step² pixels; 1 = every pixel.
        histogram: ``(T, bins) float32`` moving average of the colour histogram
            (`appearance.py`); a zero row while unknown. hist_root: its square root.

    Args:
        bins: colour histogram bins per track (0: none).
        growth_model: how a track's size (and with it its speed) is extrapolated from its
            growth rate r over a time dt:
            "contact": 1 / size changes linearly in time (an object closing in on a pinhole
            camera at a constant speed: the time to contact shrinks as it nears), the size is
            multiplied by g = 1 / (1 - r dt), so the growth accelerates; "exponential": by
            e^(r dt) (a constant rate). The two agree for small r dt; at low frame rates an
            approaching car outgrows the exponential. In both the centre's offset from the
            point the object approaches along grows with the size, so the centre moves by
            velocity x (g - 1) / r.
        max_growth: with "contact", the largest predicted growth of linear size (g diverges
            as r dt nears 1: a noisy rate would blow the prediction up).
        full_area_seconds: time constant (s) of the fading of `full_area`; 0: it is the last area.
    """

    def __init__(
        self, bins: int = 0, growth_model: str = "contact", max_growth: float = 1.7, full_area_seconds: float = 2.0
    ):
        if growth_model not in GROWTH_MODELS:
            raise ValueError(f"growth_model is {growth_model!r}; expected one of {', '.join(GROWTH_MODELS)}")
        if not max_growth > 1:
            raise ValueError(f"max_growth is {max_growth}; expected > 1")
        if not full_area_seconds >= 0:
            raise ValueError(f"full_area_seconds is {full_area_seconds}; expected >= 0")
        self.full_area_seconds = float(full_area_seconds)
        self.bins = int(bins)
        self.contact = growth_model == "contact"
        self.max_contact = 1.0 - 1.0 / float(max_growth)  # largest r dt the contact model extrapolates
        self.reset()

    def reset(self) -> None:
        self.next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.categories = np.zeros(0, np.int64)
        self.last_seen = np.zeros(0, np.float64)
        self.born = np.zeros(0, np.float64)
        self.centroid = np.zeros((0, 2), np.float64)
        self.velocity = np.zeros((0, 2), np.float64)
        self.scale_rate = np.zeros(0, np.float64)
        self.area = np.zeros(0, np.float64)
        self.full_area = np.zeros(0, np.float64)
        self.departed = np.zeros(0, bool)
        self.hits = np.zeros(0, np.int64)
        self.clipped = np.zeros(0, bool)
        self.warp = np.zeros((0, 3), np.float64)
        self.sample_step = np.zeros(0, np.int64)
        self.histogram = np.zeros((0, self.bins), np.float32)
        self.hist_root = np.zeros((0, self.bins), np.float32)

    def __len__(self) -> int:
        return int(self.ids.size)

    def add(
        self,
        categories: np.ndarray,
        now: float,
        centroids: np.ndarray,
        areas: np.ndarray,
        clipped: np.ndarray | None = None,
    ) -> np.ndarray:
        """Start ``n = len(categories)`` new tracks; returns their ``(n,)`` new slots."""
        n = len(categories)
        start = len(self)
        if n == 0:
            return np.zeros(0, np.int64)
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + n, dtype=np.int64)])
        self.next_id += n
        self.categories = np.concatenate([self.categories, np.asarray(categories, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, now)])
        self.born = np.concatenate([self.born, np.full(n, now)])
        self.centroid = np.concatenate([self.centroid, np.asarray(centroids, np.float64).reshape(n, 2)])
        self.velocity = np.concatenate([self.velocity, np.zeros((n, 2))])
        self.scale_rate = np.concatenate([self.scale_rate, np.zeros(n)])
        self.area = np.concatenate([self.area, np.asarray(areas, np.float64)])
        self.full_area = np.concatenate([self.full_area, np.asarray(areas, np.float64)])
        self.departed = np.concatenate([self.departed, np.zeros(n, bool)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.clipped = np.concatenate(
            [self.clipped, np.zeros(n, bool) if clipped is None else np.asarray(clipped, bool)]
        )
        self.warp = np.concatenate([self.warp, np.tile([1.0, 0.0, 0.0], (n, 1))])
        self.sample_step = np.concatenate([self.sample_step, np.ones(n, np.int64)])
        self.histogram = np.concatenate([self.histogram, np.zeros((n, self.bins), np.float32)])
        self.hist_root = np.concatenate([self.hist_root, np.zeros((n, self.bins), np.float32)])
        return np.arange(start, start + n)

    def observe(
        self,
        slots: np.ndarray,
        now: float,
        centroids: np.ndarray,
        areas: np.ndarray,
        smoothing: float,
        max_area_change: float = np.inf,
        scale_ok: np.ndarray | None = None,
        max_scale_rate: float = 0.0,
        clipped: np.ndarray | None = None,
    ) -> None:
        """Matched tracks at `slots` were seen at `centroids` ``(n, 2)`` with `areas` ``(n,)``.

        The velocity is an exponential moving average of displacement / elapsed time with
        weight `smoothing` on the newest step if it lasted `SMOOTHING_STEP` seconds, more for a
        longer one and less for a shorter one (the first step is taken as is). A step whose
        area changed by more than the factor `max_area_change` beyond the predicted growth (an
        object being occluded or reappearing: its centre moves though the object does not)
        leaves velocity and scale rate as they are.

        Scale (an object approaching or receding: size and image speed grow or shrink
        together, as under a camera driving forward): where `scale_ok` ``(n,) bool`` is True
        (both masks large enough and clear of the frame border, so their area ratio is
        trustworthy), the step's growth rate at its end, clipped to +-`max_scale_rate` per
        second, enters `scale_rate` with weight `smoothing`: for a growth G of linear size
        (the root of the area ratio) over dt, (G - 1) / dt under the contact model, log(G) / dt
        under the exponential one. The velocity is then the one at the end of the step under
        that growth (see `predict`).

        `full_area` becomes the larger of the new area and the old full area, zoomed by the
        camera since `last_seen` and faded by e^(-dt / `full_area_seconds`).
        """
        if not len(slots):
            return
        dt = now - self.last_seen[slots]  # [n]
        smoothing = 1.0 - (1.0 - smoothing) ** (np.maximum(dt, 0.0) / SMOOTHING_STEP)  # [n] weight per step
        old = self.area[slots]
        rate = self.scale_rate[slots]  # [n]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            expected = old * self.growth(rate * np.maximum(dt, 0)) ** 2
            change = np.maximum(expected, areas) / np.maximum(np.minimum(expected, areas), 1.0)
            good = (dt > 0) & np.isfinite(centroids).all(1) & (change <= max_area_change)
            first = self.hits[slots] == 1
            if scale_ok is not None and max_scale_rate > 0:
                upd = good & np.asarray(scale_ok, bool) & (old > 0) & (areas > 0)
                ratio = np.sqrt(areas / old)  # growth of linear size over the step
                step_rate = (ratio - 1) / dt if self.contact else np.log(ratio) / dt  # the rate at its end
                step_rate = np.clip(step_rate, -max_scale_rate, max_scale_rate)
                new_rate = np.where(first, step_rate, smoothing * step_rate + (1 - smoothing) * rate)
                rate = np.where(upd, new_rate, rate)
                self.scale_rate[slots] = rate
            # displacement D over dt ending at growth rate r: velocity at the end = D / dt * h(r dt),
            # contact: h(x) = 1 + x (>= 0: an averaged rate after a long gap can give x < -1,
            # which would turn the velocity round); exponential: h(x) = x e^x / (e^x - 1) (1 for r = 0)
            x = rate * dt
            if self.contact:
                h = np.maximum(1 + x, 0.0)
            else:
                big = np.abs(x) > 1e-9
                h = np.where(big, x * np.exp(x) / np.where(big, np.expm1(x), 1.0), 1.0)
            step = (centroids - self.centroid[slots]) / dt[:, None] * h[:, None]  # [n, 2]; used where good
        if self.full_area_seconds > 0:
            fade = np.exp(-np.maximum(dt, 0.0) / self.full_area_seconds) * self.warp[slots, 0] ** 2
            self.full_area[slots] = np.maximum(areas, self.full_area[slots] * fade)
        else:
            self.full_area[slots] = areas
        velocity = self.velocity[slots]
        w = smoothing[:, None]
        new_v = np.where(first[:, None], step, w * step + (1 - w) * velocity)
        self.velocity[slots] = np.where(good[:, None], new_v, velocity)
        self.centroid[slots] = centroids
        self.area[slots] = areas
        self.departed[slots] = False
        self.last_seen[slots] = now
        self.hits[slots] += 1
        self.warp[slots] = (1.0, 0.0, 0.0)
        if clipped is not None:
            self.clipped[slots] = clipped

    def growth(self, x: np.ndarray) -> np.ndarray:
        """Growth factor of linear size after a time dt at rate r, from ``x = r dt``:
        1 / (1 - x) (x at most `max_contact`) under the contact model, e^x under the exponential."""
        if self.contact:
            return 1.0 / (1.0 - np.minimum(x, self.max_contact))
        return np.exp(x)

    def predict(self, now: float, max_seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Predicted motion since `last_seen`: ``(shift (T, 2) (y, x) pixels, scale (T,))``.

        Growth at `scale_rate` r for dt = min(now - last_seen, max_seconds): the size is
        multiplied by g (`growth`) and the centre moves by velocity x (g - 1) / r (velocity x
        dt when r = 0): image speed grows with size, as for a static object seen from a
        camera driving towards it.
        """
        dt = np.clip(now - self.last_seen, 0.0, max_seconds)  # [T]
        x = self.scale_rate * dt
        g = self.growth(x)
        small = np.abs(x) < 1e-9
        factor = np.where(small, dt, (g - 1) / np.where(small, 1.0, self.scale_rate))  # [T]
        return self.velocity * factor[:, None], g

    def states(self, now: float, min_hits: int) -> np.ndarray:
        """``(T,) int8`` TENTATIVE, CONFIRMED or LOST at frame time `now`."""
        out = np.where(self.last_seen < now, LOST, CONFIRMED).astype(np.int8)
        out[self.hits < min_hits] = TENTATIVE
        return out

    def expired(
        self, now: float, min_hits: int, max_lost_seconds: float, tentative_max_lost_seconds: float
    ) -> np.ndarray:
        """``(T,) bool``: tracks to remove at frame time `now`."""
        limit = np.where(self.hits < min_hits, tentative_max_lost_seconds, max_lost_seconds)
        return (now - self.last_seen) > limit

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where `mask` ``(T,) bool`` is True (in order)."""
        for name in (
            "ids",
            "categories",
            "last_seen",
            "born",
            "centroid",
            "velocity",
            "scale_rate",
            "area",
            "full_area",
            "departed",
            "hits",
            "clipped",
            "warp",
            "sample_step",
            "histogram",
            "hist_root",
        ):
            setattr(self, name, getattr(self, name)[mask])
