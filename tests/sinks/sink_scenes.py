"""Synthetic panoptic frames for the sink tests (KITTI-STEP labels, tiny sizes).

Imported by name (`from sink_scenes import scene`): pytest puts this folder on sys.path.
"""

from __future__ import annotations

import numpy as np

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.types import Frame, PanopticFrame

SKY, ROAD, BUILDING, PERSON, CAR = 10, 0, 2, 11, 13


def scene(
    index: int = 0,
    time: float | None = None,
    *,
    height: int = 48,
    width: int = 64,
    shift: int = 0,
    car_track: int = 7,
    person_track: int = 12,
) -> PanopticFrame:
    """A frame with sky, building, road, a tracked car and person, an untracked car and void.

    Things move right by `shift` pixels; track id 0 leaves that thing untracked.
    """
    sem = np.full((height, width), ROAD, np.int32)
    sem[: height // 3] = SKY
    sem[height // 3 : height // 2] = BUILDING
    inst = np.zeros((height, width), np.int32)
    h3 = height // 3
    sem[h3 : h3 + 10, 4 + shift : 20 + shift] = CAR
    inst[h3 : h3 + 10, 4 + shift : 20 + shift] = car_track
    sem[5:25, 30 + shift : 36 + shift] = PERSON
    inst[5:25, 30 + shift : 36 + shift] = person_track
    sem[-8:-2, -12:-4] = CAR  # untracked (instance 0) car
    sem[-2:, :5] = KITTI_STEP.void_id
    # A smooth image (compresses well, so decoded video can be compared with the overlay).
    yy, xx = np.mgrid[0:height, 0:width]
    ramps = [xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), np.full_like(xx, 40 * (index % 4))]
    image = np.stack(ramps, -1)
    image = image.astype(np.uint8)
    t = index / 30 if time is None else time
    frame = Frame(index=index, pts=index * 3000, time=t, capture_time=0.0, image=image)
    pf = PanopticFrame.from_labels(frame, sem, inst, KITTI_STEP)
    pf.scores = np.linspace(0.5, 1.0, len(pf)).round(3).astype(np.float32)
    return pf
