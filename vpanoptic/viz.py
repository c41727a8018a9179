"""Overlay drawing: panoptic colours blended over the frame, thing contours and labels.

Colour is a function of identity, never of frame order: stuff takes its category colour from
the dataset metadata, a tracked thing the colour of its track id (`track_color`), the same
in every frame, run and process. Untracked things fall back to their category colour.

Drawing is vectorised: a per-segment colour table is gathered through the id map once, the
blend is one `cv2.addWeighted`, contours are id changes between 4-neighbours.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .sinks.stats import segment_stats
from .types import PanopticFrame

__all__ = ["Label", "label_layout", "overlay", "segment_colors", "track_color", "track_colors"]

# Golden-ratio conjugate: hue steps of 0.618... turns keep consecutive ids far apart on the
# colour wheel and never repeat exactly (the sequence is equidistributed).
_GOLDEN = 0.6180339887498949
# Saturation/value tiers cycled by id, so ids whose hues happen to be close still differ.
_SATURATION = (0.85, 0.65, 1.0)
_VALUE = (0.95, 1.0, 0.75)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_colors(track_ids: np.ndarray) -> np.ndarray:
    """Colours of many track ids: ``(N,) int`` → ``(N, 3) uint8`` RGB (see `track_color`)."""
    ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
    hue = np.mod(ids.astype(np.float64) * _GOLDEN, 1.0)  # [N] in [0, 1)
    tier = np.mod(ids, 3)
    sat = np.asarray(_SATURATION)[tier]
    val = np.asarray(_VALUE)[tier]
    # HSV → RGB (the colorsys formula, vectorised).
    h6 = hue * 6.0
    sector = np.floor(h6).astype(np.int64) % 6  # [N]
    frac = h6 - np.floor(h6)
    p = val * (1.0 - sat)
    q = val * (1.0 - sat * frac)
    t = val * (1.0 - sat * (1.0 - frac))
    table = np.stack(
        [
            np.stack([val, t, p], axis=1),
            np.stack([q, val, p], axis=1),
            np.stack([p, val, t], axis=1),
            np.stack([p, q, val], axis=1),
            np.stack([t, p, val], axis=1),
            np.stack([val, p, q], axis=1),
        ],
        axis=0,
    )  # [6, N, 3]
    rgb = table[sector, np.arange(ids.shape[0])]  # [N, 3] in [0, 1]
    return np.rint(rgb * 255.0).astype(np.uint8)


def track_color(track_id: int) -> tuple[int, int, int]:
    """Deterministic RGB colour of a track id, each channel in 0..255.

    Hue advances by the golden ratio per id (consecutive ids are ~222° apart), saturation
    and value cycle through three tiers. Pure arithmetic: the same id has the same colour
    in every run and process.
    """
    r, g, b = track_colors(np.array([track_id]))[0]
    return int(r), int(g), int(b)


def segment_colors(pf: PanopticFrame) -> np.ndarray:
    """Display colour of each segment of `pf`: ``(N, 3) uint8`` RGB.

    Stuff and untracked things take their category colour, tracked things their track
    colour.
    """
    colors = pf.meta.colors(pf.category_ids)  # [N, 3]
    tracked = pf.is_thing & (pf.track_ids > 0)
    if tracked.any():
        colors = colors.copy()
        colors[tracked] = track_colors(pf.track_ids[tracked])
    return colors


def overlay(
    pf: PanopticFrame,
    *,
    alpha: float = 0.5,
    labels: bool = True,
    contours: bool = True,
    min_label_fraction: float = 0.001,
) -> np.ndarray:
    """Draw a panoptic frame over its image.

    Args:
        pf: the frame; its id map may be a NumPy array or a tensor (moved to the host).
        alpha: opacity of the segment colours in [0, 1]; void pixels keep the image.
        labels: write "name track" (e.g. "car 12", or "car" when untracked) near the
            top-left corner of each thing, white with a dark outline.
        contours: draw a 1-pixel border, in the thing's colour at full opacity, on the
            inner side of each thing's boundary.
        min_label_fraction: things smaller than this fraction of the frame get no label
            (distant objects would bury the picture under text); 0 labels every thing.

    Returns:
        ``(H, W, 3) uint8`` RGB, a new array (`pf.frame.image` is not modified).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay alpha is {alpha}; expected 0 <= alpha <= 1")
    image = pf.frame.image
    id_map = pf.id_map_numpy()
    n = len(pf)
    if n == 0:
        return image.copy()

    # 1. Dense segment index per pixel: 0 = void / unlisted, i + 1 = segment i.
    index = _dense_index(id_map, pf.segment_ids)  # [H, W]

    # 2. Colour table gathered through the index, blended with the image.
    colors = segment_colors(pf)  # [N, 3]
    lut = np.zeros((n + 1, 3), dtype=np.uint8)
    lut[1:] = colors
    paint = lut[index]  # [H, W, 3]
    out = cv2.addWeighted(image, 1.0 - alpha, paint, alpha, 0.0)
    void = index == 0
    if void.any():
        np.copyto(out, image, where=void[..., None])

    things = np.flatnonzero(pf.is_thing)
    if things.size == 0:
        return out

    # 3. Contours: thing pixels with a 4-neighbour of another segment (or void).
    if contours:
        thing_lut = np.zeros(n + 1, dtype=bool)
        thing_lut[things + 1] = True
        edge = np.zeros(index.shape, dtype=bool)
        horizontal = index[:, 1:] != index[:, :-1]  # [H, W-1]
        vertical = index[1:, :] != index[:-1, :]  # [H-1, W]
        edge[:, 1:] |= horizontal
        edge[:, :-1] |= horizontal
        edge[1:, :] |= vertical
        edge[:-1, :] |= vertical
        edge &= thing_lut[index]
        np.copyto(out, paint, where=edge[..., None])

    # 4. Labels, placed so that none covers another.
    if labels:
        for label in _layout(pf, index, things, min_label_fraction):
            _put_label(out, label)
    return out


