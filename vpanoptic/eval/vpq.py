"""Video Panoptic Quality (VPQ) in its two published variants.

VPQ (Kim et al., "Video Panoptic Segmentation", CVPR 2020) is PQ computed on *tubes*: within
a window of k consecutive frames, a segment is the set of pixels of one id over the k
frames, and a ground-truth and a predicted tube match when their IoU over the window
exceeds 0.5. A prediction whose ids change inside the window loses the match. VPQ_k sums
TP / FP / FN / IoU over all windows of all sequences, computes PQ per class from these sums,
averages over classes, and VPQ is the mean of VPQ_k over the window sizes.

Both classes take STEP-style frames (``semantic * label_divisor + instance`` or
``(semantic, instance)`` pairs) one by one with a sequence id; windows slide by one frame
inside each sequence (a sequence of n frames gives ``n - k + 1`` windows of size k, none when
``n < k``). Only the last ``max(window_sizes)`` frames of each sequence are kept, as pixel-pair
tables: a window's statistics are the sum of its frames' tables, which is exactly PQ on the
frames "concatenated side by side".

`VideoPanopticQuality` — ViP-DeepLab / deeplab2 (``evaluation/video_panoptic_quality.py``,
Qiao et al., CVPR 2021): deeplab2 `PanopticQuality` rules on the concatenated window (every
panoptic label is a segment, no crowd rule, the ignored class is left out, ground-truth void
is ``ignore_label * label_divisor``), classes averaged over those with TP + FP + FN > 0.
deeplab2's trainer reports a single 2-frame window (``window_sizes=(2,)``); ViP-DeepLab's
``eval_dvpq.py`` scripts run window sizes ``{1, 2, 3, 4}`` (Cityscapes-DVPS, annotated
frames) or ``{1, 5, 10, 20}`` (SemKITTI-DVPS) and the paper reports their mean; the default
here is ``(1, 2, 3, 4)``. (The ViP-DeepLab scripts also waive FPs on "crowd" labels of the
ignored class; deeplab2 waives only void, as done here.)

`VPSNetVideoPanopticQuality` — VPSNet (mcahny/vps ``tools/eval_vpq.py``): panopticapi rules on
tubes. Ground truth thing pixels with instance 0 are crowd tubes (never matched, never FN,
and their overlap with a same-class prediction counts towards that prediction's ignored
part); void pixels are VOID; the union leaves out the prediction's VOID pixels; an unmatched
predicted tube is FP unless more than half of it is VOID + same-class crowd. On
Cityscapes-VPS every 5th frame is annotated (6 annotated frames per 30-frame clip); the
script evaluates windows of ``nframes ∈ {1, 2, 3, 4}`` consecutive *annotated* frames and
names them by their temporal span ``k = (nframes - 1) * 5 ∈ {0, 5, 10, 15}``; PQ per class is
averaged over all categories with TP + FP + FN > 0 (things / stuff split by ``isthing``), and
VPQ is the mean over the four k. Pass only annotated frames; `frame_stride` (5) only names
the spans. Tube areas are pixel counts; the script reads ground-truth areas from its JSON and
merges them with in-place ``+=`` on shared dicts, which inflates the area of a tube that
first appears after a window's first frame when ``nframes >= 3`` — that artefact is not
reproduced.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from .common import (
    LabelsLike,
    PairTable,
    check_label_settings,
    check_same_shape,
    match_segments,
    pair_table,
    pq_summary,
    to_panoptic,
)
from .pq import DEFAULT_OFFSET, PanopticQuality

__all__ = ["VideoPanopticQuality", "VPSNetVideoPanopticQuality"]


class _Windows:
    """Per-sequence ring buffers of frame tables; yields every window ending at a new frame."""

    def __init__(self, window_sizes: Sequence[int]):
        sizes = sorted({int(k) for k in window_sizes})
        if not sizes or sizes[0] < 1:
            raise ValueError(f"window_sizes is {tuple(window_sizes)}; expected sizes >= 1")
        self.sizes = sizes
        self.reset()

    def reset(self) -> None:
        self._buffers: dict[Hashable, deque] = {}

    def push(self, sequence_id: Hashable, table: PairTable) -> Iterator[tuple[int, PairTable]]:
        buf = self._buffers.get(sequence_id)
        if buf is None:
            buf = self._buffers[sequence_id] = deque(maxlen=self.sizes[-1])
        buf.append(table)
        frames = list(buf)
        for k in self.sizes:
            if k <= len(frames):
                yield k, PairTable.merge(frames[-k:])


def _average(per_window: dict, keys: Sequence[str]) -> dict:
    """Mean over the window sizes that produced at least one window (NaN if none did)."""
    out = {}
    for key in keys:
        values = [r[key] for r in per_window.values() if r["windows"] > 0]
        out["V" + key] = float(np.mean(values)) if values else float("nan")
    return out


class VideoPanopticQuality:
    """VPQ with ViP-DeepLab / deeplab2 rules (PQ on windows concatenated side by side).

    Example::

        vpq = VideoPanopticQuality(num_classes=19, things_list=(11, 13), window_sizes=(1, 2, 3, 4))
        for seq_id, frames in enumerate(sequences):
            for gt, pred in frames:
                vpq.update(gt, pred, sequence_id=seq_id)
        vpq.result()["VPQ"]

    Args:
        num_classes, ignore_label, label_divisor, offset, things_list: as `PanopticQuality`.
        window_sizes: numbers of consecutive frames per window; VPQ averages over them.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_label: int = 255,
        label_divisor: int = 1000,
        offset: int = DEFAULT_OFFSET,
        things_list: Sequence[int] | None = None,
        window_sizes: Sequence[int] = (1, 2, 3, 4),
    ):
        self._windows = _Windows(window_sizes)
        self.window_sizes = tuple(self._windows.sizes)
        kwargs: dict[str, Any] = dict(
            num_classes=num_classes, ignore_label=ignore_label, label_divisor=label_divisor,
            offset=offset, things_list=things_list,
        )
        self._pq = {k: PanopticQuality(**kwargs) for k in self.window_sizes}
        self._frame = PanopticQuality(**kwargs)  # validation and pair counting only

    def reset(self) -> None:
        self._windows.reset()
        for pq in self._pq.values():
            pq.reset()

    def update(self, gt: LabelsLike, pred: LabelsLike, sequence_id: Hashable = 0) -> None:
        """Add one frame of sequence `sequence_id` and score every window that ends on it."""
        self.update_table(self._frame.frame_table(gt, pred), sequence_id)

    def update_table(self, table: PairTable, sequence_id: Hashable = 0) -> None:
        """Add one frame given as `PanopticQuality.frame_table` of the same settings."""
        for k, window in self._windows.push(sequence_id, table):
            pq = self._pq[k]
            pq.accumulate(pq.match(window))
            pq.num_frames += 1  # counts windows

    def result(self) -> dict:
        """``{"VPQ", "VSQ", "VRQ", [VPQ_things / VPQ_stuff ...], "per_window": {k: PQ result}}``.

        ``per_window[k]`` is the `pq_summary` of all windows of k frames (with ``"windows"``,
        their number); the top-level values are means over the window sizes that produced
        at least one window (sequences shorter than k give none).
        """
        per_window = {}
        for k, pq in self._pq.items():
            per_window[k] = pq.result()
            per_window[k]["windows"] = pq.num_frames
        keys = ["PQ", "SQ", "RQ"]
        if self._frame.things_list is not None:
            keys += ["PQ_things", "SQ_things", "RQ_things", "PQ_stuff", "SQ_stuff", "RQ_stuff"]
        out = _average(per_window, keys)
        out["per_window"] = per_window
        return out


