"""Is the footage inside the synthetic street world? A check on StreetNet's own outputs.

StreetNet knows only the synthetic world it was trained on; on real footage it still labels
every pixel, confidently wrong. Its semantic softmax gives it away: on synthetic clips the
mean normalised entropy of the per-pixel class distribution stays low, on real footage it
is several times higher (docs/models.md, "When the footage is outside the synthetic world",
has the measured values). So:

1. `semantic_entropy`: per image, the mean over the output grid of the normalised entropy
   ``H(p) / log K`` of the softmax of the semantic logits, in [0, 1]; reductions on the
   logits' device, no copy to the host.
2. `DomainReference`: that statistic's threshold, calibrated on synthetic clips
   (`calibrate`, seeds never used in training nor in the held-out checks) and stored in the
   checkpoint's metadata under ``"domain"``, so it travels with the weights it describes and
   is covered by the same checksum.
3. `DomainCheck`: averages the statistic over the first `frames` frames a model sees, decides
   once (one host sync), and when the mean is above the threshold appends one warning
   naming the models for real footage to the model's `warnings` and logs it once on the
   ``vpanoptic`` logger. After the decision it costs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ...errors import ModelError

__all__ = ["CALIBRATION_CLIPS", "DomainCheck", "DomainReference", "STATISTIC", "calibrate", "clip_statistic",
           "outside_message", "semantic_entropy"]

STATISTIC = "semantic_entropy"
CHECK_FRAMES = 5        # frames averaged before the one decision (the statistic varies little per frame)
MARGIN = 1.5            # threshold = MARGIN x the highest synthetic calibration clip (room for unseen variants)
# Calibration clips (world seed, scenario, (width, height)): three per scenario, three frame
# sizes. Seeds 1000..1020 are below the training range (`data.EVAL_SEED_RANGE`) and are used
# nowhere else; the held-out checks (tests, benchmarks/street_domain.py) use other seeds.
_SCENARIOS = ("street", "crossing", "crowd", "fast", "occlusion", "pan_zoom", "low_fps")
_SIZES = ((640, 360), (320, 180), (1280, 720))
CALIBRATION_CLIPS: tuple[tuple[int, str, tuple[int, int]], ...] = tuple(
    (1000 + i, _SCENARIOS[i % len(_SCENARIOS)], _SIZES[i // len(_SCENARIOS)]) for i in range(3 * len(_SCENARIOS)))

REAL_FOOTAGE_MODELS = ("mask2former-swin-t-cityscapes", "mask2former-swin-t-coco", "maskrcnn-v2-coco")


def semantic_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean normalised entropy of the per-pixel class distribution of each image.

    Args:
        logits: ``(B, K, h, w)`` float semantic logits (any float dtype, any device), K >= 2.
    Returns:
        ``(B,)`` float32 on the logits' device, each in [0, 1]: the mean over the ``h x w`` grid
        of ``-sum_k p_k log p_k / log K`` with ``p = softmax(logits)`` (0: one class certain
        everywhere, 1: uniform everywhere).
    """
    if logits.ndim != 4 or logits.shape[1] < 2:
        raise ValueError(f"semantic logits are {tuple(logits.shape)}; expected (B, K >= 2, h, w)")
    logp = F.log_softmax(logits.float(), dim=1)                    # [B, K, h, w]
    entropy = -(logp.exp() * logp).sum(1) / math.log(logits.shape[1])  # [B, h, w]
    return entropy.mean((1, 2)).clamp(0.0, 1.0)


def outside_message(value: float, reference: DomainReference, model: str = "vpanoptic-street") -> str:
    """The one-line warning: what was measured, why it matters, and the route to a model for real footage."""
    first, *others = REAL_FOOTAGE_MODELS
    return (f"{model} knows only the synthetic street world and this footage looks outside it "
            f"(semantic entropy {value:.3f} > {reference.threshold:.3f} over the first {reference.frames} frames), "
            f"so its segments are unreliable; for real footage use a model from `vpanoptic models` "
            f"(e.g. --model {first}, {', '.join(others)}) with its weights from `vpanoptic models fetch NAME` "
            f"or --weights FOLDER")


