"""Panoptic Tracking Quality (PTQ) and soft PTQ (sPTQ).

Source: Hurtado, Mohan, Burgard, Valada, "MOPT: Multi-Object Panoptic Tracking", CVPR
Workshops 2020 (arXiv:2004.08189), and its evaluation script
robot-learning-freiburg/Panoptic-Tracking ``evaluation/evaluate.py``. Per class c::

    PTQ_c  = (sum_{(g, p) in TP_c} IoU(g, p) - |IDS_c|)            / (|TP_c| + |FP_c|/2 + |FN_c|/2)
    sPTQ_c = (sum_{(g, p) in TP_c} IoU(g, p) - sum_{s in IDS_c} IoU_s) / (|TP_c| + |FP_c|/2 + |FN_c|/2)

i.e. PQ with the identity switches of the class subtracted from the numerator (sPTQ
subtracts the IoU of each switching match instead of 1). Stuff classes have no IDS, so their
PTQ equals their PQ.

Matching per frame uses deeplab2's PQ rules (`match_deeplab2`): IoU > 0.5 within a class,
ground-truth void left out of the union, unmatched predictions mostly on void not counted as
FP, the ignored class left out — the same rules as the MOPT script, which also has no crowd
rule. Identity switches follow the MOTS / KITTI convention used by the MOPT script: every
ground-truth thing track (a thing label with instance > 0, within one sequence) remembers the
predicted label it was last matched to; a TP whose predicted label differs from that
remembered one is an IDS, charged to the class of the ground truth in the current frame, and
its IoU is the soft penalty. Frames where the track is unmatched do not reset the memory.
A predicted identity is the full predicted panoptic label (class and instance).

Classes are averaged over those with TP + FP + FN > 0 (``average="present"``, as PQ here).
The MOPT script averages over all classes (``"all"``: absent classes count as 0); the
nuScenes panoptic-tracking evaluator over classes with at least one ground-truth segment
(``"with_gt"``: TP + FN > 0) and counts IDS between consecutive frames only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .common import LabelsLike, PairTable, pq_summary
from .pq import DEFAULT_OFFSET, PanopticQuality

__all__ = ["PanopticTrackingQuality"]

_AVERAGES = ("present", "all", "with_gt")


class PanopticTrackingQuality:
    """PTQ / sPTQ accumulator over frames of one or more sequences.

    Example::

        ptq = PanopticTrackingQuality(num_classes=19, things_list=(11, 13))
        for seq_id, frames in enumerate(sequences):
            for gt, pred in frames:
                ptq.update(gt, pred, sequence_id=seq_id)
        ptq.result()["PTQ"]

    Args:
        num_classes, ignore_label, label_divisor, offset: as `PanopticQuality`.
        things_list: thing class ids (the tracked ones; only they have IDS).
        average: which classes the means run over: "present" (TP + FP + FN > 0), "all", or
            "with_gt" (TP + FN > 0).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        things_list: Sequence[int],
        ignore_label: int = 255,
        label_divisor: int = 1000,
        offset: int = DEFAULT_OFFSET,
        average: str = "present",
    ):
        if average not in _AVERAGES:
            raise ValueError(f"average is {average!r}; expected one of {_AVERAGES}")
        self.average = average
        self._pq = PanopticQuality(
            num_classes=num_classes, ignore_label=ignore_label, label_divisor=label_divisor,
            offset=offset, things_list=things_list,
        )
        self._is_thing = np.isin(np.arange(num_classes), list(things_list))
        self.reset()

    def reset(self) -> None:
        self._pq.reset()
        n = self._pq.num_classes
        self.ids = np.zeros(n)
        self.soft_ids = np.zeros(n)
        self._last: dict[tuple[Hashable, int], int] = {}  # (sequence, gt label) -> predicted label

    def update(self, gt: LabelsLike, pred: LabelsLike, sequence_id: Hashable = 0) -> None:
        """Add one frame of sequence `sequence_id` (panoptic maps or (semantic, instance))."""
        self.update_table(self._pq.frame_table(gt, pred), sequence_id)

    def update_table(self, table: PairTable, sequence_id: Hashable = 0) -> None:
        """Add one frame given as `PanopticQuality.frame_table` of the same settings."""
        # Step 1: PQ matching of the frame.
        match = self._pq.match(table)
        self._pq.accumulate(match)
        self._pq.num_frames += 1
        # Step 2: identity switches of matched thing tracks (loop over matches, not pixels).
        div = self._pq.label_divisor
        tracked = self._is_thing[match.tp_category] & (match.tp_gt % div > 0)
        for g, p, iou, c in zip(
            match.tp_gt[tracked].tolist(), match.tp_pred[tracked].tolist(),
            match.tp_iou[tracked].tolist(), match.tp_category[tracked].tolist(),
        ):
            key = (sequence_id, g)
            last = self._last.get(key)
            if last is not None and last != p:
                self.ids[c] += 1
                self.soft_ids[c] += iou
            self._last[key] = p

    def result(self) -> dict:
        """PTQ, sPTQ and the underlying PQ.

        Returns:
            ``PTQ``, ``sPTQ``, ``PQ``, ``IDS`` (total) and their ``_things`` / ``_stuff``
            means; ``per_class`` maps class id to ``{"PTQ", "sPTQ", "PQ", "IDS", "sIDS",
            "TP", "FP", "FN", "IoU"}``.
        """
        pq = self._pq
        ids = np.arange(pq.num_classes)
        common: dict[str, Any] = dict(iou=pq.iou, tp=pq.tp, fp=pq.fp, fn=pq.fn, class_ids=ids, is_thing=self._is_thing)
        hard = pq_summary(ids_penalty=self.ids, **common)
        soft = pq_summary(ids_penalty=self.soft_ids, **common)
        plain = pq_summary(**common)
        if self.average == "present":
            members = (pq.tp + pq.fp + pq.fn) > 0
        elif self.average == "with_gt":
            members = (pq.tp + pq.fn) > 0
        else:
            members = np.ones(pq.num_classes, bool)
        members &= ids != pq.ignore_label

        def mean(summary: dict, key: str, subset: np.ndarray) -> float:
            sel = members & subset
            vals = [summary["per_class"][int(c)][key] for c in ids[sel]]
            return float(np.mean(vals)) if vals else float("nan")

        out: dict = {"IDS": int(self.ids.sum())}
        for suffix, subset in (("", np.ones(pq.num_classes, bool)), ("_things", self._is_thing),
                               ("_stuff", ~self._is_thing)):
            out["PTQ" + suffix] = mean(hard, "PQ", subset)
            out["sPTQ" + suffix] = mean(soft, "PQ", subset)
            out["PQ" + suffix] = mean(plain, "PQ", subset)
        out["per_class"] = {
            int(c): {
                "PTQ": hard["per_class"][int(c)]["PQ"],
                "sPTQ": soft["per_class"][int(c)]["PQ"],
                "PQ": plain["per_class"][int(c)]["PQ"],
                "IDS": int(self.ids[c]),
                "sIDS": float(self.soft_ids[c]),
                "TP": plain["per_class"][int(c)]["TP"],
                "FP": plain["per_class"][int(c)]["FP"],
                "FN": plain["per_class"][int(c)]["FN"],
                "IoU": plain["per_class"][int(c)]["IoU"],
            }
            for c in ids
        }
        return out
