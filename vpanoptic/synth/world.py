"""Scene model of the synthetic street world: camera, objects and their motion (presets: scenes.py).

World coordinates are metres: x to the right of the driving direction, y up, z forward along
the street; the ground is the plane y = 0 and the camera starts at x = 0, z = 0. Everything in
the world is a pure function of (seed, `SceneConfig`, time in seconds): motion is defined in
units per second, so the same world can be sampled at any frame rate. Randomness comes from
``numpy.random.default_rng`` streams keyed by the seed and a block index (space or time), so
the world is generated lazily, block by block, and never depends on which frames were drawn.

Moving objects live on *streams*: a lane or a sidewalk track whose slots hold at most one
object each, moving with a constant velocity. An object is alive while it is between
`BEHIND` metres behind the camera and its stream's far limit; its life is a single interval,
so an id, once given up, is never needed again (see `IdBook`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from .objects import _FACADES, Camera, Car, Person, Static, _car_spec, _facade, _person_spec, color_near
from .scenes import OCC_FIRST, SCENARIOS, SceneConfig, resolve_scenario

__all__ = ["GENERATOR_VERSION", "SCENARIOS", "Camera", "Car", "IdBook", "Person", "SceneConfig", "Static",
           "World", "color_near", "resolve_scenario", "seeded_rng"]

GENERATOR_VERSION = "1"  # bump whenever a seed would produce different frames

# Cityscapes train ids (vpanoptic.datasets.KITTI_STEP) used by the world.
ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 5, 8, 10, 11, 13

# Street geometry (metres).
LANE_WIDTH = 3.5
PARKING_WIDTH = 2.2
SIDEWALK_WIDTH = 4.0
BUILDING_DEPTH = 20.0         # buildings are boxes this deep, behind their street face
POLE_OFFSET = 0.35            # pole axis, from the kerb into the sidewalk
TREE_OFFSET = 1.0             # tree axis, from the kerb
KIOSK_OFFSET = 1.1            # kiosk center, from the kerb
WALK_OFFSETS = (2.1, 3.2)     # the two pedestrian tracks of each sidewalk, from the kerb
BEHIND = 8.0                  # objects stay alive until this far behind the camera
CAR_FAR, PERSON_FAR, STATIC_FAR = 200.0, 110.0, 320.0   # far limits of life / drawing
STATIC_BLOCK = 96.0           # length of a lazily generated block of buildings, trees, poles
CROSS_BLOCK = 8.0             # seconds per lazily generated block of road crossings
LEAD_MIN = 12.0               # cars in the camera's lane start at least this far ahead
LEAD_SPEEDUP = (0.5, 2.0)     # ... and drive this much faster than the camera (m/s)
# Stream slots (m): (slot length, position jitter within it, lateral jitter). A slot holds at
# most one object; cars (<= 5 m long) of one lane keep >= 2.5 m (parked: >= 1 m) apart.
CAR_SLOT, PARKED_SLOT, PERSON_SLOT = (13.0, 5.5, 0.2), (7.5, 1.5, 0.15), (1.2, 1.0, 0.3)
CLEAR_MARGIN = 8.0            # crossers leave the camera's lane before it is this close
CROSS_FROM_KERB = 1.0         # crossers start and end this far onto the sidewalks (m)
PAIR_GAP = (0.7, 1.6)         # depth offset between the two crossers of a pair (m)
MIN_SPEED = 0.3               # slowest crossing pedestrian (m/s)
STRIDE = 1.45 / 1.75          # gait cycle (two steps) per metre of body height
SHAKE_HZ, SHAKE_MIX = (1.3, 2.9), (0.6, 0.4)   # camera shake: two sines (Hz) and their weights
SHAKE_FULL_SPEED = 10.0       # ego speed (m/s) from which the shake has its full amplitude

# Scripted occlusion (see `SceneConfig.occlusion_events`): a pedestrian of height
# OCC_HEIGHT crosses the road OCC_PERSON_AT m ahead behind a hedge on the center island,
# OCC_HEDGE_AT..+OCC_HEDGE_DEPTH m ahead. OCC_EXTENT bounds the half-width of a walking person.
OCC_PERSON_AT, OCC_HEDGE_AT, OCC_HEDGE_DEPTH, OCC_HEDGE_HEIGHT = 13.0, 6.5, 0.8, 2.3
OCC_HEIGHT, OCC_EXTENT, OCC_SPEED = 1.75, 0.3, 1.3

_SEED_OFFSET = 1 << 31        # block indices may be negative; SeedSequence wants >= 0
_TAG_WORLD, _TAG_STATIC, _TAG_STREAM, _TAG_CROSS, TAG_LOOK = 1, 2, 3, 4, 5



def seeded_rng(seed: int, *keys: int) -> np.random.Generator:
    """The random stream of (seed, keys): independent of every other stream and of global state."""
    return np.random.default_rng([seed % (1 << 64), *(int(k) + _SEED_OFFSET for k in keys)])


@dataclass(frozen=True)
class _Stream:
    """A lane or sidewalk track: slots of `slot` m, each holding an object with prob. `occupancy`."""

    index: int
    kind: str            # "car" or "person"
    x: float
    direction: int       # +1 / -1 along z
    speed: tuple[float, float]
    slot: float
    jitter: float        # position jitter within the slot (m)
    lateral: float       # lateral jitter (m)
    occupancy: float
    far: float
    s_min: float = -math.inf   # slots before this world z (at t = 0) stay empty
    standing: float = 0.0


class IdBook:
    """Gives each object key a 1-based id, unique for the sequence and stable for the object's life.

    Keys must be presented in time order. A key absent from a call is forgotten: objects
    live in one interval, so it cannot come back, and its id is never reused.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._next = 1

    def assign(self, keys: list[tuple]) -> list[int]:
        ids = {}
        for key in sorted(set(keys), key=repr):
            ids[key] = self._ids.get(key) or self._take()
        self._ids = ids
        return [ids[k] for k in keys]

    def _take(self) -> int:
        self._next += 1
        return self._next - 1