@dataclass(frozen=True)
class DomainReference:
    """The calibrated decision rule stored in a checkpoint's metadata (``meta["domain"]``).

    statistic: name of the statistic (`STATISTIC`).
    frames: frames averaged before deciding, >= 1.
    threshold: the footage is outside the synthetic world when the mean statistic is above it, in (0, 1).
    calibration: how the threshold was set (clips and their values, margin); informative only.
    """

    threshold: float
    frames: int = CHECK_FRAMES
    statistic: str = STATISTIC
    calibration: dict | None = None

    def __post_init__(self):
        if self.statistic != STATISTIC:
            raise ValueError(f"domain statistic is {self.statistic!r}; expected {STATISTIC!r}")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"domain frames is {self.frames!r}; expected an integer >= 1")
        if not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise ValueError(f"domain threshold is {self.threshold!r}; expected 0 < x < 1")

    def outside(self, value: float) -> bool:
        """The decision: is a mean statistic of `value` outside the synthetic world?"""
        return value > self.threshold

    def to_meta(self) -> dict:
        """Plain values for the checkpoint (loadable with ``weights_only=True``)."""
        return {"statistic": self.statistic, "frames": self.frames, "threshold": float(self.threshold),
                "calibration": self.calibration or {}}

    @classmethod
    def from_meta(cls, meta: dict) -> DomainReference | None:
        """The reference in checkpoint metadata, or None when it has none (e.g. an older checkpoint).

        Raises `ModelError` for a malformed ``"domain"`` entry.
        """
        domain = meta.get("domain")
        if domain is None:
            return None
        try:
            return cls(threshold=float(domain["threshold"]), frames=int(domain.get("frames", CHECK_FRAMES)),
                       statistic=str(domain.get("statistic", STATISTIC)), calibration=domain.get("calibration"))
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelError(f"checkpoint metadata 'domain' is malformed: {exc}") from None


class DomainCheck:
    """Watches a model's first frames and warns once when they look outside the synthetic world.

    Args:
        reference: the calibrated rule (`DomainReference.from_meta` of the checkpoint).
        warnings: the model's `warnings` list; the message is appended to it once.
        model: the model's name, for the message.
    """

    def __init__(self, reference: DomainReference, warnings: list[str], *, model: str = "vpanoptic-street"):
        self.reference = reference
        self.warnings = warnings
        self.model = model
        self.value: float | None = None   # the mean statistic, once decided
        self._values: list[torch.Tensor] = []
        self._seen = 0

    @property
    def decided(self) -> bool:
        return self.value is not None

    def observe(self, logits: torch.Tensor) -> None:
        """Feed the semantic logits ``(B, K, h, w)`` of a batch; decides once `frames` images were seen."""
        if self.value is not None:
            return
        self._values.append(semantic_entropy(logits))  # [B], stays on the device
        self._seen += logits.shape[0]
        if self._seen >= self.reference.frames:
            values = torch.cat(self._values)[: self.reference.frames]
            self._values = []
            self.decide(float(values.mean()))      # the one host sync

    def decide(self, value: float) -> bool:
        """Record the mean statistic `value`; warn (once) when it is outside. Returns the decision."""
        self.value = value
        if not self.reference.outside(value):
            return False
        message = outside_message(value, self.reference, self.model)
        if message not in self.warnings:
            self.warnings.append(message)
            logging.getLogger("vpanoptic").warning(message)
        return True


def clip_statistic(logits_of: Callable[[Sequence[np.ndarray]], torch.Tensor], images: Iterable[np.ndarray],
                   frames: int = CHECK_FRAMES) -> float:
    """The statistic a `DomainCheck` decides on, for the first `frames` of `images`.

    Args:
        logits_of: ``[(H, W, 3) uint8]`` → ``(B, K, h, w)`` semantic logits (e.g. `Predictor.semantic_logits`).
        images: RGB frames in order.
    """
    values = []
    for i, image in enumerate(images):
        if i >= frames:
            break
        values.append(float(semantic_entropy(logits_of([image]))[0]))
    if not values:
        raise ValueError("no frames to measure")
    return float(np.mean(values))


def calibrate(logits_of: Callable[[Sequence[np.ndarray]], torch.Tensor],
              clips: Sequence[tuple[int, str, tuple[int, int]]] = CALIBRATION_CLIPS, *,
              frames: int = CHECK_FRAMES, margin: float = MARGIN,
              render: Callable[[int, str, tuple[int, int], int], Iterable[np.ndarray]] | None = None
              ) -> DomainReference:
    """Measure the statistic on synthetic clips and set the threshold to `margin` x their maximum.

    Args:
        logits_of: as in `clip_statistic`.
        clips: ``(world seed, scenario, (width, height))`` of each calibration clip.
        render: ``(seed, scenario, size, frames)`` → RGB frames; default: the synthetic world's
            rendered frames (`vpanoptic.synth.generate`). The benchmark passes H.264-decoded ones.
    """
    if render is None:
        from ...synth import generate

        def render(seed: int, scenario: str, size: tuple[int, int], n: int) -> Iterable[np.ndarray]:
            return (f.image for f in generate(seed, n, size, scenario=scenario))

    rows: list[list[Any]] = []
    for seed, scenario, size in clips:
        value = clip_statistic(logits_of, render(seed, scenario, (int(size[0]), int(size[1])), frames), frames)
        rows.append([int(seed), str(scenario), [int(size[0]), int(size[1])], round(value, 5)])
    values = [r[-1] for r in rows]
    highest = max(values)
    return DomainReference(
        threshold=round(margin * highest, 4), frames=frames,
        calibration={"margin": margin, "max": highest, "mean": round(float(np.mean(values)), 5), "clips": rows})
