"""Appearance cue for association: the mean colour of each segment, in CIE Lab.

Neighbouring objects of one class (two crossing people, cars in a queue) overlap their
predicted masks about equally after a miss or a long step between frames; their colours
often differ. Each segment's mean colour comes from `bincount`s over the thing pixels of
the association grid (at most `COLOUR_SAMPLES` of them, so the cost is bounded; on the CPU
two bincounts of packed channel sums, exact in float64), converted to Lab (perceptual: a
Euclidean distance of ~2.3 is just noticeable); each track keeps an exponential moving
average of it. The cue is off for a frame without usable pixels: no image, an image of
another size than the id map, or one that is black wherever there are things (offline
re-tracking passes a zero image), and for any track never seen with pixels; an unknown
colour costs nothing and gates nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["AppearanceCue", "COLOUR_SAMPLES"]

# At most about this many thing pixels (every k-th, in raster order: spread evenly over every
# object) are read per frame for the mean colours; a mean needs few pixels, and the cost of
# the cue then stays flat in the number and size of objects. (4096 loses AQ on the small
# objects of the synthetic crossing clip: 0.458 -> 0.439.)
COLOUR_SAMPLES = 8192
_PACK = float(1 << 22)  # two byte sums over at most 2 x COLOUR_SAMPLES pixels share one float64


class AppearanceCue:
    """Per-segment mean Lab colours and the colour term of the association cost.

    Args:
        weight: the colour term added to the 1 - IoU cost is weight x min(distance / scale,
            1); 0 switches the cue off (no pixels read, results as without it).
        scale: Lab distance (Delta E) at which the colour term saturates.
        gate: pairs whose Lab distance exceeds this may not be matched (0 = no gate).
        smoothing: weight of the newest observation in each track's colour average, in (0, 1].
        reid_radius: re-identification pass, after every other: a track and a segment left
            over, of one class, both with known colours at most `reid_colour` apart, whose
            predicted centres are within this many object sizes (and areas within the
            tracker's `max_area_ratio`), are matched: objects that moved farther than the
            centre pass reaches (low frame rates, near objects); 0 = off.
        reid_colour: the largest Lab distance the re-identification pass accepts.
    """

    def __init__(
        self,
        weight: float = 0.0,
        scale: float = 30.0,
        gate: float = 0.0,
        smoothing: float = 0.3,
        reid_radius: float = 0.0,
        reid_colour: float = 10.0,
    ):
        if weight < 0 or scale <= 0 or gate < 0 or reid_radius < 0 or reid_colour < 0:
            raise ValueError(
                f"appearance weight {weight}, scale {scale}, gate {gate}, reid distance {reid_radius}, "
                f"reid colour {reid_colour}; expected >= 0, > 0, >= 0, >= 0, >= 0"
            )
        if not 0 < smoothing <= 1:
            raise ValueError(f"appearance_smoothing is {smoothing}; expected 0 < x <= 1")
        self.weight, self.scale, self.gate, self.smoothing = float(weight), float(scale), float(gate), float(smoothing)
        self.reid_radius, self.reid_colour = float(reid_radius), float(reid_colour)

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.gate > 0 or self.reid_radius > 0

    def colours(
        self, image, stride: int, y: torch.Tensor, x: torch.Tensor, label: torch.Tensor, n_cur: int, shape
    ) -> np.ndarray:
        """Mean Lab colour per current thing: ``(M, 3) float64``, NaN where unknown (also for a
        thing with no pixel among the `COLOUR_SAMPLES` read).

        Args:
            image: ``(H, W, 3) uint8`` RGB frame (numpy or tensor) or None; another size than
                the id map, or all black where the things are: no colours.
            stride: association grid step; grid pixel (r, c) is image pixel (r s, c s).
            y, x: ``(F,) int64`` grid row and column of the thing pixels; label: ``(F,)`` their
                label 1..M (`features.GridThings`).
            shape: ``(H, W)`` of the id map; the grid is ``[::stride, ::stride]`` of it.
        """
        out = np.full((n_cur, 3), np.nan)
        if not self.enabled or image is None or n_cur == 0 or label.numel() == 0:
            return out
        if isinstance(image, np.ndarray) and 0 in image.strides:  # broadcast from one value: a placeholder
            return out
        if tuple(image.shape) != (shape[0], shape[1], 3) or image.dtype not in (np.uint8, torch.uint8):
            return out
        step = max(1, label.numel() // COLOUR_SAMPLES)
        if step > 1:
            y, x, label = y[::step], x[::step], label[::step]
        if isinstance(image, np.ndarray) and label.device.type == "cpu":  # NumPy: ~3x faster at this size
            label = np.ascontiguousarray(label.numpy())
            src = y.numpy() * (3 * stride * shape[1]) + x.numpy() * (3 * stride)  # [S] flat index of the red byte
            flat = np.ascontiguousarray(image).reshape(-1)
            r, g, b = (np.take(flat, src + c) for c in range(3))  # [S] uint8 each
            # two bincounts for four sums, exact in float64: a sum of S <= 2**14 bytes is below 2**22
            rg = np.bincount(label, weights=r * _PACK + g, minlength=n_cur + 1)[1:]
            bc = np.bincount(label, weights=b * _PACK + 1.0, minlength=n_cur + 1)[1:]
            red, blue = np.floor(rg / _PACK), np.floor(bc / _PACK)
            count = bc - blue * _PACK
            sums = np.stack([red, rg - red * _PACK, blue], 1)
        else:
            img = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
            src = (y * (stride * shape[1]) + x * stride).to(img.device)  # [S] flat image index
            pix = img.reshape(-1, 3).index_select(0, src).float().reshape(-1)  # [S * 3]
            lab = label.to(img.device)
            count = torch.bincount(lab, minlength=n_cur + 1)[1:].cpu().numpy()
            bins = (lab[:, None] * 3 + torch.arange(3, device=img.device)).reshape(-1)  # [S * 3] (label, channel)
            sums = torch.bincount(bins, weights=pix, minlength=3 * (n_cur + 1)).reshape(-1, 3)[1:].cpu().numpy()
        if not sums.any():  # an all-black (placeholder) image carries no appearance
            return out
        rgb = (sums / np.maximum(count, 1)[:, None] / 255.0).astype(np.float32)
        out[:] = cv2.cvtColor(rgb[:, None, :], cv2.COLOR_RGB2Lab)[:, 0, :]
        out[count == 0] = np.nan
        return out

    def distance(self, track_colours: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """``(T, M)`` Lab distance; 0 where either colour is unknown (or the cue is off)."""
        known_t, known_m = np.isfinite(track_colours[:, 0]), np.isfinite(colours[:, 0])
        if not self.enabled or not known_t.any() or not known_m.any():
            return np.zeros((len(track_colours), len(colours)))
        a, b = np.where(known_t[:, None], track_colours, 0.0), np.where(known_m[:, None], colours, 0.0)
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)  # |a - b|², one matmul
        return np.where(known_t[:, None] & known_m[None, :], np.sqrt(np.maximum(sq, 0.0)), 0.0)

    def cost(self, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``((T, M) colour cost term, (T, M) bool allowed by the gate)`` from `distance`."""
        term = self.weight * np.minimum(distance / self.scale, 1.0)
        allowed = distance <= self.gate if self.gate > 0 else np.ones(distance.shape, bool)
        return term, allowed

    def similar(self, track_colours: np.ndarray, colours: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """``(T, M) bool``: both colours known and at most `reid_colour` apart."""
        known = np.isfinite(track_colours[:, 0])[:, None] & np.isfinite(colours[:, 0])[None, :]
        return known & (distance <= self.reid_colour)

    def blend(self, track_colours: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """Updated ``(n, 3)`` track colours after seeing `colours` ``(n, 3)`` (unknown: kept; new: taken)."""
        a = self.smoothing
        mixed = np.where(np.isfinite(track_colours), (1 - a) * track_colours + a * colours, colours)
        return np.where(np.isfinite(colours), mixed, track_colours)