class Label(NamedTuple):
    """A label as `overlay` draws it: `text` with its baseline starting at `origin` (x, y);
    it covers the pixels of `box` ``(x0, y0, x1, y1)`` (x1, y1 exclusive), outline included.
    `segment` is the thing's position in the frame's segment arrays."""

    text: str
    origin: tuple[int, int]
    box: tuple[int, int, int, int]
    segment: int
    scale: float
    thickness: int


def label_layout(pf: PanopticFrame, *, min_label_fraction: float = 0.001) -> list[Label]:
    """The labels `overlay` draws on `pf`, largest thing first; no two boxes intersect.

    Each thing of at least `min_label_fraction` of the frame gets a "name track" label at
    the first free place among: inside its top-left corner, above it, below it, inside its
    top-right corner (kept inside the frame). A label that would cover one placed before
    (a larger thing's) is left out: distant, crowded objects share the room, and every
    label drawn stays readable.
    """
    id_map = pf.id_map_numpy()
    if len(pf) == 0:
        return []
    return _layout(pf, _dense_index(id_map, pf.segment_ids), np.flatnonzero(pf.is_thing), min_label_fraction)


def _layout(pf: PanopticFrame, index: np.ndarray, things: np.ndarray, min_label_fraction: float) -> list[Label]:
    if things.size == 0:
        return []
    height, width = index.shape
    areas, boxes = segment_stats(index, things + 1)  # boxes [x, y, w, h]
    scale = max(0.4, min(height, width) / 720.0 * 0.6)  # 0.6 at 720p
    thickness = 1 if scale < 0.6 else 2
    pad = thickness // 2 + 2  # the dark outline is thickness + 2 wide, centred on the strokes
    min_area = max(1.0, min_label_fraction * index.size)
    placed: list[Label] = []
    for k in sorted(np.flatnonzero(areas >= min_area), key=lambda k: (-areas[k], k)):
        i = int(things[k])
        name = pf.meta.category(int(pf.category_ids[i])).name
        track = int(pf.track_ids[i])
        text = f"{name} {track}" if track > 0 else name
        (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
        w, h = tw + 2 * pad, th + baseline + 2 * pad
        if w > width or h > height:
            continue
        x, y, bw, bh = (int(v) for v in boxes[k])
        for cx, cy in ((x, y), (x, y - h), (x, y + bh), (x + bw - w, y)):
            cx, cy = min(max(cx, 0), width - w), min(max(cy, 0), height - h)
            box = (cx, cy, cx + w, cy + h)
            if not any(_intersect(box, other.box) for other in placed):
                placed.append(Label(text, (cx + pad, cy + pad + th), box, i, scale, thickness))
                break
    return placed


def _intersect(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _dense_index(id_map: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` segment ids → ``(H, W) int32`` position + 1 in `segment_ids`, 0 elsewhere."""
    n = segment_ids.shape[0]
    hi = int(segment_ids.max())
    if hi <= max(1 << 16, 64 * n):
        lut = np.zeros(hi + 2, dtype=np.int32)
        lut[segment_ids] = np.arange(1, n + 1, dtype=np.int32)
        # Ids above the largest listed one (not listed) map to the last, zero, entry.
        return lut[np.minimum(id_map, hi + 1).clip(0)]
    order = np.argsort(segment_ids)
    sorted_ids = segment_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, id_map), n - 1)  # [H, W]
    return np.where(sorted_ids[pos] == id_map, order[pos] + 1, 0).astype(np.int32)


def _put_label(image: np.ndarray, label: Label) -> None:
    """Write `label` into `image` (in place): white text with a dark outline."""
    # Anti-aliasing blurs small text into the outline: crisp 8-connected strokes below 0.6.
    line = cv2.LINE_AA if label.scale >= 0.6 else cv2.LINE_8
    x0, y0, x1, y1 = label.box
    x, y = label.origin
    # Drawn into the label's own box: nothing outside it changes, even where a stroke overshoots.
    view = image[y0:y1, x0:x1]
    cv2.putText(view, label.text, (x - x0, y - y0), _FONT, label.scale, (0, 0, 0), label.thickness + 2, line)
    cv2.putText(view, label.text, (x - x0, y - y0), _FONT, label.scale, (255, 255, 255), label.thickness, line)
