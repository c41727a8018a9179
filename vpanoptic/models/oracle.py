"""The `oracle` model: ground truth of a synthetic sequence, optionally degraded.

It reads KITTI-STEP PNGs (``gt/000000.png`` ... as written by `vpanoptic synth`) for the
index of each frame and returns them as panoptic predictions. Degradations imitate what
a real model does wrong, reproducibly from a seed, so that trackers can be compared on
known ground truth:

- ``miss_rate``: probability that a thing is not detected (its pixels become void);
- ``boundary_noise``: thing masks are eroded or dilated by up to this many pixels;
- ``false_positives``: mean number of spurious thing segments per frame (Poisson);
- ``class_flip_rate``: probability that a thing gets another thing class;
- ``scramble_ids``: segment ids are shuffled per frame (a real model has no stable ids);
- ``keep_ids``: report the true instance ids as track ids (an oracle *tracker*).

Degradation depends only on (seed, frame index), so results do not change with batching
or frame drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..datasets import KITTI_STEP
from ..errors import ModelError
from ..io.formats import read_kitti_step
from ..types import Frame, PanopticFrame
from .base import PanopticModel
from .entry import ModelEntry

# Scores given to degraded outputs: real detections and false positives draw from these ranges.
TRUE_SCORE_RANGE = (0.5, 1.0)
FALSE_SCORE_RANGE = (0.05, 0.5)
# Spurious segments: ellipse half-axes as a fraction of the frame's shorter side.
FALSE_POSITIVE_SIZE = (0.03, 0.12)


class OracleModel(PanopticModel):
    def __init__(
        self,
        *,
        device: torch.device | str = "cpu",
        input: str | None = None,
        gt: str | None = None,
        miss_rate: float = 0.0,
        boundary_noise: int = 0,
        false_positives: float = 0.0,
        class_flip_rate: float = 0.0,
        scramble_ids: bool = True,
        keep_ids: bool = False,
        seed: int = 0,
    ):
        self.device = torch.device(device)
        self.meta = KITTI_STEP
        for name, rate in (("miss_rate", miss_rate), ("class_flip_rate", class_flip_rate)):
            if not 0 <= rate <= 1:
                raise ModelError(f"oracle option {name} is {rate}; expected 0 <= x <= 1")
        if boundary_noise < 0 or false_positives < 0:
            raise ModelError("oracle options boundary_noise and false_positives must be >= 0")
        if gt is None:
            if input is None:
                raise ModelError("model 'oracle' needs ground truth: pass --set model.options.gt=DIR")
            gt = str(Path(input).parent / "gt")
        self.gt_dir = Path(gt)
        if not self.gt_dir.is_dir():
            raise ModelError(
                f"model 'oracle' found no ground truth directory {self.gt_dir} "
                "(make a clip with `vpanoptic synth`, or pass --set model.options.gt=DIR)"
            )
        self.miss_rate = float(miss_rate)
        self.boundary_noise = int(boundary_noise)
        self.false_positives = float(false_positives)
        self.class_flip_rate = float(class_flip_rate)
        self.scramble_ids = bool(scramble_ids)
        self.keep_ids = bool(keep_ids)
        self.seed = int(seed)

    def predict(self, frames: Sequence[Frame]) -> list[PanopticFrame]:
        return [self._predict_one(f) for f in frames]

    def _predict_one(self, frame: Frame) -> PanopticFrame:
        path = self.gt_dir / f"{frame.index:06d}.png"
        if not path.is_file():
            raise ModelError(f"model 'oracle' has no ground truth for frame {frame.index}: {path} is missing")
        semantic, instance = read_kitti_step(path)
        if semantic.shape != frame.image.shape[:2]:
            raise ModelError(
                f"{path}: size {semantic.shape[::-1]} differs from the video frame {frame.image.shape[1::-1]}"
            )
        rng = np.random.default_rng([self.seed, frame.index])
        semantic, instance = self._degrade(semantic, instance, rng)
        pf = PanopticFrame.from_labels(frame, semantic, instance, self.meta)
        n = len(pf)
        scores = np.ones(n, np.float32)
        if self._degrading:
            scores = rng.uniform(*TRUE_SCORE_RANGE, size=n).astype(np.float32)
            scores[pf.track_ids >= FALSE_ID_BASE] = rng.uniform(
                *FALSE_SCORE_RANGE, size=int((pf.track_ids >= FALSE_ID_BASE).sum())
            )
        pf.scores = scores
        if not self.keep_ids:
            pf.track_ids = np.full(n, -1, np.int32)
        if self.scramble_ids and n:
            perm = rng.permutation(n).astype(np.int32) + 1  # new id of segment i+1
            lut = np.zeros(n + 1, np.int32)
            lut[pf.segment_ids] = perm
            pf.id_map = lut[pf.id_map]
            pf.segment_ids = perm
            order = np.argsort(perm)
            pf = pf[order]
        pf.id_map = torch.from_numpy(np.ascontiguousarray(pf.id_map)).to(self.device)
        return pf

    @property
    def _degrading(self) -> bool:
        return bool(self.miss_rate or self.boundary_noise or self.false_positives or self.class_flip_rate)

    def _degrade(self, semantic: np.ndarray, instance: np.ndarray, rng: np.random.Generator):
        if not self._degrading:
            return semantic, instance
        semantic = semantic.copy()
        instance = instance.copy()
        void = self.meta.void_id
        thing_ids = np.array(self.meta.thing_ids)
        things = np.isin(semantic, thing_ids) & (instance > 0)
        ids = np.unique(instance[things])
        for inst_id in ids:
            mask = things & (instance == inst_id)
            if rng.random() < self.miss_rate:
                semantic[mask] = void
                instance[mask] = 0
                continue
            if self.class_flip_rate and rng.random() < self.class_flip_rate:
                cat = semantic[mask][0]
                others = thing_ids[thing_ids != cat]
                semantic[mask] = rng.choice(others)
            if self.boundary_noise:
                radius = int(rng.integers(1, self.boundary_noise + 1))
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
                m8 = mask.astype(np.uint8)
                if rng.random() < 0.5:
                    lost = mask & ~cv2.erode(m8, kernel).astype(bool)
                    semantic[lost] = void
                    instance[lost] = 0
                else:
                    grown = cv2.dilate(m8, kernel).astype(bool) & ~mask & ~things
                    semantic[grown] = semantic[mask][0]
                    instance[grown] = inst_id
        count = rng.poisson(self.false_positives) if self.false_positives else 0
        h, w = semantic.shape
        for k in range(count):
            cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
            ay, ax = (rng.uniform(*FALSE_POSITIVE_SIZE, size=2) * min(h, w)).astype(int) + 1
            m8 = np.zeros((h, w), np.uint8)
            cv2.ellipse(m8, (cx, cy), (int(ax), int(ay)), 0, 0, 360, 1, -1)
            region = m8.astype(bool) & ~things
            semantic[region] = rng.choice(thing_ids)
            instance[region] = FALSE_ID_BASE + k
        return semantic, instance


# Instance ids of false positives: above any id a synthetic clip uses.
FALSE_ID_BASE = 60000


ENTRY = ModelEntry(
    name="oracle",
    dataset="kitti-step",
    description="ground truth of a synthetic clip (gt/ next to the video), optionally degraded; "
    "for tests and tracker experiments",
    factory=OracleModel,
)
