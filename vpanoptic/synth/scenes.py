"""Scene configuration of the synthetic street world and the named scenario presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from ..errors import ConfigError

__all__ = ["SCENARIOS", "SceneConfig", "resolve_scenario", "MAX_HIDDEN", "OCC_FIRST"]

MAX_HIDDEN = 2.0              # longer hiding needs a hedge reaching into the camera's lane
OCC_FIRST = 3.0               # time (s) of the first scripted occlusion event

@dataclass(frozen=True)
class SceneConfig:
    """Knobs of a synthetic street scenario (speeds m/s, times s, distances m, angles degrees).

    Counts are means within `count_range` m ahead of the camera; farther objects exist at the
    same density (cars up to 200 m, people up to 110 m). Frozen: derive variants with
    ``dataclasses.replace``. Invalid values raise `ConfigError`.
    """

    # traffic
    cars: float = 8.0                     # moving cars on the road (both directions)
    parked_cars: float = 3.0              # cars parked along both kerbs
    people: float = 8.0                   # pedestrians on the sidewalks (walking both ways)
    standing_fraction: float = 0.15       # share of sidewalk pedestrians standing still
    crossing_rate: float = 0.03           # pedestrians starting to cross the road, per second
    crossing_pairs: bool = False          # crossers start in pairs from opposite kerbs: paths cross
    crossing_distance: tuple[float, float] = (14.0, 40.0)   # how far ahead crossings start (m);
                                          # farther when needed to clear the camera's lane in time
    object_speed: float = 1.0             # multiplies every car and pedestrian speed
    car_speed: tuple[float, float] = (7.0, 13.0)   # range of lane speeds
    walk_speed: tuple[float, float] = (1.0, 1.8)   # range of walking speeds
    lanes_each_way: int = 1               # driving lanes per direction (plus a parking strip each side)
    # camera: drives forward in its lane, pans sinusoidally, zooms between 1x and `zoom`x
    ego_speed: float = 9.0                # 0: the camera waits (e.g. at a crossing)
    camera_height: float = 1.4
    hfov_deg: float = 70.0                # horizontal field of view at zoom 1
    pan_deg: float = 3.0                  # pan amplitude (+-)
    pan_period: float = 19.0
    zoom: float = 1.0                     # largest zoom factor (>= 1)
    zoom_period: float = 11.0
    shake_deg: float = 0.25               # pitch shake from road bumps, scaled by speed up to 10 m/s
    # roadside occluders (stuff in front of things), mean spacing along each kerb; 0 = none
    pole_spacing: float = 24.0            # street lamps
    tree_spacing: float = 16.0
    kiosk_spacing: float = 150.0          # kiosks / advertising columns (labelled building)
    # scripted occlusion: from `OCC_FIRST` s on, every `occlusion_period` s a pedestrian crosses
    # behind a hedge on the center island, fully hidden for about `occlusion_hidden` s
    occlusion_events: bool = False        # needs ego_speed == 0
    occlusion_period: float = 6.0
    occlusion_hidden: float = 1.0
    # sampling
    fps: float = 10.0                     # preferred frame rate, used when the caller gives none
    count_range: float = 60.0             # the distance over which the counts above are taken

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, (int, float)) and not isinstance(v, bool) and
                   (not math.isfinite(v) or v < 0) for v in values):
                raise ConfigError(f"SceneConfig.{f.name} is {value}; expected finite values >= 0")
        for name in ("crossing_distance", "car_speed", "walk_speed"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"SceneConfig.{name} is {(lo, hi)}; expected (low, high)")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ConfigError(f"SceneConfig.hfov_deg is {self.hfov_deg}; expected 10..150")
        if self.zoom < 1.0 or self.fps <= 0 or self.count_range <= 0 or self.lanes_each_way < 1:
            raise ConfigError("SceneConfig: expected zoom >= 1, fps > 0, count_range > 0, lanes_each_way >= 1")
        if min(self.pan_period, self.zoom_period, self.occlusion_period) <= 0:
            raise ConfigError("SceneConfig: pan_period, zoom_period and occlusion_period must be > 0")
        if not 0.0 <= self.standing_fraction <= 1.0:
            raise ConfigError(f"SceneConfig.standing_fraction is {self.standing_fraction}; expected 0..1")
        if self.occlusion_events and self.ego_speed != 0:
            raise ConfigError("SceneConfig.occlusion_events needs ego_speed = 0 (the camera waits)")
        if self.occlusion_hidden > MAX_HIDDEN:
            raise ConfigError(f"SceneConfig.occlusion_hidden is {self.occlusion_hidden}; expected <= {MAX_HIDDEN}")


_STREET = SceneConfig()
SCENARIOS: dict[str, SceneConfig] = {
    # A mix: traffic both ways, parked cars, pedestrians, a few crossings, mild pan.
    "street": _STREET,
    # The camera waits at a crossing (so does the traffic); pairs of pedestrians cross from
    # opposite kerbs, their paths crossing mid-road; people pass each other on the sidewalks.
    "crossing": replace(_STREET, ego_speed=0.0, crossing_rate=0.35, crossing_pairs=True,
                        crossing_distance=(9.0, 22.0), people=10.0, cars=0.0, pan_deg=1.0),
    # 30+ pedestrians in view at once; the camera creeps.
    "crowd": replace(_STREET, ego_speed=1.5, people=45.0, count_range=45.0, crossing_rate=0.25,
                     crossing_distance=(8.0, 20.0), cars=4.0, parked_cars=2.0, pan_deg=2.0),
    # Objects move by more than half their size per frame at 10 fps: runners crossing
    # close to a slow camera and fast traffic.
    "fast": replace(_STREET, lanes_each_way=2, ego_speed=2.0, object_speed=4.0, crossing_rate=2.5,
                    crossing_distance=(8.0, 16.0), people=0.0, cars=3.0, parked_cars=0.0,
                    pan_deg=6.0, pan_period=6.0),
    # A pedestrian is fully hidden behind a hedge for about 1 s, then reappears.
    "occlusion": replace(_STREET, ego_speed=0.0, occlusion_events=True, cars=0.0, people=4.0,
                         crossing_rate=0.0, pan_deg=0.0, shake_deg=0.0),
    # Strong camera pan and zoom.
    "pan_zoom": replace(_STREET, pan_deg=25.0, pan_period=7.0, zoom=2.0, zoom_period=5.0),
    # The street world sampled at 3 fps: larger motion per frame.
    "low_fps": replace(_STREET, fps=3.0),
}


def resolve_scenario(scenario: str | SceneConfig) -> tuple[str, SceneConfig]:
    """A preset name or a `SceneConfig` → (name, config); custom configs are named "custom"."""
    if isinstance(scenario, SceneConfig):
        names = [n for n, c in SCENARIOS.items() if c == scenario]
        return (names[0] if names else "custom"), scenario
    if isinstance(scenario, str) and scenario in SCENARIOS:
        return scenario, SCENARIOS[scenario]
    raise ConfigError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