class VPSNetVideoPanopticQuality:
    """VPQ with VPSNet (Cityscapes-VPS) rules: panopticapi matching on tubes.

    Example::

        vpq = VPSNetVideoPanopticQuality(num_classes=19, things_list=range(11, 19))
        for seq_id, frames in enumerate(sequences):      # annotated frames only
            for gt, pred in frames:
                vpq.update(gt, pred, sequence_id=seq_id)
        vpq.result()["VPQ"], vpq.result()["per_window"][15]["PQ"]

    Args:
        num_classes: class ids ``0 .. num_classes - 1``; every class except `ignore_label`
            is a category of the average.
        things_list: thing class ids (instance 0 of a thing in the ground truth is crowd).
        ignore_label: semantic value of void pixels (VOID), default 255.
        label_divisor: panoptic divisor of the inputs.
        window_sizes: numbers of consecutive annotated frames (VPSNet ``nframes``).
        frame_stride: annotated-frame spacing, only used to name windows by their span
            ``k = (nframes - 1) * frame_stride``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        things_list: Sequence[int],
        ignore_label: int = 255,
        label_divisor: int = 1000,
        window_sizes: Sequence[int] = (1, 2, 3, 4),
        frame_stride: int = 5,
    ):
        check_label_settings(num_classes, label_divisor)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.frame_stride = int(frame_stride)
        self._windows = _Windows(window_sizes)
        self.window_sizes = tuple(self._windows.sizes)
        self._is_thing = np.zeros(num_classes + 1, bool)  # last entry: unknown / VOID
        for t in things_list:
            if not 0 <= int(t) < num_classes:
                raise ValueError(f"thing class {t} is not in 0..{num_classes - 1}")
            self._is_thing[int(t)] = True
        self.class_ids = [c for c in range(num_classes) if c != ignore_label]
        self.reset()

    def reset(self) -> None:
        self._windows.reset()
        n = self.num_classes
        self._stats = {k: [np.zeros(n) for _ in range(4)] for k in self.window_sizes}  # iou, tp, fp, fn
        self._count = {k: 0 for k in self.window_sizes}

    def span(self, nframes: int) -> int:
        """Temporal span k of a window of `nframes` annotated frames."""
        return (nframes - 1) * self.frame_stride

    def _segment_ids(self, labels: LabelsLike, what: str) -> np.ndarray:
        """``(H, W)`` ids: panoptic label + 1, and 0 (VOID) on void pixels."""
        pan = to_panoptic(labels, label_divisor=self.label_divisor, what=what)
        sem = pan // self.label_divisor
        void = sem == self.ignore_label
        bad = ~void & (sem >= self.num_classes)
        if bad.any():
            raise ValueError(
                f"{what} holds classes {np.unique(sem[bad])[:8].tolist()}; expected "
                f"0..{self.num_classes - 1} or {self.ignore_label}"
            )
        return np.where(void, 0, pan + 1)

    def _category(self, ids: np.ndarray) -> np.ndarray:
        return np.where(ids > 0, (ids - 1) // self.label_divisor, self.num_classes)

    def update(self, gt: LabelsLike, pred: LabelsLike, sequence_id: Hashable = 0) -> None:
        """Add one annotated frame of sequence `sequence_id`; score the windows ending on it."""
        gt_ids = self._segment_ids(gt, "ground truth")
        pred_ids = self._segment_ids(pred, "prediction")
        check_same_shape(gt_ids, pred_ids)
        table = pair_table(gt_ids, pred_ids)
        for nframes, window in self._windows.push(sequence_id, table):
            match = match_segments(
                window,
                gt_info=self._gt_info,
                pred_info=lambda ids: (self._category(ids), ids == 0),
                gt_is_void=lambda ids: ids == 0,
                crowd_in_fp_filter=True,
            )
            for acc, value in zip(self._stats[nframes], match.per_class(self.num_classes)):
                acc += value
            self._count[nframes] += 1

    def _gt_info(self, ids: np.ndarray):
        cat = self._category(ids)
        crowd = (ids > 0) & self._is_thing[cat] & ((ids - 1) % self.label_divisor == 0)
        return cat, crowd, ids == 0

    def result(self) -> dict:
        """``{"VPQ", "VSQ", "VRQ", "VPQ_things", ..., "per_window": {k: PQ result}}``.

        ``per_window`` is keyed by the span ``k = (nframes - 1) * frame_stride`` (0, 5, 10, 15
        by default) and holds the panopticapi-style `pq_summary` of those windows plus
        ``"nframes"`` and ``"windows"``; top-level values are means over the spans that
        produced at least one window.
        """
        cls = np.array(self.class_ids, np.int64)
        per_window = {}
        for nframes, (iou, tp, fp, fn) in self._stats.items():
            res = pq_summary(
                iou=iou[cls], tp=tp[cls], fp=fp[cls], fn=fn[cls],
                class_ids=self.class_ids, is_thing=self._is_thing[cls],
            )
            res["nframes"] = nframes
            res["windows"] = self._count[nframes]
            per_window[self.span(nframes)] = res
        keys = ["PQ", "SQ", "RQ", "PQ_things", "SQ_things", "RQ_things", "PQ_stuff", "SQ_stuff", "RQ_stuff"]
        out = _average(per_window, keys)
        out["per_window"] = per_window
        return out
