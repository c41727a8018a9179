"""Appearance cue for association: the colour histogram of each segment.

Neighbouring objects of one class (two crossing people, cars in a queue) overlap their
predicted masks about equally after a miss or a long step between frames; their colours
often differ. Each segment's colours are counted in a histogram over a coarse RGB cube
(2^`bits` levels per channel: 8³ = 512 bins at 3) with one `bincount` over the thing pixels
of the association grid (at most `COLOUR_SAMPLES` of them, so the cost is bounded). Two
histograms are compared by the Bhattacharyya coefficient BC (the overlap of two
distributions: the dot product of their roots, the square roots of the bins' shares); the
colour distance is 1 - BC, 0 for identical colours and 1 for no colour in common.

A histogram keeps a person's shirt and trousers apart where a mean colour blends them, and
a segment that took in a ring of background (the boundary noise of a real model) loses only
the ring's share of its overlap, where its mean colour moves far: on synthetic crowds one
person's mean colour moved by ΔE 17 between frames at the 95th percentile (median ΔE 35 to
the nearest other person); 114 of the 196 identities lost on four crowd clips were pairs
the mean-colour gate had turned away, yet widening that gate lost more than it won.

A segment's boundary pixels (a grid neighbour outside it) count `boundary_weight` (a
quarter) of an interior pixel: a real model's masks are noisy at the boundary, and the ring
there holds background and neighbours; a thing without interior pixels among those read is
counted on all of them. On synthetic crowds the median colour distance of one person between
frames fell from 0.11 to 0.09 (objects of 120-250 grid pixels) with the boundary left out,
while that to other people nearby rose from 0.80 to 0.88.

Each track keeps an exponential moving average of its histogram (and that average's root).
The cue is off for a frame without usable pixels: no image, an image of another size than
the id map, or one that is black wherever there are things (offline re-tracking passes a
zero image), and for any track never seen with pixels; an unknown histogram (a zero row)
costs nothing and gates nothing.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .features import GridThings

__all__ = ["COLOUR_SAMPLES", "MAX_BITS", "AppearanceCue"]

# At most about this many thing pixels (every k-th, in raster order: spread evenly over every
# object) are read per frame; the cost of the cue then stays flat in the number and size of
# objects. (4096 lost AQ on the small objects of the synthetic crossing clip with mean
# colours: 0.458 -> 0.439.)
COLOUR_SAMPLES = 8192
MAX_BITS = 4  # 16³ = 4096 bins per segment and track at most


@functools.lru_cache(maxsize=MAX_BITS)
def _bin_tables(bits: int) -> np.ndarray:
    """``(3, 256) int64``: for each channel value, its part of the histogram bin index
    (red level << 2 bits | green level << bits | blue level)."""
    level = np.arange(256, dtype=np.int64) >> (8 - bits)
    return np.stack([level << (2 * bits), level << bits, level])


class AppearanceCue:
    """Per-segment colour histograms and the colour term of the association cost.

    Args:
        weight: the colour term added to the 1 - IoU cost is weight x min(distance / scale,
            1), distance = 1 - BC in [0, 1]; 0 switches the term off.
        scale: colour distance at which the term saturates (1: it never does).
        gate: pairs whose colour distance exceeds this may not be matched (0 = no gate).
        smoothing: weight of the newest observation in each track's histogram average, in (0, 1].
        reid_radius: re-identification pass, after every other: a track and a segment left
            over, of one class, both with known colours at most `reid_colour` apart, whose
            predicted centres are within this many object sizes (and areas within the
            tracker's `reid_area_ratio`), are matched: objects that moved farther than the
            centre pass reaches (low frame rates, near objects); 0 = off.
        reid_colour: the largest colour distance the re-identification pass accepts.
        bits: 2^bits histogram levels per RGB channel, 1..`MAX_BITS`.
        boundary_weight: what a boundary pixel of a thing (one with a grid neighbour outside
            it) counts for, in [0, 1], an interior pixel counting 1; a thing with no interior
            pixel among those read is counted on all of them. 1 = every pixel alike.

    With weight, gate and reid_radius all 0 the cue is off: no pixels are read.
    """

    def __init__(
        self,
        weight: float = 0.0,
        scale: float = 1.0,
        gate: float = 0.0,
        smoothing: float = 0.3,
        reid_radius: float = 0.0,
        reid_colour: float = 0.35,
        bits: int = 3,
        boundary_weight: float = 0.25,
    ):
        if weight < 0 or scale <= 0 or reid_radius < 0:
            raise ValueError(
                f"appearance weight {weight}, scale {scale}, reid distance {reid_radius}; expected >= 0, > 0, >= 0"
            )
        for name, value in (("appearance_gate", gate), ("reid_colour", reid_colour)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is {value}; expected a colour distance 0 <= x <= 1 (1 - histogram overlap)")
        if not 0 < smoothing <= 1:
            raise ValueError(f"appearance_smoothing is {smoothing}; expected 0 < x <= 1")
        if isinstance(bits, bool) or int(bits) != bits or not 1 <= bits <= MAX_BITS:
            raise ValueError(f"histogram_bits is {bits}; expected an integer 1..{MAX_BITS}")
        self.weight, self.scale, self.gate, self.smoothing = float(weight), float(scale), float(gate), float(smoothing)
        self.reid_radius, self.reid_colour = float(reid_radius), float(reid_colour)
        self.bits = int(bits)
        if not 0 <= boundary_weight <= 1:
            raise ValueError(f"colour_boundary_weight is {boundary_weight}; expected 0 <= x <= 1")
        self.boundary_weight = float(boundary_weight)

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.gate > 0 or self.reid_radius > 0

    @property
    def bins(self) -> int:
        """Histogram bins per segment and track (0 while the cue is off)."""
        return (1 << self.bits) ** 3 if self.enabled else 0

    def histograms(self, image, stride: int, things: GridThings, shape) -> np.ndarray:
        """Colour histogram per current thing: ``(M, bins) float32``, each row the bins'
        shares (summing to 1; boundary pixels weighted by `boundary_weight`), a zero row where
        unknown (also for a thing with no pixel among the `COLOUR_SAMPLES` read).

        Args:
            image: ``(H, W, 3) uint8`` RGB frame (numpy or tensor) or None; another size than
                the id map, or all black where the things are: unknown.
            stride: association grid step; grid pixel (r, c) is image pixel (r s, c s).
            things: the M things on the grid (`features.grid_things`): their pixels' rows,
                columns, labels 1..M and places in the ringed label map.
            shape: ``(H, W)`` of the id map; the grid is ``[::stride, ::stride]`` of it.
        """
        nb, q, n_cur = self.bins, self.bits, things.count
        y, x, label, index = things.y, things.x, things.label, things.index
        out = np.zeros((n_cur, nb), np.float32)
        if not nb or image is None or n_cur == 0 or label.numel() == 0:
            return out
        if isinstance(image, np.ndarray) and 0 in image.strides:  # broadcast from one value: a placeholder
            return out
        if tuple(image.shape) != (shape[0], shape[1], 3) or image.dtype not in (np.uint8, torch.uint8):
            return out
        step = max(1, label.numel() // COLOUR_SAMPLES)
        if step > 1:
            y, x, label, index = y[::step], x[::step], label[::step], index[::step]
        weigh = self.boundary_weight < 1
        plane = (n_cur + 1) * nb  # boundary pixels are counted in a second plane of bins
        boundary = ~_interior(things.labels, things.width + 2, index) if weigh else None  # [S] bool
        if isinstance(image, np.ndarray) and label.device.type == "cpu":  # NumPy: ~3x faster at this size
            src = y.numpy() * (stride * shape[1]) + x.numpy() * stride  # [S] flat pixel index
            rgb = np.take(np.ascontiguousarray(image).reshape(-1, 3), src, axis=0)  # [S, 3] uint8
            if not rgb.any():  # an all-black (placeholder) image carries no appearance
                return out
            lut = _bin_tables(q)  # [3, 256] each channel's part of the bin index
            cell = label.numpy().astype(np.int64, copy=True) * nb  # [S] the label's first bin
            for ch in range(3):
                cell += lut[ch].take(rgb[:, ch])
            if weigh:
                np.add(cell, plane, out=cell, where=boundary.numpy())
            counts = np.bincount(cell, minlength=(1 + weigh) * plane)
        else:
            img = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
            src = (y * (stride * shape[1]) + x * stride).to(img.device)  # [S] flat pixel index
            rgb = img.reshape(-1, 3).index_select(0, src)  # [S, 3] uint8
            if not bool(rgb.any()):
                return out
            c = rgb.long() >> (8 - q)
            cell = label.to(img.device).long() * nb + ((c[:, 0] << q | c[:, 1]) << q | c[:, 2])
            if weigh:
                cell = cell + plane * boundary.to(img.device).long()
            counts = torch.bincount(cell, minlength=(1 + weigh) * plane).cpu().numpy()
        counts = counts.reshape(1 + weigh, n_cur + 1, nb)[:, 1:].astype(np.float32)
        if weigh:  # interior + w boundary; a thing without interior pixels read: all alike
            interior, boundary = counts
            out[:] = interior + self.boundary_weight * boundary
            bare = ~interior.any(1)
            out[bare] = boundary[bare]
        else:
            out[:] = counts[0]
        out *= (1.0 / np.maximum(out.sum(1), 1e-12)).astype(np.float32)[:, None]
        return out

    def distance(self, track_roots: np.ndarray, hists: np.ndarray) -> np.ndarray:
        """``(T, M) float32`` colour distance 1 - BC between the tracks' root histograms
        `track_roots` ``(T, bins)`` and the things' histograms `hists` ``(M, bins)``, in
        [0, 1]; NaN where either is unknown (a zero row) or the cue is off."""
        n_t, n_m = len(track_roots), len(hists)
        if not self.bins or not n_t or not n_m:
            return np.full((n_t, n_m), np.nan, np.float32)
        roots = np.sqrt(hists)  # [M, bins]
        known = track_roots.any(1)[:, None] & roots.any(1)[None, :]  # [T, M]
        # one dense product: faster here than picking the few bins in use first
        # in torch, whose thread count the tracker limits (NumPy's BLAS would use every core)
        overlap = (torch.from_numpy(np.ascontiguousarray(track_roots, np.float32))
                   @ torch.from_numpy(np.ascontiguousarray(roots, np.float32)).T).numpy()  # [T, M]
        return np.where(known, np.maximum(1.0 - overlap, 0.0), np.float32(np.nan))

    def cost(self, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``((T, M) colour cost term, (T, M) bool allowed by the gate)`` from `distance`
        (unknown, NaN: no cost, allowed)."""
        known = np.isfinite(distance)
        d = np.where(known, distance, 0.0)
        term = self.weight * np.minimum(d / self.scale, 1.0) if self.weight else np.zeros(d.shape)
        allowed = d <= self.gate if self.gate > 0 else np.ones(d.shape, bool)
        return term, allowed

    def similar(self, distance: np.ndarray) -> np.ndarray:
        """``(T, M) bool``: both colours known and at most `reid_colour` apart."""
        return np.isfinite(distance) & (distance <= self.reid_colour)

    def blend(self, track_hists: np.ndarray, hists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Updated ``(n, bins)`` track histograms after seeing `hists` ``(n, bins)`` (unknown,
        a zero row: kept; new: taken), and their roots."""
        a = self.smoothing
        out = (1 - a) * track_hists + a * hists
        new, unknown = ~track_hists.any(1), ~hists.any(1)
        out[new] = hists[new]
        out[unknown] = track_hists[unknown]
        return out, np.sqrt(out)


def _interior(labels: torch.Tensor, row: int, index: torch.Tensor) -> torch.Tensor:
    """``(S,) bool``: whether each pixel at `index` ``(S,)`` in the flat ringed label map
    `labels` (rows of `row` pixels) has its label at all four grid neighbours. On the CPU with
    NumPy (``np.take`` is several times faster than fancy indexing at this size)."""
    if labels.device.type == "cpu":
        flat, at = labels.numpy(), index.numpy()
        own = np.take(flat, at)  # [S]
        base = at - 1  # left at base, right at base + 2
        inner = np.take(flat, base) == own
        inner &= np.take(flat[2:], base) == own
        base -= row - 1  # up at base, down at base + 2 row
        inner &= np.take(flat, base) == own
        inner &= np.take(flat[2 * row:], base) == own
        return torch.from_numpy(inner)
    own = labels.index_select(0, index)
    inner = torch.ones_like(own, dtype=torch.bool)
    for offset in (-1, 1, -row, row):
        inner &= labels.index_select(0, index + offset) == own
    return inner
