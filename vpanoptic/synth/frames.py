"""Frames of the synthetic world: `generate()` and the checks and label rules it applies."""


from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import ConfigError
from .render import Renderer
from .world import SceneConfig, World, resolve_scenario

__all__ = ["KITTI_MIN_HEIGHT", "SynthFrame", "check_params", "crowd_small_instances", "default_min_height", "generate"]

MIN_SIZE = 64              # smallest width / height (px)
# KITTI's annotation and evaluation leave out objects shorter than 25 px in its 375-px-high
# frames (they are "DontCare" there and crowd in KITTI-STEP); the synthetic ground truth does
# the same at any resolution: a thing whose visible box is lower than this fraction of the
# frame height is crowd (instance 0 of its class) in that frame.
KITTI_MIN_HEIGHT = 25 / 375


@dataclass(frozen=True)
class SynthFrame:
    """One generated frame.

    Attributes:
        index: 0-based frame number; time: seconds, ``index / fps``.
        image: ``(H, W, 3) uint8`` RGB.
        semantic: ``(H, W) int32`` KITTI-STEP (Cityscapes train id) class of every pixel.
        instance: ``(H, W) int32``, 0 on stuff; on things (person, car) a 1-based id that is
            unique in the sequence and stable for the object's whole life, or 0 (crowd) in
            the frames where the object is too small to annotate (`min_instance_height`).
    """

    index: int
    time: float
    image: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray

    def __post_init__(self):
        h, w = self.semantic.shape
        if self.image.shape != (h, w, 3) or self.image.dtype != np.uint8:
            raise ValueError(f"SynthFrame.image is {self.image.shape} {self.image.dtype}; "
                             f"expected ({h}, {w}, 3) uint8")
        if self.instance.shape != (h, w) or self.semantic.dtype != np.int32 or self.instance.dtype != np.int32:
            raise ValueError("SynthFrame.semantic and .instance must be (H, W) int32 of the image size")


def check_params(seed: int, frames: int, size: tuple[int, int], fps: float) -> tuple[int, int]:
    """Validate generation parameters; returns (width, height). Raises `ConfigError` (a ValueError)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed is {seed!r}; expected an integer")
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size is {size!r}; expected (width, height)") from None
    if (width, height) != tuple(size) or width < MIN_SIZE or height < MIN_SIZE:
        raise ConfigError(f"size is {tuple(size)}; expected integers (width, height) >= {MIN_SIZE}")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ConfigError(f"frames is {frames!r}; expected an integer >= 1")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise ConfigError(f"fps is {fps!r}; expected a number > 0")
    return width, height


def generate(seed: int, frames: int, size: tuple[int, int] = (640, 360), fps: float | None = None,
             scenario: str | SceneConfig = "street",
             min_instance_height: float | None = None) -> Iterator[SynthFrame]:
    """Frames 0..frames-1 of the world of `seed`, sampled at times ``index / fps``.

    Args:
        seed: any integer; the same seed and parameters give identical frames.
        frames: number of frames (>= 1).
        size: (width, height) in pixels, each >= 64.
        fps: frame rate; None takes the scenario's (`SceneConfig.fps`: 10, 3 for "low_fps").
        scenario: a name in `SCENARIOS` or a `SceneConfig`.
        min_instance_height: things whose visible box is lower than this many pixels are
            annotated as crowd (instance 0) in that frame; None = KITTI's rule
            (`KITTI_MIN_HEIGHT` of the frame height, 24 px at 360), 0 = every object is an instance.
    Parameters are validated before the first frame is made (`ConfigError`, a ValueError).
    """
    _, config = resolve_scenario(scenario)
    fps = config.fps if fps is None else fps
    width, height = check_params(seed, frames, size, fps)
    min_h = default_min_height(height) if min_instance_height is None else min_instance_height
    if isinstance(min_h, bool) or not isinstance(min_h, numbers.Real) or not 0 <= min_h <= height:
        raise ConfigError(f"min_instance_height is {min_instance_height!r}; expected 0 <= x <= {height} (pixels)")
    return _frames(int(seed), int(frames), width, height, float(fps), config, float(min_h))


def default_min_height(height: int) -> int:
    """Pixels below which a thing is crowd in a frame `height` pixels high (KITTI's rule)."""
    return round(KITTI_MIN_HEIGHT * height)


def crowd_small_instances(instance: np.ndarray, min_height: float) -> np.ndarray:
    """``instance`` with every id whose pixels span fewer than `min_height` rows set to 0 (crowd).

    Args:
        instance: ``(H, W) int32`` instance ids (0 = stuff or crowd).
    Returns:
        a new ``(H, W) int32`` array (the input when nothing changes).
    """
    if min_height <= 0 or not instance.any():
        return instance
    boxes = ndimage.find_objects(instance)  # [max id] (rows, columns) slices, None for absent ids
    small = [i for i, box in enumerate(boxes, start=1) if box is not None and box[0].stop - box[0].start < min_height]
    if not small:
        return instance
    out = instance.copy()
    out[np.isin(out, small)] = 0
    return out


def _frames(seed: int, frames: int, width: int, height: int, fps: float, config: SceneConfig,
            min_height: float) -> Iterator[SynthFrame]:
    world = World(seed, config)
    renderer = Renderer(seed, world.kerbs, config.lanes_each_way, width, height)
    for index in range(frames):
        t = index / fps
        camera = world.camera(t, width, height)
        image, semantic, instance = renderer.render(camera, world.statics(t), world.things(t), t)
        yield SynthFrame(index, t, image, semantic, crowd_small_instances(instance, min_height))
