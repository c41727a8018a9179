"""`Evaluator`: several metrics over frames of several sequences, fed one frame at a time.

It validates each frame once (shape, dtype, known class ids), counts its pixel pairs once
for the metrics that share deeplab2 settings (PQ, VPQ, PTQ) and dispatches the frame to every
requested accumulator. `evaluate_sequences` (in-memory lists) and ``vpanoptic eval`` (lazy
benchmark folders) both drive it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..types import DatasetMeta
from .common import compact, to_panoptic
from .mots import MOTSMetrics
from .pq import COCOPanopticQuality, PanopticQuality
from .ptq import PanopticTrackingQuality
from .stq import STQuality
from .vpq import VideoPanopticQuality, VPSNetVideoPanopticQuality

__all__ = ["METRICS", "Evaluator", "InstanceRelabeler"]

METRICS = ("stq", "pq", "pq_coco", "vpq", "vpq_vpsnet", "ptq", "mots")
"""Metric names: "pq" uses deeplab2 rules on STEP labels, "pq_coco" panopticapi rules on
COCO-panoptic ids with ``segments_info``; "vpq" is ViP-DeepLab's VPQ, "vpq_vpsnet" VPSNet's."""

MOTS_IGNORE_CLASS = 10  # KITTI-MOTS / MOTSChallenge ignore class (id 10000)


def check_panoptic(frame, meta: DatasetMeta, what: str) -> np.ndarray:
    """Validated ``(H, W) int64`` panoptic map of a ``(semantic, instance)`` pair."""
    if not isinstance(frame, (tuple, list)) or len(frame) != 2:
        raise ValueError(f"{what}: expected a (semantic, instance) pair")
    pan = to_panoptic(tuple(frame), label_divisor=meta.label_divisor, what=what)
    sem = np.asarray(frame[0]).astype(np.int64, copy=False)
    present = np.flatnonzero(np.bincount(sem.reshape(-1))) if sem.size else np.zeros(0, np.int64)
    meta.check_ids(present[present != meta.void_id])
    return pan


def step_to_mots(pan: np.ndarray, meta: DatasetMeta, is_thing: np.ndarray, ground_truth: bool) -> np.ndarray:
    """STEP panoptic map → MOTS id map: things with instance > 0 are objects; in the ground
    truth, crowd (thing instance 0) and void pixels form the ignore region."""
    div = meta.label_divisor
    sem = pan // div
    inst = pan % div
    thing = is_thing[np.minimum(sem, is_thing.size - 1)]
    ids = np.where(thing & (inst > 0), pan, 0)
    if ground_truth:
        ignore = (sem == meta.void_id) | (thing & (inst == 0))
        ids = np.where(ignore, meta.void_id * div, ids)
    return ids


class InstanceRelabeler:
    """Per-sequence bijection of predicted ``(class, instance)`` ids onto small instance ids.

    Trackers never reuse ids, so a long or crowded sequence can carry track ids above the
    label divisor (1000 for KITTI-STEP). Every metric here is invariant to renaming predicted
    instances one-to-one within a sequence, so they are renumbered 1, 2, ... per class in order
    of first appearance (frame by frame; within a frame by old id); 0 stays 0. Use one
    relabeler per sequence.

    Args:
        label_divisor: the new ids must stay below it.
    """

    def __init__(self, label_divisor: int):
        self.label_divisor = int(label_divisor)
        self._map: dict[tuple[int, int], int] = {}
        self._next: dict[int, int] = {}

    def __call__(self, semantic: np.ndarray, instance: np.ndarray) -> np.ndarray:
        """``(H, W)`` semantic and instance ids → ``(H, W) int64`` renumbered instance ids."""
        instance = np.asarray(instance, np.int64)
        thing = instance > 0
        if not thing.any():
            return instance
        inst = instance[thing]  # only instance pixels are touched: [K]
        stride = int(inst.max()) + 1
        keys = np.asarray(semantic, np.int64)[thing] * stride + inst
        uniq, _, inverse = compact(keys)
        new = np.empty(uniq.size, np.int64)
        for i, (cls, old) in enumerate(zip((uniq // stride).tolist(), (uniq % stride).tolist())):
            key = (cls, old)
            got = self._map.get(key)
            if got is None:
                got = self._next.get(cls, 0) + 1
                if got >= self.label_divisor:
                    raise ValueError(
                        f"more than {self.label_divisor - 1} predicted instances of class {cls} in one sequence"
                    )
                self._next[cls] = got
                self._map[key] = got
            new[i] = got
        out = np.zeros(instance.shape, np.int64)
        out[thing] = new[inverse]
        return out


class Evaluator:
    """Accumulates the requested metrics over frames; `result()` gives numbers and details.

    Args:
        meta: class ids, things, ``label_divisor`` and ``void_id`` of the STEP labels.
        metrics: any of `METRICS`.
        vpq_window_sizes: frames per VPQ window (both variants).
        vpq_frame_stride: VPSNet names a window of n annotated frames by ``(n - 1) * stride``.
        mots_classes: None: "mots" scores the thing classes of STEP inputs (crowd and void
            as the ignore region). Given (KITTI-MOTS: ``(1, 2)``): "mots" scores these classes
            on native MOTS id maps (``gt_mots`` / ``pred_mots``) with ignore class 10.
    """

    def __init__(
        self,
        meta: DatasetMeta,
        metrics: Sequence[str] = ("stq", "pq", "vpq"),
        *,
        vpq_window_sizes: Sequence[int] = (1, 2, 3, 4),
        vpq_frame_stride: int = 5,
        mots_classes: Sequence[int] | None = None,
    ):
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; expected any of {list(METRICS)}")
        self.meta = meta
        self.metrics = tuple(dict.fromkeys(metrics))
        ids = [c.id for c in meta.categories]
        num_classes = max(ids) + 1
        things = list(meta.thing_ids)
        common: dict[str, Any] = dict(
            num_classes=num_classes, ignore_label=meta.void_id, label_divisor=meta.label_divisor
        )
        offset = max(256 ** 3, (max(num_classes, meta.void_id) + 1) * meta.label_divisor)
        self._is_thing = np.isin(np.arange(max(num_classes, meta.void_id) + 1), things)
        self._table = PanopticQuality(offset=offset, **common).frame_table
        self._mots_native = mots_classes is not None
        acc: dict = {}
        for name in self.metrics:
            if name == "stq":
                acc[name] = STQuality(things_list=things, offset=offset, **common)
            elif name == "pq":
                acc[name] = PanopticQuality(things_list=things, offset=offset, **common)
            elif name == "pq_coco":
                acc[name] = COCOPanopticQuality(
                    categories=[{"id": c.id, "isthing": c.isthing} for c in meta.categories]
                )
            elif name == "vpq":
                acc[name] = VideoPanopticQuality(
                    things_list=things, offset=offset, window_sizes=vpq_window_sizes, **common
                )
            elif name == "vpq_vpsnet":
                acc[name] = VPSNetVideoPanopticQuality(
                    things_list=things, window_sizes=vpq_window_sizes, frame_stride=vpq_frame_stride, **common
                )
            elif name == "ptq":
                acc[name] = PanopticTrackingQuality(things_list=things, offset=offset, **common)
            elif name == "mots" and mots_classes is not None:
                acc[name] = MOTSMetrics(class_ids=mots_classes, ignore_class=MOTS_IGNORE_CLASS, class_divisor=1000)
            elif name == "mots":
                acc[name] = MOTSMetrics(class_ids=things, ignore_class=meta.void_id, class_divisor=meta.label_divisor)
        self._acc = acc
        self.num_frames = 0

    def update(self, gt, pred, sequence_id: Hashable = 0, *, gt_coco=None, pred_coco=None,
               gt_mots=None, pred_mots=None) -> None:
        """Add one frame of `sequence_id`.

        Args:
            gt, pred: ``(semantic, instance)`` pairs of ``(H, W)`` integer maps (None when only
                MOTS maps are given).
            gt_coco, pred_coco: ``(ids (H, W), segments_info)`` for "pq_coco".
            gt_mots, pred_mots: native MOTS id maps for "mots" (class 10 = ignore).
        Raises:
            ValueError: sizes differ, unknown class ids, malformed maps (one line).
        """
        y_true = y_pred = None
        if gt is not None:
            y_true = check_panoptic(gt, self.meta, "ground truth")
            y_pred = check_panoptic(pred, self.meta, "prediction")
            if y_true.shape != y_pred.shape:
                raise ValueError(f"ground truth {y_true.shape} and prediction {y_pred.shape} sizes differ")
        table = None
        for name, metric in self._acc.items():
            if name == "mots":
                if self._mots_native:
                    if gt_mots is None or pred_mots is None:
                        raise ValueError("native MOTS scoring needs MOTS id maps on both sides")
                    metric.update(gt_mots, pred_mots, sequence_id)
                else:
                    if y_true is None or y_pred is None:
                        raise ValueError("MOTS scoring of panoptic inputs needs labels on both sides")
                    metric.update(step_to_mots(y_true, self.meta, self._is_thing, True),
                                  step_to_mots(y_pred, self.meta, self._is_thing, False), sequence_id)
                continue
            if name == "pq_coco":
                if gt_coco is None or pred_coco is None:
                    raise ValueError("pq_coco needs COCO-panoptic ids with segments_info on both sides")
                metric.update(gt_coco[0], gt_coco[1], pred_coco[0], pred_coco[1])
                continue
            if y_true is None or y_pred is None:
                raise ValueError(f"metric {name!r} needs panoptic labels; MOTS inputs only give 'mots'")
            if name in ("pq", "vpq", "ptq"):  # same deeplab2 settings: count pixels once
                table = self._table(y_true, y_pred) if table is None else table
                if name == "pq":
                    metric.update_table(table)
                else:
                    metric.update_table(table, sequence_id)
            else:
                metric.update(y_true, y_pred, sequence_id)
        self.num_frames += 1

    def metric(self, name: str):
        """The accumulator of metric `name` (e.g. ``"mots"``), for intermediate results."""
        try:
            return self._acc[name]
        except KeyError:
            raise KeyError(f"metric {name!r} was not requested; have {list(self._acc)}") from None

    def result(self) -> dict:
        """Top-level numbers — ``STQ``, ``AQ``, ``SQ`` (stq); ``PQ`` (pq or pq_coco); ``VPQ`` (vpq
        or vpq_vpsnet); ``PTQ``, ``sPTQ``; ``MOTSA``, ``sMOTSA``, ``MOTSP``, ``IDS`` — and each
        metric's full result dict under its name."""
        details = {name: metric.result() for name, metric in self._acc.items()}
        out: dict = {}
        if "stq" in details:
            out.update(STQ=details["stq"]["STQ"], AQ=details["stq"]["AQ"], SQ=details["stq"]["SQ"])
        if "pq" in details:
            out["PQ"] = details["pq"]["PQ"]
        if "pq_coco" in details:
            out["PQ" if "pq" not in details else "PQ_coco"] = details["pq_coco"]["PQ"]
        if "vpq" in details:
            out["VPQ"] = details["vpq"]["VPQ"]
        if "vpq_vpsnet" in details:
            out["VPQ" if "vpq" not in details else "VPQ_vpsnet"] = details["vpq_vpsnet"]["VPQ"]
        if "ptq" in details:
            out.update(PTQ=details["ptq"]["PTQ"], sPTQ=details["ptq"]["sPTQ"])
        if "mots" in details:
            a = details["mots"]["all"]
            out.update(MOTSA=a["MOTSA"], sMOTSA=a["sMOTSA"], MOTSP=a["MOTSP"], IDS=a["IDS"])
        out.update(details)
        return out
