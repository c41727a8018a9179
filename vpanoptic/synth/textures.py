"""Textures and per-sequence looks of the synthetic street world: sky, ground, skyline, clouds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .world import BUILDING, SKY, VEGETATION, color_near

__all__ = ["Style"]

TEX_RES, TEX_X0, TEX_X1, TEX_PERIOD = 0.05, -45.0, 45.0, 36.0   # ground texture: m/texel, x range, z period
LANE_DASH, LANE_GAP = 3.0, 9.0                                    # lane marking dashes (m)


def _ring(k: int) -> np.ndarray:
    """``(k, 2)`` (cos, sin) of k angles evenly around the circle."""
    a = np.arange(k) * (2 * np.pi / k)
    return np.stack([np.cos(a), np.sin(a)], axis=-1)


@dataclass(frozen=True)
class Style:
    """Per-sequence look: sky, haze, surfaces, lighting drift, sensor noise (colors RGB 0..255)."""

    zenith: np.ndarray
    horizon: np.ndarray
    fog_distance: float
    asphalt: np.ndarray
    pavement: np.ndarray
    gain: np.ndarray          # (3,) per-channel gain: brightness x color temperature
    drift: tuple[float, float, float]   # amplitude, period (s), phase of slow brightness drift
    sun_side: int             # +1: faces looking towards +x are lit
    noise_sigma: float
    noise_seed: int           # per-frame sensor-noise offsets are drawn from (noise_seed, time)


def _sample_style(rng) -> Style:
    """Sky (clear or overcast), haze, road and pavement colors, lighting, sensor noise."""
    if rng.random() < 0.35:   # overcast
        zenith = np.full(3, rng.uniform(150, 205)) * (0.95, 0.97, 1.0) + rng.uniform(-6, 6, 3)
        horizon, fog = np.minimum(zenith * 1.08, 250), rng.uniform(120, 350)
    else:
        zenith = np.array([rng.uniform(50, 110), rng.uniform(110, 160), rng.uniform(185, 240)])
        horizon = np.array([rng.uniform(175, 215), rng.uniform(190, 225), rng.uniform(205, 240)])
        fog = rng.uniform(180, 700)
    pavements = [(170, 165, 155), (150, 150, 150), (180, 140, 120), (160, 160, 170), (190, 180, 160)]
    temperature = rng.uniform(-1, 1)
    return Style(
        zenith=zenith, horizon=horizon, fog_distance=fog,
        asphalt=np.full(3, rng.uniform(65, 115)) + rng.uniform(-8, 8, 3),
        pavement=np.asarray(color_near(rng, pavements[rng.integers(len(pavements))], 15)),
        gain=rng.uniform(0.72, 1.15) * np.array([1 + 0.09 * temperature, 1.0, 1 - 0.09 * temperature]),
        drift=(rng.uniform(0.03, 0.1), rng.uniform(25, 70), rng.uniform(0, 2 * np.pi)),
        sun_side=int(rng.choice([-1, 1])), noise_sigma=rng.uniform(1.5, 4.0),
        noise_seed=int(rng.integers(1 << 31)),
    )


def _ground_texture(rng, kerbs: tuple[float, float], lanes_each_way: int) -> np.ndarray:
    """``(Nz, Nx) uint8`` ground intensity (100 = the surface color), periodic in z.

    Asphalt with wear, tyre tracks and lane markings between the kerbs; paving slabs with
    joints and a kerb-stone row on the sidewalks.
    """
    nx, nz = int((TEX_X1 - TEX_X0) / TEX_RES), int(TEX_PERIOD / TEX_RES)
    x = TEX_X0 + (np.arange(nx) + 0.5) * TEX_RES
    zz = (np.arange(nz) + 0.5) * TEX_RES

    def noise(sigma_px):                                  # smooth noise, periodic in z, unit std
        step = max(1, int(sigma_px // 2))                  # made at a lower resolution, then resized
        small = rng.standard_normal((nz // step, nx // step), dtype=np.float32)
        if sigma_px > 0:
            pad = int(3 * sigma_px / step) + 1
            padded = np.pad(small, ((pad, pad), (0, 0)), mode="wrap")
            small = cv2.GaussianBlur(padded, (0, 0), sigma_px / step)[pad:-pad]
        out = cv2.resize(small, (nx, nz), interpolation=cv2.INTER_LINEAR) if step > 1 else small
        return out / max(float(out.std()), 1e-6)

    fine = noise(0)
    asphalt = 100 + 4 * fine + 6 * noise(3) + 8 * noise(20)
    left, right = kerbs
    lane_x = [i * 3.5 for i in range(lanes_each_way)] + [-(i + 1) * 3.5 for i in range(lanes_each_way)]
    for lx in lane_x:                                     # darker tyre tracks
        asphalt -= 7 * np.exp(-(((x - lx) ** 2 - 0.8 ** 2) / 0.35) ** 2)[None, :]
    paint = np.zeros((nz, nx), bool)
    center = -1.75
    for off in (-0.12, 0.12):                             # double center line
        paint |= (np.abs(x - center - off) < 0.06)[None, :]
    dash = (zz % (LANE_DASH + LANE_GAP)) < LANE_DASH
    for i in range(1, lanes_each_way):
        for lx in (center + 3.5 * i, center - 3.5 * i):
            paint |= dash[:, None] & (np.abs(x - lx) < 0.07)[None, :]
    for edge in (left + 2.2, right - 2.2):               # edge of the parking strip
        paint |= (np.abs(x - edge) < 0.07)[None, :]
    asphalt = np.where(paint, 230 + 4 * fine, asphalt)
    slab = 0.5                                            # paving slabs (m)
    ix, iz = np.floor(x / slab).astype(int), np.floor(zz / slab).astype(int)
    tones = rng.normal(0, 5, (int(TEX_PERIOD / slab) + 1, ix.max() - ix.min() + 1))   # per slab
    tone = tones[iz[:, None], (ix - ix.min())[None, :]]
    joints = ((x % slab) < 0.03)[None, :] | ((zz % slab) < 0.03)[:, None]
    pave = 100 + tone + 4 * fine + 5 * noise(12) - 25 * joints
    dist = np.minimum(np.abs(x - left), np.abs(x - right))
    pave = np.where((dist < 0.3)[None, :], 120 + 3 * fine, pave)   # kerb stones
    road = ((x > left) & (x < right))[None, :]
    return np.clip(np.where(road, asphalt, pave), 0, 255).astype(np.uint8)


def _skyline(rng, style: Style):
    """Distant buildings and tree lines at infinity: ``(N, 8, 2)`` (azimuth, elevation) rad polygons."""
    polys, colors, labels = [], [], []
    az, base = -math.pi / 2, math.radians(-0.05)
    while az < math.pi / 2:
        width = math.radians(rng.uniform(1.5, 6.0))
        if rng.random() < 0.7:
            top = math.radians(rng.uniform(0.3, 2.2))
            pts = [(az, base)] + [(az, top)] * 3 + [(az + width, top)] * 3 + [(az + width, base)]
            color, label = rng.uniform(80, 200, 3), BUILDING
        else:
            tops = np.radians(rng.uniform(0.2, 0.7, 6))
            pts = [(az, base)] + [(az + width * k / 5, tops[k]) for k in range(6)] + [(az + width, base)]
            color, label = np.array([50, 90, 45]) + rng.uniform(-15, 15, 3), VEGETATION
        polys.append(pts)
        colors.append(0.45 * color + 0.55 * style.horizon)
        labels.append(label)
        az += width
    return np.array(polys), np.array(colors, np.float32), np.array(labels), np.zeros(len(polys))


def _clouds(rng, style: Style):
    """A few clouds: ``(N, 16, 2)`` (azimuth, elevation) rad polygons drifting with the wind."""
    n = int(rng.integers(2, 8))
    center = np.stack([rng.uniform(-1.2, 1.2, n), rng.uniform(0.12, 0.6, n)], -1)
    size = rng.uniform(0.06, 0.25, n)[:, None] * [1.0, 0.3]
    ring = _ring(16)[None] * rng.uniform(0.7, 1.1, (n, 16, 1))
    polys = center[:, None] + ring * size[:, None]
    opacity = rng.uniform(0.3, 0.8, (n, 1))
    colors = (1 - opacity) * style.zenith + opacity * np.array([245.0, 245, 245])
    return polys, colors.astype(np.float32), np.full(n, SKY), rng.uniform(-0.003, 0.003, n)
