"""Rasterisation of the synthetic street world: RGB image and exact labels in one pass.

Every primitive (a 3D polygon: box face, window, wheel, limb, tree crown) is projected with
the frame's `Camera` and filled twice with the same integer vertices: once into the RGB image
and once into a segment map that indexes (semantic class, instance id). Pixels therefore
take their color and their label from the same primitive, and labels are exact by
construction. Visibility is the painter's algorithm: items are drawn far to near by a depth
key, the parts of one item in a fixed order. The key is the z (along the street) of the
item's nearest point for boxes (poles, kiosks, car bodies), its z for people and tree
crowns, and the far end for buildings and other `Static.backdrop` items, which lie beyond
the sidewalk: whatever overlaps them on screen is in front of them.

Ground (road and sidewalk) is a periodic texture mapped with the ground-plane homography
and tinted by the label, so its color also follows the label exactly; shadows only darken
it. Lighting (per-sequence gain and color temperature, slow drift), haze with distance,
a slight optical blur and sensor noise are applied to the RGB image only.
"""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np

from .textures import TEX_PERIOD, TEX_RES, TEX_X0, Style, _clouds, _ground_texture, _ring, _sample_style, _skyline
from .world import CAR, PERSON, ROAD, SIDEWALK, SKY, TAG_LOOK, VEGETATION, Camera, Car, Person, Static, seeded_rng

__all__ = ["Renderer", "Style"]

NEAR = 0.4                 # near clipping plane (m)
MIN_EXTENT = 0.75          # polygons smaller than this (px) are not drawn
CAR_DETAIL_PX, PERSON_DETAIL_PX = 10.0, 16.0   # below this height (px): no wheels, windows, limbs
SHIFT = 4                  # fixed-point bits of vertex coordinates given to cv2.fillPoly
THING_BASE = 32            # segment values >= this are things; below are stuff class ids
GROUND_FAR = 1500.0        # ground rows farther than this (m) are left to the sky / skyline
SHADOW_CAR, SHADOW_PERSON = 110, 80                               # ground darkening (of 255)
FACE_SHADE = {"lit": 1.0, "unlit": 0.72, "top": 1.1, "bottom": 0.5, "z": 0.86}
DETAIL_MIN_PX = 1.5        # facade details smaller than this (px) at the nearest point are skipped
BLUR_SIGMA = 0.7           # optical blur of the RGB image (px)
NOISE_PAD = 16             # sensor-noise buffer margin for per-frame random offsets (px)
SKY_SPAN, SKY_GAMMA = 0.5, 0.6   # elevation (rad) where the sky reaches the zenith color; curve
FAR_LAYER = 1e5            # distance (m) standing in for infinity (clouds, skyline)
FAR_REACH = math.radians(75)   # far-layer polygons farther off the view axis are skipped
ROAD_BEHIND = 50.0         # the road polygon starts this far behind the camera (m)

# Box faces as corner indices (corner = ix + 2 iy + 4 iz) in the order -x, +x, -y, +y, -z, +z.
_FACES = np.array([[0, 2, 6, 4], [1, 3, 7, 5], [0, 1, 5, 4], [2, 3, 7, 6], [0, 1, 3, 2], [4, 5, 7, 6]])
_CORNER_BITS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])


