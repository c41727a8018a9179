"""Procedural synthetic street world: dashcam-like video with exact panoptic labels.

`generate()` yields frames (RGB + KITTI-STEP semantic and instance labels) of a street seen
from a moving camera; `write_sequence()` stores them as an H.264 video, KITTI-STEP PNGs
and a ``meta.json``. The world is a pure function of the seed and a `SceneConfig`
(`SCENARIOS` holds named presets), sampled at any frame rate.
"""

from .frames import KITTI_MIN_HEIGHT, SynthFrame, check_params, crowd_small_instances, default_min_height, generate
from .world import GENERATOR_VERSION, SCENARIOS, SceneConfig
from .writer import SynthSequence, write_sequence

__all__ = ["GENERATOR_VERSION", "KITTI_MIN_HEIGHT", "SCENARIOS", "SceneConfig", "SynthFrame", "SynthSequence",
           "check_params", "crowd_small_instances", "default_min_height", "generate", "write_sequence"]