class World:
    """The street world of one seed and `SceneConfig`; query it at non-decreasing times.

    Attributes: `kerbs` (x of the left and right kerb), `ids` (the `IdBook` that `things()`
    uses).
    """

    _CACHE_SIZE = 512          # lazily generated blocks kept (bounded memory)
    _SLOTS = 32                # stream slots per generated block

    def __init__(self, seed: int, config: SceneConfig):
        self.seed, self.config = int(seed), config
        rng = seeded_rng(self.seed, _TAG_WORLD)
        self._phase = rng.uniform(0, 2 * np.pi, 4)
        n = config.lanes_each_way
        self.kerbs = (-(LANE_WIDTH / 2 + n * LANE_WIDTH + PARKING_WIDTH), LANE_WIDTH * (n - 0.5) + PARKING_WIDTH)
        self._streams = self._make_streams(rng)
        self._cache: dict[tuple, list] = {}
        self.ids = IdBook()
        self._occ = self._occlusion_geometry() if config.occlusion_events else None

    # ------------------------------------------------------------------ camera
    def ego_z(self, t: float) -> float:
        return self.config.ego_speed * t

    def camera(self, t: float, width: int, height: int) -> Camera:
        """The camera at time `t` (s) for an image of `width` x `height` pixels."""
        c, ph = self.config, self._phase
        bumps = min(1.0, c.ego_speed / SHAKE_FULL_SPEED)
        pitch = math.radians(c.shake_deg) * bumps * sum(
            w * math.sin(2 * math.pi * hz * t + p) for w, hz, p in zip(SHAKE_MIX, SHAKE_HZ, ph[2:]))
        yaw = math.radians(c.pan_deg) * math.sin(2 * math.pi * t / c.pan_period + ph[0])
        zoom = c.zoom ** (0.5 - 0.5 * math.cos(2 * math.pi * t / c.zoom_period + ph[1]))
        focal = width / 2 / math.tan(math.radians(c.hfov_deg) / 2) * zoom
        return Camera((0.0, c.camera_height, self.ego_z(t)), yaw, pitch, focal, width, height)

    # ------------------------------------------------------------------ stuff
    def statics(self, t: float) -> list[Static]:
        """Buildings, poles, trees, kiosks and hedges from `BEHIND` m behind to `STATIC_FAR` ahead."""
        z = self.ego_z(t)
        out = []
        for b in range(math.floor((z - BEHIND) / STATIC_BLOCK), math.floor((z + STATIC_FAR) / STATIC_BLOCK) + 1):
            for side in (-1, 1):
                out += self._cached(("static", side, b), partial(self._static_block, side, b))
        if self._occ is not None:
            out.append(self._occ["hedge"])
        return out

    def _static_block(self, side: int, b: int) -> list[Static]:
        rng = seeded_rng(self.seed, _TAG_STATIC, side, b)
        kerb = abs(self.kerbs[side > 0])
        outer = kerb + SIDEWALK_WIDTH
        z, z_end, out = b * STATIC_BLOCK, (b + 1) * STATIC_BLOCK, []

        def box(x0, x1, y0, y1, z0, z1, label, color):   # x0 < x1 measured outwards from the center
            xs = sorted((side * x0, side * x1))
            out.append(Static("box", label, (xs[0], xs[1], y0, y1, z0, z1), color, side=side,
                              backdrop=x0 >= outer - 1.0))

        def tree(x, zt):
            trunk_h, r = rng.uniform(2.2, 3.6), rng.uniform(1.3, 2.6)
            trunk = color_near(rng, (85, 65, 45), 15)
            box(x - 0.15, x + 0.15, 0.0, trunk_h + 0.3, zt - 0.15, zt + 0.15, VEGETATION, trunk)
            green = (rng.uniform(40, 90), rng.uniform(90, 140), rng.uniform(30, 60)) if rng.random() < 0.9 \
                else (rng.uniform(150, 200), rng.uniform(90, 130), 40)
            for dx, dy, scale, shade in ((0, 0, 1.0, 1.0), (0.25, -0.3, 0.7, 0.75), (-0.2, 0.35, 0.55, 1.25)):
                center = (side * x + dx * r, trunk_h + 0.7 * r + dy * r, zt - 0.05 * dy)
                out.append(Static("crown", VEGETATION, (*center, scale * r, 0, 0),
                                  color_near(rng, np.array(green) * shade, 10),
                                  shape=rng.uniform(0.72, 1.1, 14), side=side, backdrop=x >= outer))

        while z < z_end:                                   # buildings and lots between them
            if rng.random() < 0.18:
                z1 = min(z + rng.uniform(5, 12), z_end)
                back = outer + rng.uniform(8, 18)
                color = color_near(rng, _FACADES[rng.integers(len(_FACADES))], 25)
                box(back, back + BUILDING_DEPTH, 0, rng.uniform(8, 35), z, z1, BUILDING, color)
                for _ in range(rng.integers(0, 3)):
                    tree(outer + rng.uniform(1.5, 6), rng.uniform(z, z1))
            else:
                z1 = min(z + rng.uniform(8, 28), z_end)
                setback, height = rng.uniform(0, 3), rng.uniform(6, 28)
                facade = outer + setback
                xs = sorted((side * facade, side * (facade + BUILDING_DEPTH)))
                details, size = _facade(rng, side * facade, z, z1, height)
                out.append(Static("building", BUILDING, (xs[0], xs[1], 0, height, z, z1),
                                  color_near(rng, _FACADES[rng.integers(len(_FACADES))], 25), details=details,
                                  detail_size=size, side=side, backdrop=True))
                if setback > 1.3 and z1 - z > 3 and rng.random() < 0.5:   # hedge in front of the facade
                    box(facade - 0.9, facade - 0.15, 0, rng.uniform(0.8, 1.4), z + 0.5, z1 - 0.5, VEGETATION,
                        color_near(rng, (55, 105, 45), 15))
            z = z1

        def along(spacing):                                # positions every `spacing` m on average
            if spacing <= 0:
                return []
            zs, zz = [], b * STATIC_BLOCK + rng.uniform(0, spacing)
            while zz < z_end:
                zs.append(zz)
                zz += spacing * rng.uniform(0.6, 1.4)
            return zs

        for zp in along(self.config.pole_spacing):
            x, r, h = kerb + POLE_OFFSET, rng.uniform(0.07, 0.13), rng.uniform(5, 8)
            color = color_near(rng, (110, 115, 110) if rng.random() < 0.7 else (50, 70, 55), 12)
            box(x - r, x + r, 0, h, zp - r, zp + r, POLE, color)
            if rng.random() < 0.6:                           # lamp arm over the road
                arm = rng.uniform(1.2, 2.0)
                box(x - arm, x, h - 0.12, h, zp - 0.05, zp + 0.05, POLE, color)
                box(x - arm - 0.1, x - arm + 0.45, h - 0.3, h - 0.05, zp - 0.15, zp + 0.15, POLE, color)
        for zt in along(self.config.tree_spacing):
            tree(kerb + TREE_OFFSET + rng.uniform(-0.2, 0.2), zt)
        for zk in along(self.config.kiosk_spacing):
            w = rng.uniform(1.2, 2.0)
            box(kerb + KIOSK_OFFSET - 0.6, kerb + KIOSK_OFFSET + 0.6, 0, rng.uniform(2.3, 2.9), zk, zk + w,
                BUILDING, color_near(rng, rng.uniform(30, 230, 3), 0))
        return out

    # ------------------------------------------------------------------ things
    def _make_streams(self, rng) -> list[_Stream]:
        c, n = self.config, self.config.lanes_each_way
        streams: list[_Stream] = []

        def add(kind, x, direction, speed, slot, density, far, **kw):
            streams.append(_Stream(len(streams), kind, x, direction, speed, *slot,
                                   min(1.0, density * slot[0]), far, **kw))

        density = c.cars / (c.count_range * 2 * n)
        for i in range(2 * n):
            x, d = (i * LANE_WIDTH, 1) if i < n else (-(i - n + 1) * LANE_WIDTH, -1)
            if i == 0:                                       # the camera's lane: only cars ahead, faster
                v = c.ego_speed + rng.uniform(*LEAD_SPEEDUP)
                add("car", x, d, (v, v), CAR_SLOT, 0.5 * density, CAR_FAR, s_min=LEAD_MIN)
            else:
                v = rng.uniform(*c.car_speed) * c.object_speed
                add("car", x, d, (v, v), CAR_SLOT, density, CAR_FAR)
        for side in (-1, 1):
            add("car", self.kerbs[side > 0] - side * PARKING_WIDTH / 2, side, (0.0, 0.0), PARKED_SLOT,
                c.parked_cars / (c.count_range * 2), CAR_FAR)
        density = c.people / (c.count_range * 2 * len(WALK_OFFSETS))
        speed = (c.walk_speed[0] * c.object_speed, c.walk_speed[1] * c.object_speed)
        for side in (-1, 1):
            for k, offset in enumerate(WALK_OFFSETS):                # the two tracks walk opposite ways
                add("person", self.kerbs[side > 0] + side * offset, side * (1 if k == 0 else -1), speed,
                    PERSON_SLOT, density, PERSON_FAR, standing=c.standing_fraction)
        return streams

    def _cached(self, key: tuple, make) -> list:
        if key not in self._cache:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = make()
        return self._cache[key]

    def _stream_block(self, st: _Stream, b: int) -> list[tuple]:
        rng = seeded_rng(self.seed, _TAG_STREAM, st.index, b)
        present = rng.random(self._SLOTS) < st.occupancy
        out = []
        for j in np.nonzero(present)[0]:
            slot = b * self._SLOTS + int(j)
            s = slot * st.slot + rng.uniform(0, st.jitter)
            standing = rng.random() < st.standing
            speed = 0.0 if standing else rng.uniform(*st.speed)
            spec = _car_spec(rng) if st.kind == "car" else _person_spec(rng)
            if s >= st.s_min:
                out.append((slot, s, speed, rng.uniform(-st.lateral, st.lateral), spec))
        return out

    def things(self, t: float) -> list[Car | Person]:
        """Cars and people alive at `t` (s), with ids from `ids`; call at non-decreasing `t`."""
        ez = self.ego_z(t)
        out: list[Car | Person] = []
        for st in self._streams:
            v_lo = 0.0 if st.standing > 0 else st.speed[0]
            moves = (st.direction * v_lo * t, st.direction * st.speed[1] * t)
            s_lo, s_hi = ez - BEHIND - max(moves), ez + st.far - min(moves)
            for b in range(math.floor(s_lo / st.slot / self._SLOTS), math.floor(s_hi / st.slot / self._SLOTS) + 1):
                block = self._cached(("stream", st.index, b), partial(self._stream_block, st, b))
                for slot, s, speed, lateral, spec in block:
                    z = s + st.direction * speed * t
                    if -BEHIND <= z - ez <= st.far:
                        key = ("s", st.index, slot)
                        if st.kind == "car":
                            out.append(Car(key, st.x + lateral, z, heading=st.direction, **spec))
                        else:
                            out.append(self._person(key, st.x + lateral, z, spec, speed, speed * t, st.direction))
        out += self._crossers(t)
        ids = self.ids.assign([o.key for o in out])
        return [replace(o, id=i) for o, i in zip(out, ids)]

    def _person(self, key, x, z, spec, speed, walked, direction=0, heading=None) -> Person:
        stride = STRIDE * spec["height"]
        if heading is None:
            heading = (0.0, float(direction)) if speed > 0 else (math.sin(spec["phase0"]), math.cos(spec["phase0"]))
        return Person(key, x, z, spec["height"], heading, spec["phase0"] + 2 * math.pi * walked / stride, speed > 0,
                      spec["shirt"], spec["pants"], spec["skin"], spec["hair"])

    def _crossers(self, t: float) -> list[Person]:
        c, (left, right) = self.config, self.kerbs
        x_from, x_to = left - CROSS_FROM_KERB, right + CROSS_FROM_KERB
        out = []
        if c.crossing_rate > 0:
            v_min = max(c.walk_speed[0] * c.object_speed, MIN_SPEED)
            life = (x_to - x_from) / v_min
            for blk in range(math.floor((t - life) / CROSS_BLOCK), math.floor(t / CROSS_BLOCK) + 1):
                for key, x0, z, ts, v, d, spec in self._cached(("cross", blk), partial(self._cross_block, blk)):
                    if ts <= t <= ts + (x_to - x_from) / v:
                        out.append(self._person(key, x0 + d * v * (t - ts), z, spec, v, v * (t - ts),
                                                heading=(float(d), 0.0)))
        if self._occ is not None:
            o, v = self._occ, max(OCC_SPEED * c.object_speed, MIN_SPEED)
            first = max(0, math.floor((t - o["life"] - OCC_FIRST) / c.occlusion_period))
            for n in range(first, first + int(2 * o["life"] / c.occlusion_period) + 3):
                d = 1 if n % 2 == 0 else -1
                x0 = x_from if d > 0 else x_to
                ts = OCC_FIRST + n * c.occlusion_period - (o["x_mid"] - x0) / (d * v)
                if ts <= t <= ts + o["life"]:
                    spec = dict(_person_spec(seeded_rng(self.seed, _TAG_CROSS, -1, n)), height=OCC_HEIGHT)
                    out.append(self._person(("occ", n), x0 + d * v * (t - ts), o["z"], spec, v, v * (t - ts),
                                            heading=(float(d), 0.0)))
        return out

    def _cross_block(self, blk: int) -> list[tuple]:
        c, (left, right) = self.config, self.kerbs
        rng = seeded_rng(self.seed, _TAG_CROSS, blk)
        lane_half = LANE_WIDTH / 2 + CROSS_FROM_KERB        # the camera's lane, with a margin
        out = []
        for k in range(rng.poisson(c.crossing_rate * CROSS_BLOCK)):
            ts = (blk + rng.random()) * CROSS_BLOCK
            d0 = 1 if rng.random() < 0.5 else -1
            dist = rng.uniform(*c.crossing_distance)
            members = [d0, -d0] if c.crossing_pairs else [d0]
            for m, d in enumerate(members):
                v = max(rng.uniform(*c.walk_speed) * c.object_speed, MIN_SPEED)
                x0 = left - CROSS_FROM_KERB if d > 0 else right + CROSS_FROM_KERB
                clear = (lane_half - x0) / v if d > 0 else (x0 + lane_half) / v   # leave the camera's lane
                dist = max(dist, CLEAR_MARGIN + c.ego_speed * clear) if m == 0 else dist + rng.uniform(*PAIR_GAP)
                out.append((("c", blk, k, m), x0, self.ego_z(ts) + dist, ts, v, d, _person_spec(rng)))
        return out

    def _occlusion_geometry(self) -> dict:
        """Hedge on the center island sized so that a crossing person is hidden `occlusion_hidden` s."""
        c, (left, right) = self.config, self.kerbs
        xi, zn, zf, zp = -LANE_WIDTH / 2, OCC_HEDGE_AT, OCC_HEDGE_AT + OCC_HEDGE_DEPTH, OCC_PERSON_AT
        v = max(OCC_SPEED * c.object_speed, MIN_SPEED)
        # Hidden while the person's [x - e, x + e] lies within the hedge's silhouette at depth zp:
        # zp * (x_i - w/2) / zn + e <= x <= zp * (x_i + w/2) / zf - e, an interval of v * hidden metres.
        w = 2 * ((v * c.occlusion_hidden + 2 * OCC_EXTENT) / zp - xi * (1 / zf - 1 / zn)) / (1 / zf + 1 / zn)
        lo, hi = zp * (xi - w / 2) / zn, zp * (xi + w / 2) / zf
        hedge = Static("box", VEGETATION, (xi - w / 2, xi + w / 2, 0.0, OCC_HEDGE_HEIGHT, zn, zf), (60, 110, 50))
        return dict(hedge=hedge, x_mid=(lo + hi) / 2, z=zp, life=(right - left + 2 * CROSS_FROM_KERB) / v)