class _Polygons:
    """Collects 3D polygons with their painter order, color and segment value, then draws them.

    Polygons come in batches of equal vertex count: ``verts (M, K, 3)`` world metres, and per
    polygon (or one for the batch) a depth key (larger = farther = drawn first), an item
    number, a part number (drawn in increasing order within an item), an RGB color and a
    segment value. Polygons with the same (item, part) are filled in one call, so they must
    not overlap; they must also share the color.
    """

    def __init__(self):
        self.batches: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def add(self, verts, key, item, part, color, value) -> None:
        verts = np.asarray(verts, np.float64)
        if len(verts):
            meta = np.empty((len(verts), 7))                 # key, item, part, r, g, b, value
            meta[:, 0], meta[:, 1], meta[:, 2], meta[:, 3:6], meta[:, 6] = key, item, part, color, value
            self.batches.setdefault(verts.shape[1], []).append((verts, meta))

    def draw(self, cam: Camera, rgb: np.ndarray | None, seg: np.ndarray, fog=None, row0: int = 0) -> None:
        """Project, clip at `NEAR`, sort far to near, fill into `rgb` (optional) and `seg`.

        `seg` (and `rgb`) may be the band of image rows starting at `row0`. `fog(colors (P, 3),
        distances (P,)) -> colors` hazes colors by camera distance. Polygons smaller than
        `MIN_EXTENT` px are skipped (in both images alike).
        """
        h, w = seg.shape
        polys, metas = [], []
        for batch in self.batches.values():
            verts = np.concatenate([v for v, _ in batch])
            meta = np.concatenate([m for _, m in batch])
            c = cam.to_camera(verts)                                    # [M, K, 3]
            z = c[..., 2]
            zmin, zmax = z.min(axis=1), z.max(axis=1)
            groups = []
            full = np.nonzero(zmin >= NEAR)[0]
            if full.size:
                groups.append((full, cam.to_pixels(c[full])))           # [m, K, 2]
            for i in np.nonzero((zmin < NEAR) & (zmax > NEAR))[0]:      # rare: polygons at the camera
                groups.append((np.array([i]), cam.to_pixels(_clip_near(c[i]))[None]))
            for sel, p in groups:
                lo, hi = p.min(axis=1), p.max(axis=1)
                keep = ((hi[:, 0] >= 0) & (hi[:, 1] >= row0) & (lo[:, 0] < w) & (lo[:, 1] < row0 + h)
                        & ((hi - lo).max(axis=1) >= MIN_EXTENT))
                sel = sel[keep]
                polys.extend(np.round((p[keep] - (0.0, row0)) * (1 << SHIFT)).astype(np.int32))
                metas.append(np.column_stack([meta[sel], z[sel].mean(axis=1)]))
        if not polys:
            return
        meta = np.concatenate(metas)
        colors = meta[:, 3:6] if fog is None else fog(meta[:, 3:6], meta[:, 7])
        order = np.lexsort((meta[:, 2], meta[:, 1], -meta[:, 0]))
        group = meta[order, 1:3]
        cuts = [0, *(np.nonzero(np.any(group[1:] != group[:-1], axis=1))[0] + 1).tolist(), len(order)]
        polys = [polys[j] for j in order.tolist()]
        firsts = order[cuts[:-1]]
        colors, values = colors[firsts].tolist(), meta[firsts, 6].astype(int).tolist()
        for a, b, color, value in zip(cuts[:-1], cuts[1:], colors, values):
            if rgb is not None:
                cv2.fillPoly(rgb, polys[a:b], color, cv2.LINE_8, SHIFT)
            cv2.fillPoly(seg, polys[a:b], value, cv2.LINE_8, SHIFT)


