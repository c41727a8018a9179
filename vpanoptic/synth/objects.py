"""Objects of the synthetic street world: the camera, cars, pedestrians and stuff, and the
random specs (sizes, colors, facades) they are drawn from. The world that places and moves
them is `world.World`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Camera", "Car", "Person", "Static", "color_near"]


# ----------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """A pinhole camera. Rotation = pitch (about x, + looks up) after yaw (about y, + right).

    `focal` is in pixels; the principal point is the image center. Camera coordinates: x
    right, y up, z forward; image rows grow downwards.
    """

    position: tuple[float, float, float]
    yaw: float
    pitch: float
    focal: float
    width: int
    height: int
    rotation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
        pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        object.__setattr__(self, "rotation", pitch @ yaw)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world points → ``(..., 3)`` camera coordinates."""
        return (np.asarray(points, np.float64) - self.position) @ self.rotation.T

    def to_pixels(self, cam: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera coordinates with z > 0 → ``(..., 2)`` float pixel (u, v)."""
        u = self.width / 2 + self.focal * cam[..., 0] / cam[..., 2]
        v = self.height / 2 - self.focal * cam[..., 1] / cam[..., 2]
        return np.stack([u, v], axis=-1)

    @property
    def horizon(self) -> float:
        """Image row of the horizon (the camera never rolls, so it is a horizontal line)."""
        return self.height / 2 + self.focal * math.tan(self.pitch)


# ----------------------------------------------------------------------------- objects
@dataclass(frozen=True)
class Car:
    """A car: footprint center (x, z), size (m), `heading` +1 drives towards +z, -1 towards -z."""

    key: tuple
    x: float
    z: float
    length: float
    width: float
    height: float
    heading: int
    color: tuple[float, float, float]
    glass: tuple[float, float, float]
    id: int = 0


@dataclass(frozen=True)
class Person:
    """A pedestrian standing on (x, z); `heading` (hx, hz) unit walking direction; `phase` of gait (rad)."""

    key: tuple
    x: float
    z: float
    height: float
    heading: tuple[float, float]
    phase: float
    moving: bool
    shirt: tuple[float, float, float]
    pants: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    id: int = 0


@dataclass(frozen=True)
class Static:
    """A piece of stuff: an axis-aligned box, a tree crown or a facade with windows.

    `kind` is one of "building", "box", "crown". Boxes and buildings: `bounds` = (x0, x1,
    y0, y1, z0, z1). Crowns (a tree's foliage, drawn as a blob facing the camera): `bounds` =
    (cx, cy, cz, radius, 0, 0) and `shape` holds ``(K,)`` radius factors around the center.
    `details` are flat polygons on the street face (windows, shop fronts), drawn over it in
    order: (``(M, 4, 3)`` corners in metres, RGB color), and `detail_size` is their smallest
    size (m). `side` = -1 | +1 is the side of the street.
    """

    kind: str
    label: int
    bounds: tuple[float, float, float, float, float, float]
    color: tuple[float, float, float]
    shape: np.ndarray | None = None
    details: tuple[tuple[np.ndarray, tuple[float, float, float]], ...] = ()
    detail_size: float = 0.0
    side: int = 1
    backdrop: bool = False    # beyond the sidewalk, behind every moving object (painter key: far end)


def color_near(rng, base, jitter) -> tuple[float, float, float]:
    """An RGB color within ±`jitter` of `base` (clipped to 0..255)."""
    r, g, b = (float(c) for c in np.clip(np.asarray(base) + rng.uniform(-jitter, jitter, 3), 0, 255))
    return r, g, b


_CAR_COLORS = [(235, 235, 232), (180, 182, 186), (110, 112, 116), (25, 25, 28), (30, 45, 90),
                (150, 20, 25), (40, 80, 160), (40, 85, 50), (200, 185, 150), (225, 180, 30)]
_FACADES = [(205, 190, 160), (150, 150, 150), (160, 85, 65), (230, 225, 215), (120, 105, 90),
            (190, 170, 200), (170, 200, 190), (210, 160, 120), (90, 90, 100)]
_SKIN = [(240, 200, 170), (215, 165, 130), (170, 120, 85), (110, 75, 50), (70, 50, 35)]
_HAIR = [(20, 15, 10), (70, 45, 25), (200, 170, 110), (150, 150, 150), (110, 40, 20)]


def _car_spec(rng) -> dict:
    kind = rng.integers(3)   # 0 hatchback, 1 saloon, 2 SUV / van
    length = (rng.uniform(3.7, 4.2), rng.uniform(4.4, 4.9), rng.uniform(4.5, 5.0))[kind]
    height = (rng.uniform(1.42, 1.55), rng.uniform(1.38, 1.48), rng.uniform(1.65, 1.95))[kind]
    base = _CAR_COLORS[rng.integers(len(_CAR_COLORS))] if rng.random() < 0.85 else rng.uniform(0, 255, 3)
    return dict(length=length, width=rng.uniform(1.7, 1.95), height=height,
                color=color_near(rng, base, 18), glass=color_near(rng, (45, 55, 65), 20))


def _person_spec(rng) -> dict:
    return dict(height=rng.uniform(1.5, 1.95), shirt=color_near(rng, rng.uniform(0, 255, 3), 0),
                pants=color_near(rng, (50, 55, 75) if rng.random() < 0.6 else rng.uniform(0, 200, 3), 25),
                skin=color_near(rng, _SKIN[rng.integers(len(_SKIN))], 12),
                hair=color_near(rng, _HAIR[rng.integers(len(_HAIR))], 10), phase0=rng.uniform(0, 2 * np.pi))


def _facade(rng, x: float, z0: float, z1: float, height: float):
    """Windows (dark and lit panes) and shop fronts on the street face x = `x` of a building.

    Returns (details, smallest detail size in m) for `Static.details`.
    """
    floor_h, pitch = rng.uniform(2.8, 3.6), rng.uniform(2.2, 3.5)
    win_w, win_h = pitch * rng.uniform(0.4, 0.65), floor_h * rng.uniform(0.45, 0.6)
    ground = 1.25 * floor_h                               # ground floor height
    x -= 0.03 * np.sign(x)                                # just in front of the wall
    ya = np.arange(ground + 0.3 * floor_h, height - 0.3 - win_h, floor_h)
    za = np.arange(z0 + 0.5 + (pitch - win_w) / 2, z1 - 0.5 - win_w, pitch)
    ys, zs = np.meshgrid(ya, za, indexing="ij")
    quads = np.stack([np.stack([np.full_like(ys, x), ys + dy, zs + dz], -1)
                      for dy, dz in ((0, 0), (win_h, 0), (win_h, win_w), (0, win_w))], axis=2).reshape(-1, 4, 3)
    lit = rng.random(len(quads)) < rng.uniform(0, 0.3)
    glass = color_near(rng, (60, 75, 95) if rng.random() < 0.7 else (150, 170, 190), 20)
    details = [(quads[~lit], glass), (quads[lit], color_near(rng, (240, 210, 140), 15))]
    if rng.random() < 0.5:                                # shop fronts on the ground floor
        zb = np.arange(z0 + 0.8, z1 - 2 * pitch + 0.7, 2 * pitch)
        shops = np.stack([np.stack([np.full_like(zb, x), np.full_like(zb, y), zb + dz], -1)
                          for y, dz in ((0.4, 0), (ground - 0.6, 0), (ground - 0.6, 2 * pitch - 1.0),
                                        (0.4, 2 * pitch - 1.0))], axis=1)
        shop_glass = [min(1.3 * c + 20, 255) for c in glass]
        details.append((shops, (shop_glass[0], shop_glass[1], shop_glass[2])))
    return tuple((q, c) for q, c in details if len(q)), min(win_w, win_h)