def _clip_near(c: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clip of a ``(K, 3)`` camera-space polygon to z >= NEAR."""
    out = []
    for a, b in zip(c, np.roll(c, -1, axis=0)):
        if a[2] >= NEAR:
            out.append(a)
        if (a[2] >= NEAR) != (b[2] >= NEAR):
            s = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + s * (b - a))
    return np.array(out)


def _rect_on(face: np.ndarray, a0: float, a1: float, b0: float, b1: float) -> np.ndarray:
    """Sub-rectangle of ``(M, 4, 3)`` quads (c0, c1, c2, c3; a along c0→c1, b along c0→c3)."""
    c0, da, db = face[:, 0], face[:, 1] - face[:, 0], face[:, 3] - face[:, 0]
    corners = [(a0, b0), (a1, b0), (a1, b1), (a0, b1)]
    return np.stack([c0 + a * da + b * db for a, b in corners], axis=1)


def _box_corners(bounds: np.ndarray) -> np.ndarray:
    """``(N, 6)`` boxes (x0, x1, y0, y1, z0, z1) → ``(N, 8, 3)`` corners (corner = ix + 2 iy + 4 iz)."""
    return np.stack([bounds[:, _CORNER_BITS[:, 0]], bounds[:, 2 + _CORNER_BITS[:, 1]],
                     bounds[:, 4 + _CORNER_BITS[:, 2]]], axis=-1)


def _inset(quads: np.ndarray, scale: float) -> np.ndarray:
    center = quads.mean(axis=1, keepdims=True)
    return center + (quads - center) * scale


def _billboard(center: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """For ``(N, 3)`` points: ``(N, 3)`` lateral unit vectors of vertical planes facing the
    camera (pointing right on screen) and ``(N, 2)`` unit ground directions (x, z) of the rays."""
    d = center[:, [0, 2]] - (cam.position[0], cam.position[2])
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    lateral = np.stack([d[:, 1], np.zeros(len(d)), -d[:, 0]], axis=1)
    return lateral, d


# Car proportions: body clearance, wheel and hub radii (m); body top and bonnet as fractions of
# height / length; boot fraction of ordinary and tall (> TALL_CAR m) cars; cabin inset (m).
CLEARANCE, WHEEL_R, HUB_R = 0.2, 0.31, 0.14
BODY_TOP, BONNET, BOOT, TALL_CAR, CABIN_INSET = 0.6, 0.3, (0.22, 0.06), 1.6, 0.12
WHEEL_AT = (0.2, 0.8)                              # wheel centers along the length
SHADOW_MARGIN, SHADOW_SHIFT = (0.15, 0.2), 0.25    # shadow beyond the footprint (x, z), away from the sun
SIDE_GLASS, END_GLASS = 0.78, 0.8                  # window size relative to its cabin face (half)
LAMPS, GRILLE_AT, PLATE_AT = ((0.04, 0.2), (0.8, 0.96)), (0.3, 0.7, 0.45, 0.72), (0.38, 0.62, 0.18, 0.36)
LAMP_HEIGHT = (0.62, 0.88)                         # lamps, grille, plate: (a0, a1, b0, b1) on the body end
TYRE, HUB, PLATE = (25, 25, 27), (150, 150, 155), (225, 225, 215)
TAIL_LIGHT, HEAD_LIGHT, GRILLE = (160, 18, 18), (235, 232, 205), (35, 35, 38)


# Pedestrian proportions, as fractions of body height: heights (y) of hips, waist, shoulders,
# hands, head center; half-widths (w) facing the camera and in profile; gait amplitudes.
BODY = dict(hip_y=0.52, waist_y=0.5, shoulder_y=0.81, hand_y=0.45, head_y=0.905,
            hip_w=0.10, hip_w_profile=0.07, torso_w=0.13, torso_w_profile=0.08, leg_w=0.045, arm_w=0.03,
            leg_gap=0.055, leg_swing=0.2, arm_swing=0.12, arm_out=0.02, foot_lift=0.04,
            head_rx=0.058, head_ry=0.07, head_lead=0.01)
HAIR_RISE, HAIR_SCALE = 0.1, 1.07      # hair: the head's upper part, slightly larger and higher
SLEEVE_SHADE = 0.88                    # sleeves are a little darker than the shirt
PERSON_SHADOW_R = 0.3                  # radius of a pedestrian's ground shadow (m)


class Renderer:
    """Draws the frames of one sequence at a fixed image size.

    The look of the sequence (`Style`: sky, surfaces, lighting, noise) comes from `seed`;
    `kerbs` and `lanes_each_way` are the street's (`World.kerbs`, `SceneConfig`) for the road
    texture. Textures are made once, here; `render()` draws one frame.
    """

    def __init__(self, seed: int, kerbs: tuple[float, float], lanes_each_way: int, width: int, height: int):
        rng = seeded_rng(seed, TAG_LOOK)
        self.style = style = _sample_style(rng)
        self.kerbs, self.width, self.height = kerbs, width, height
        self._texture = _ground_texture(rng, kerbs, lanes_each_way)
        self._tint = np.zeros((THING_BASE, 3), np.float32)
        self._tint[ROAD], self._tint[SIDEWALK] = style.asphalt / 100.0, style.pavement / 100.0
        self._noise = np.round(style.noise_sigma * rng.standard_normal(
            (height + NOISE_PAD, width + NOISE_PAD, 3), dtype=np.float32)).astype(np.int16)
        self._skyline = _skyline(rng, style)
        clouds = _clouds(rng, style)                      # only under a clear (blue) sky
        self._clouds = clouds if style.zenith[2] > style.zenith[0] + 40 else tuple(c[:0] for c in clouds)
        shade = np.array([FACE_SHADE["lit" if style.sun_side < 0 else "unlit"],
                          FACE_SHADE["lit" if style.sun_side > 0 else "unlit"],
                          FACE_SHADE["bottom"], FACE_SHADE["top"], FACE_SHADE["z"], FACE_SHADE["z"]])
        self._shade = shade.astype(np.float32)

    # ------------------------------------------------------------------ frame
    def render(self, cam: Camera, statics: list[Static], things: list[Car | Person],
               t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame at time `t` (s): rgb ``(H, W, 3) uint8``, semantic and instance ``(H, W) int32``.

        Thing pixels get ``thing.id`` as instance id; stuff pixels get 0.
        """
        h, w = self.height, self.width
        rgb = np.empty((h, w, 3), np.uint8)
        seg = np.empty((h, w), np.int32)
        scene, shadows = _Polygons(), _Polygons()
        self._emit_statics(scene, statics, cam)
        for kind, emit, min_px in ((Car, self._emit_cars, CAR_DETAIL_PX),
                                   (Person, self._emit_people, PERSON_DETAIL_PX)):
            objs = [(i, o) for i, o in enumerate(things) if isinstance(o, kind)]
            size = [cam.focal * o.height / max(math.hypot(o.x - cam.position[0], o.z - cam.position[2]), NEAR)
                    for _, o in objs]                       # rough height in pixels: level of detail
            for detailed in (False, True):
                chosen = [obj for obj, px in zip(objs, size) if (px >= min_px) == detailed]
                if chosen:
                    emit(scene, shadows, chosen, cam, len(statics), detailed)
        self._sky_and_ground(cam, rgb, seg, shadows)
        self._far_layer(cam, t).draw(cam, rgb, seg)
        scene.draw(cam, rgb, seg, fog=self._fog)
        sem_lut = np.arange(THING_BASE + len(things), dtype=np.int32)
        inst_lut = np.zeros_like(sem_lut)
        sem_lut[THING_BASE:] = [CAR if isinstance(o, Car) else PERSON for o in things]
        inst_lut[THING_BASE:] = [o.id for o in things]
        return self._finish(rgb, t), np.take(sem_lut, seg), np.take(inst_lut, seg)

    def _fog(self, colors: np.ndarray, dist: np.ndarray) -> np.ndarray:
        a = (1.0 - np.exp(-np.maximum(dist, 0) / self.style.fog_distance))[:, None]
        return colors * (1 - a) + self.style.horizon * a

    def _finish(self, rgb: np.ndarray, t: float) -> np.ndarray:
        """Optical blur, lighting (gain, color temperature, slow drift) and sensor noise."""
        rgb = cv2.GaussianBlur(rgb, (3, 3), BLUR_SIGMA)
        amp, period, phase = self.style.drift
        gain = self.style.gain * (1.0 + amp * math.sin(2 * math.pi * t / period + phase))
        lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain, 0, 255).astype(np.uint8)
        rgb = cv2.LUT(rgb, lut.reshape(256, 1, 3))
        oy, ox = seeded_rng(self.style.noise_seed, round(t * 1000)).integers(0, NOISE_PAD, 2)
        return cv2.add(rgb, self._noise[oy:oy + self.height, ox:ox + self.width], dtype=cv2.CV_8U)

    # ------------------------------------------------------------------ background
    def _sky_and_ground(self, cam: Camera, rgb: np.ndarray, seg: np.ndarray, shadows: _Polygons) -> None:
        h, w, f = self.height, self.width, cam.focal
        vh, cam_h = cam.horizon, cam.position[1]
        v0 = int(np.clip(math.ceil(vh + f * cam_h / GROUND_FAR), 0, h))
        elevation = np.arctan((vh - np.arange(v0) - 0.5) / f)
        mix = np.clip(elevation / SKY_SPAN, 0, 1)[:, None] ** SKY_GAMMA
        rgb[:v0] = (self.style.horizon * (1 - mix) + self.style.zenith * mix)[:, None, :]
        seg[:v0] = SKY
        if v0 >= h:
            return
        band = seg[v0:]
        band[:] = SIDEWALK
        cz = cam.position[2]
        road = _Polygons()
        near, far = cz - ROAD_BEHIND, cz + 3 * GROUND_FAR
        (left, right) = self.kerbs
        road.add([[(left, 0, near), (right, 0, near), (right, 0, far), (left, 0, far)]], 0, 0, 0, (0, 0, 0), ROAD)
        road.draw(cam, None, band, row0=v0)
        # Ground texture through the homography image row/col -> ground (x, z) -> texel.
        r, c = cam.rotation, np.asarray(cam.position)
        k = np.array([[f, 0, w / 2], [0, -f, h / 2], [0, 0, 1.0]])
        ground_to_image = k @ np.column_stack([r[:, 0], r[:, 2], -r @ c])
        z_shift = math.floor(cz / TEX_PERIOD) * TEX_PERIOD
        to_texel = np.array([[1 / TEX_RES, 0, -TEX_X0 / TEX_RES], [0, 1 / TEX_RES, -z_shift / TEX_RES], [0, 0, 1]])
        m = to_texel @ np.linalg.inv(ground_to_image) @ np.array([[1, 0, 0], [0, 1, v0], [0, 0, 1.0]])
        g = cv2.warpPerspective(self._texture, m, (w, h - v0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_WRAP).astype(np.float32)
        if shadows.batches:
            shade = np.zeros(band.shape, np.uint8)
            shadows.draw(cam, None, shade, row0=v0)
            g *= 1.0 - shade.astype(np.float32) / 255.0
        dist = f * cam_h / np.maximum(np.arange(v0, h) + 0.5 - vh, 1e-3)
        haze = (1.0 - np.exp(-dist / self.style.fog_distance)).astype(np.float32)[:, None]
        tint = np.take(self._tint, band, axis=0)                                # [h, W, 3]
        out = (g * (1 - haze))[..., None] * tint + (haze * self.style.horizon)[:, None, :]
        np.clip(out, 0, 255, out=out)
        rgb[v0:] = out

    def _far_layer(self, cam: Camera, t: float) -> _Polygons:
        """Clouds and the distant skyline, at infinity: they move with pan and zoom only."""
        far = _Polygons()
        for layer, (polys, colors, labels, rates) in enumerate((self._clouds, self._skyline)):
            if len(polys) == 0:
                continue
            az = polys[:, :, 0] + rates[:, None] * t                    # [N, K] azimuth (rad)
            keep = np.abs(az.mean(axis=1) - cam.yaw) < FAR_REACH
            az, el = az[keep], polys[keep][:, :, 1]
            dirs = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], axis=-1)
            far.add(np.asarray(cam.position) + FAR_LAYER * dirs, 2 - layer, np.arange(len(dirs)) + layer * len(polys),
                    0, colors[keep], labels[keep])
        return far

    # ------------------------------------------------------------------ stuff
    def _boxes(self, scene: _Polygons, bounds, colors, keys, items, values, part0: int, cam: Camera):
        """Visible faces of ``(N, 6)`` boxes (x0, x1, y0, y1, z0, z1); returns corners and visibility."""
        corners = _box_corners(bounds)                                          # [N, 8, 3]
        p = cam.position
        visible = np.stack([p[0] < bounds[:, 0], p[0] > bounds[:, 1], p[1] < bounds[:, 2],
                            p[1] > bounds[:, 3], p[2] < bounds[:, 4], p[2] > bounds[:, 5]], axis=1)  # [N, 6]
        b, f = np.nonzero(visible)
        scene.add(corners[b[:, None], _FACES[f]], keys[b], items[b], part0 + f,
                  colors[b] * self._shade[f][:, None], values[b])
        return corners, visible

    def _emit_statics(self, scene: _Polygons, statics: list[Static], cam: Camera) -> None:
        boxes = [(i, s) for i, s in enumerate(statics) if s.kind != "crown"]
        if boxes:
            idx = np.array([i for i, _ in boxes])
            bounds = np.array([s.bounds for _, s in boxes], np.float64)
            keys = np.where([s.backdrop for _, s in boxes], bounds[:, 5], bounds[:, 4])
            self._boxes(scene, bounds, np.array([s.color for _, s in boxes], np.float32), keys, idx,
                        np.array([s.label for _, s in boxes]), 0, cam)
            for (i, s), key in zip(boxes, keys):
                if s.details:
                    self._details(scene, s, i, key, cam)
        crowns = [(i, s) for i, s in enumerate(statics) if s.kind == "crown"]
        if crowns:
            b = np.array([s.bounds for _, s in crowns])
            center, radius = b[:, :3], b[:, 3]
            shape = np.stack([cast(np.ndarray, s.shape) for _, s in crowns])  # [N, K]; crowns have shapes
            lateral, _ = _billboard(center, cam)
            ring = _ring(shape.shape[1])                                       # [K, 2]
            offset = (radius[:, None] * shape)[..., None] * ring               # [N, K, 2]
            verts = center[:, None] + offset[..., :1] * lateral[:, None] + offset[..., 1:] * np.array([0, 1.0, 0])
            keys = np.where([s.backdrop for _, s in crowns], center[:, 2] + radius, center[:, 2] - 0.3)
            scene.add(verts, keys, np.array([i for i, _ in crowns]), 0, np.array([s.color for _, s in crowns]),
                      VEGETATION)

    def _details(self, scene: _Polygons, s: Static, item: int, key: float, cam: Camera) -> None:
        """Windows and shop fronts of a building's street face, unless too small to see."""
        face = s.bounds[0] if s.side > 0 else s.bounds[1]
        if (cam.position[0] - face) * s.side >= 0:
            return
        dist = math.hypot(face - cam.position[0], max(s.bounds[4] - cam.position[2], 0.0))
        if cam.focal * s.detail_size / max(dist, NEAR) < DETAIL_MIN_PX:
            return
        for part, (quads, color) in enumerate(s.details):
            scene.add(quads, key, item, 6 + part, color, s.label)

    # ------------------------------------------------------------------ things
    def _emit_cars(self, scene: _Polygons, shadows: _Polygons, cars, cam: Camera, item0: int,
                   detailed: bool) -> None:
        """Cars as a body box and a cabin box; `detailed` adds wheels, windows, lights and plate."""
        idx = np.array([i for i, _ in cars])
        items, values = item0 + idx, THING_BASE + idx
        x, z, length, width, height, heading = np.array(
            [(c.x, c.z, c.length, c.width, c.height, c.heading) for _, c in cars], np.float64).T
        color = np.array([c.color for _, c in cars], np.float32)
        glass = np.array([c.glass for _, c in cars], np.float32)
        z0, z1, top = z - length / 2, z + length / 2, BODY_TOP * height
        keys = z0
        n = len(cars)
        cx, _, cz = cam.position
        # Shadow on the ground, shifted away from the sun.
        shift, (mx, mz) = -SHADOW_SHIFT * self.style.sun_side, SHADOW_MARGIN
        xs, zs = (x - width / 2 - mx + shift, x + width / 2 + mx + shift), (z0 - mz, z1 + mz)
        foot = np.stack([np.stack([xs[i], np.zeros(n), zs[j]], -1) for i, j in ((0, 0), (1, 0), (1, 1), (0, 1))], 1)
        shadows.add(foot, 0, items, 0, (0, 0, 0), SHADOW_CAR)
        # Tyres seen under the body from behind / in front, on the axle plane (drawn first).
        ahead = np.nonzero((cz < z0) & detailed)[0]
        for part, (a0, a1) in enumerate(((0.1, 0.35), (-0.35, -0.1))):          # from the body side (m)
            xa = np.where(a0 > 0, x - width / 2, x + width / 2)[ahead]
            za, zero, top_y = z0[ahead] + WHEEL_AT[0] * length[ahead], np.zeros(len(ahead)), CLEARANCE + WHEEL_R / 3
            q = np.stack([np.stack([xa + a, y + zero, za], -1)
                          for a, y in ((a0, 0), (a1, 0), (a1, top_y), (a0, top_y))], 1)
            scene.add(q, keys[ahead], items[ahead], part, TYRE, values[ahead])
        body = np.stack([x - width / 2, x + width / 2, np.full(n, CLEARANCE), top, z0, z1], axis=1)
        corners, visible = self._boxes(scene, body, color, keys, items, values, 2, cam)
        # Wheels on the visible flank.
        side = np.where(cx < body[:, 0], -1, np.where(cx > body[:, 1], 1, 0))
        flank = np.nonzero((side != 0) & detailed)[0]
        if flank.size:
            xw = np.where(side > 0, body[:, 1] + 0.01, body[:, 0] - 0.01)[flank]
            for k, frac in enumerate(WHEEL_AT):
                zc = z0[flank] + frac * length[flank]
                for part, radius, col in ((8, WHEEL_R, TYRE), (9, HUB_R, HUB)):
                    ring = _ring(8) * radius                                   # [8, 2] (z, y)
                    q = np.stack([np.broadcast_to(xw[:, None], (len(flank), 8)),
                                  np.broadcast_to(WHEEL_R + ring[:, 1], (len(flank), 8)),
                                  zc[:, None] + ring[:, 0]], -1)
                    scene.add(q, keys[flank], items[flank], part + 2 * k, col, values[flank])
        # Cabin: shorter over the bonnet (front) than over the boot, SUVs have almost no boot.
        boot = np.where(height > TALL_CAR, BOOT[1], BOOT[0]) * length
        bonnet = BONNET * length
        cabin = np.stack([x - width / 2 + CABIN_INSET, x + width / 2 - CABIN_INSET, top, height,
                          np.where(heading > 0, z0 + boot, z0 + bonnet),
                          np.where(heading > 0, z1 - bonnet, z1 - boot)], 1)
        corners, visible = self._boxes(scene, cabin, color, keys, items, values, 12, cam)
        if not detailed:
            return
        b, f = np.nonzero(visible[:, [0, 1]])
        if b.size:                                                              # two side windows
            q = corners[b[:, None], _FACES[f]]
            mid0, mid1 = (q[:, 0] + q[:, 3]) / 2, (q[:, 1] + q[:, 2]) / 2
            halves = (np.stack([q[:, 0], q[:, 1], mid1, mid0], 1), np.stack([mid0, mid1, q[:, 2], q[:, 3]], 1))
            for k, half in enumerate(halves):
                scene.add(_inset(half, SIDE_GLASS), keys[b], items[b], 18 + k, glass[b], values[b])
        b, f = np.nonzero(visible[:, [4, 5]])
        if b.size:
            ends = _inset(corners[b[:, None], _FACES[f + 4]], END_GLASS)
            scene.add(ends, keys[b], items[b], 20, glass[b], values[b])
        # Lights, grille and number plate on the visible end of the body.
        corners = _box_corners(body)
        for face, show in ((4, cz < z0), (5, cz > z1)):
            b = np.nonzero(show)[0]
            if not b.size:
                continue
            q = corners[b[:, None], _FACES[face]]
            rear = (heading[b] > 0) == (face == 4)
            lights = np.where(rear[:, None], np.array(TAIL_LIGHT, np.float32), np.array(HEAD_LIGHT, np.float32))
            for part, (a0, a1) in enumerate(LAMPS, start=21):
                scene.add(_rect_on(q, a0, a1, *LAMP_HEIGHT), keys[b], items[b], part, lights, values[b])
            front = np.nonzero(~rear)[0]
            scene.add(_rect_on(q[front], *GRILLE_AT), keys[b][front], items[b][front], 23, GRILLE, values[b][front])
            scene.add(_rect_on(q, *PLATE_AT), keys[b], items[b], 24, PLATE, values[b])

    def _emit_people(self, scene: _Polygons, shadows: _Polygons, people, cam: Camera, item0: int,
                     detailed: bool) -> None:
        """Pedestrians as limbs on a plane facing the camera; the gait swings legs and arms.

        Sizes are `BODY` fractions of each person's height; the swing shows in profile, a
        small foot lift facing the camera. Without `detailed`: legs as one part, torso, head.
        """
        idx = np.array([i for i, _ in people])
        items, values = item0 + idx, THING_BASE + idx
        x, z, hgt, hx, hz, phase, moving = np.array(
            [(p.x, p.z, p.height, *p.heading, p.phase, p.moving) for _, p in people], np.float64).T
        n = len(people)
        feet = np.stack([x, np.zeros(n), z], axis=1)
        lateral, ray = _billboard(feet, cam)
        across = hx * ray[:, 1] - hz * ray[:, 0]         # + walks to the right on screen; |.| = profile
        prof, away = np.abs(across), hx * ray[:, 0] + hz * ray[:, 1] > 0
        front = 1 - prof
        swing = np.sin(phase) * moving
        f = {k: v * hgt for k, v in BODY.items()}        # proportions in metres, [n] each
        hip_w = f["hip_w"] + (f["hip_w_profile"] - f["hip_w"]) * prof
        torso_w = f["torso_w"] + (f["torso_w_profile"] - f["torso_w"]) * prof

        def quad(top, top_w, top_y, bottom, bottom_w, bottom_y):   # [n, 4, 2] (lateral, up) metres
            return np.stack([np.stack([top - top_w, top_y], -1), np.stack([top + top_w, top_y], -1),
                             np.stack([bottom + bottom_w, bottom_y], -1),
                             np.stack([bottom - bottom_w, bottom_y], -1)], 1)

        shapes = []
        for j in (-1, 1):                                  # legs
            hip = j * f["leg_gap"] * front
            lift = front * f["foot_lift"] * np.maximum(0, j * swing)
            shapes.append(quad(hip, f["leg_w"], f["hip_y"], hip + across * f["leg_swing"] * swing * j,
                               0.8 * f["leg_w"], lift))
        shapes.append(quad(0, hip_w, f["waist_y"], 0, torso_w, f["shoulder_y"]))
        for j in (-1, 1):                                  # arms swing against the legs
            shoulder = j * (torso_w - f["arm_w"]) * front
            hand = shoulder - across * f["arm_swing"] * swing * j + j * front * f["arm_out"]
            shapes.append(quad(shoulder, f["arm_w"], f["shoulder_y"] - f["arm_w"], hand, f["arm_w"], f["hand_y"]))
        head_at = np.stack([across * f["head_lead"], f["head_y"]], -1)[:, None]
        shapes.append(head_at + _ring(10) * np.stack([f["head_rx"], f["head_ry"]], -1)[:, None])
        start = np.where(away, -0.3 * np.pi, 0.05 * np.pi)   # seen from behind, hair covers the head
        angles = start[:, None] + (np.pi - 2 * start)[:, None] * np.linspace(0, 1, 10)
        shapes.append(head_at + np.stack([np.cos(angles), np.sin(angles) + HAIR_RISE], -1)
                      * np.stack([f["head_rx"], f["head_ry"]], -1)[:, None] * HAIR_SCALE)
        shirt = np.array([p.shirt for _, p in people], np.float32)
        pants = np.array([p.pants for _, p in people], np.float32)
        skin = np.array([p.skin for _, p in people], np.float32)
        hair = np.array([p.hair for _, p in people], np.float32)
        colors = [pants, pants, shirt, shirt * SLEEVE_SHADE, shirt * SLEEVE_SHADE, skin, hair]
        if not detailed:                                   # both legs as one
            spread = np.abs(across * f["leg_swing"] * swing) + hip_w
            shapes[0] = quad(0, hip_w, f["hip_y"], 0, spread, 0 * hgt)
        up = np.array([0, 1.0, 0])
        for part, (shape, color) in enumerate(zip(shapes, colors)):
            if not detailed and part in (1, 3, 4, 6):      # right leg, arms, hair
                continue
            verts = feet[:, None] + shape[..., :1] * lateral[:, None] + shape[..., 1:] * up   # [n, K, 3]
            scene.add(verts, z, items, part, color, values)
        ring = _ring(8) * PERSON_SHADOW_R
        shift = -SHADOW_SHIFT * self.style.sun_side
        shadows.add(np.stack([x[:, None] + shift + ring[:, 0], np.zeros((n, 8)), z[:, None] + ring[:, 1]], -1),
                    0, items, 0, (0, 0, 0), SHADOW_PERSON)
