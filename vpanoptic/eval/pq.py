"""Panoptic Quality (PQ) for images, under two published rule sets.

PQ (Kirillov et al., "Panoptic Segmentation", CVPR 2019), per class c::

    PQ_c = sum_{(g, p) in TP_c} IoU(g, p) / (|TP_c| + |FP_c| / 2 + |FN_c| / 2)
         = SQ_c * RQ_c

averaged over the classes that occur (``|TP| + |FP| + |FN| > 0``). A ground-truth segment g
and a predicted segment p of the same class match when ``IoU(g, p) > 0.5``.

Two accumulators, because the two reference implementations differ in what is ignored:

- `PanopticQuality` follows deeplab2 ``evaluation/panoptic_quality.py`` (and its predecessor
  ``tensorflow/models research/deeplab/evaluation/panoptic_quality.py``) on STEP-style panoptic
  labels ``semantic * label_divisor + instance``:

  * every distinct panoptic label is a segment, stuff and things alike; a thing's instance 0
    is an ordinary segment (there is **no crowd** rule);
  * every segment of the ignored class (``ignore_label``, any instance) is left out: it is
    never a TP, FN or FP;
  * the ground-truth *void* segment is the label ``ignore_label * label_divisor`` (instance 0);
    the overlap of a predicted segment with it is removed from the union, and an unmatched
    predicted segment is not a FP when more than half of it lies on void.

- `COCOPanopticQuality` follows panopticapi ``evaluation.py`` on COCO-panoptic inputs (segment
  id maps plus ``segments_info``):

  * id 0 is VOID; ground-truth segments with ``iscrowd = 1`` are never matched and never FN;
  * the IoU union leaves out the predicted segment's VOID pixels (not its crowd pixels);
  * an unmatched predicted segment is not a FP when more than half of it lies on VOID plus
    the crowd region of its own category (panopticapi's ``crowd_labels_dict`` keeps one crowd
    segment per category: the last one listed in ``segments_info``);
  * every category of ``categories`` counts, with its ``isthing`` flag for the splits.
  Ground-truth areas are pixel counts of the id map (panopticapi reads the JSON ``area``,
  which equals the pixel count for well-formed data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .common import (
    LabelsLike,
    PairTable,
    PQMatch,
    check_label_settings,
    check_same_shape,
    match_segments,
    pair_table,
    pq_summary,
    to_panoptic,
)

__all__ = ["COCOPanopticQuality", "PanopticQuality", "match_deeplab2"]

DEFAULT_OFFSET = 256 * 256 * 256


def match_deeplab2(
    table: PairTable, *, num_classes: int, ignore_label: int, label_divisor: int
) -> PQMatch:
    """deeplab2 PQ matching of one `PairTable` of panoptic labels.

    Args:
        table: pixel pairs of ``semantic * label_divisor + instance`` labels.
        num_classes: categories are ``0 .. num_classes - 1`` (plus `ignore_label`).
        ignore_label: the ignored category; its instance-0 label is ground-truth void.
        label_divisor: the panoptic divisor.
    Raises:
        ValueError: a category outside ``0 .. num_classes - 1`` other than `ignore_label`.
    """
    for name, labels in (("ground truth", table.gt), ("prediction", table.pred)):
        cats = np.unique(labels // label_divisor)
        bad = cats[(cats >= num_classes) & (cats != ignore_label)]
        if bad.size:
            raise ValueError(
                f"{name} holds classes {bad.tolist()}; expected 0..{num_classes - 1} or {ignore_label}"
            )
    void_label = ignore_label * label_divisor

    def gt_info(labels):
        cat = labels // label_divisor
        return cat, np.zeros(labels.shape, bool), cat == ignore_label

    def pred_info(labels):
        cat = labels // label_divisor
        return cat, cat == ignore_label

    return match_segments(
        table,
        gt_info=gt_info,
        pred_info=pred_info,
        gt_is_void=lambda labels: labels == void_label,
        crowd_in_fp_filter=False,
    )


class PanopticQuality:
    """Image PQ with deeplab2 ``PanopticQuality`` rules, accumulated over frames.

    Example::

        pq = PanopticQuality(num_classes=19, ignore_label=255, label_divisor=1000,
                             things_list=(11, 13))
        for gt, pred in frames:          # (semantic, instance) pairs or panoptic maps
            pq.update(gt, pred)
        pq.result()["PQ"]

    Args:
        num_classes: number of classes; class ids are ``0 .. num_classes - 1``.
        ignore_label: the ignored / void class (deeplab2 ``ignored_label``), default 255.
        label_divisor: panoptic divisor (deeplab2 ``max_instances_per_category``).
        offset: deeplab2's bound on panoptic labels; labels must be below it.
        things_list: thing class ids, for the things / stuff averages (None: "all" only).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_label: int = 255,
        label_divisor: int = 1000,
        offset: int = DEFAULT_OFFSET,
        things_list: Sequence[int] | None = None,
    ):
        check_label_settings(num_classes, label_divisor)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.offset = int(offset)
        self.things_list = None if things_list is None else tuple(int(t) for t in things_list)
        self.reset()

    def reset(self) -> None:
        n = self.num_classes
        self.iou = np.zeros(n)
        self.tp = np.zeros(n)
        self.fp = np.zeros(n)
        self.fn = np.zeros(n)
        self.num_frames = 0

    def frame_table(self, gt: LabelsLike, pred: LabelsLike) -> PairTable:
        """Validate one frame and count its pixel pairs (also used by VPQ / PTQ)."""
        y_true = to_panoptic(gt, label_divisor=self.label_divisor, what="ground truth")
        y_pred = to_panoptic(pred, label_divisor=self.label_divisor, what="prediction")
        check_same_shape(y_true, y_pred)
        top = max(int(y_true.max(initial=0)), int(y_pred.max(initial=0)))
        if top >= self.offset:
            raise ValueError(f"panoptic label {top} >= offset {self.offset}; raise the offset")
        return pair_table(y_true, y_pred)

    def match(self, table: PairTable) -> PQMatch:
        return match_deeplab2(
            table, num_classes=self.num_classes, ignore_label=self.ignore_label, label_divisor=self.label_divisor
        )

    def accumulate(self, match: PQMatch) -> None:
        iou, tp, fp, fn = match.per_class(self.num_classes)
        self.iou += iou
        self.tp += tp
        self.fp += fp
        self.fn += fn

    def update(self, gt: LabelsLike, pred: LabelsLike) -> None:
        """Add one frame: ``(H, W)`` panoptic maps or ``(semantic, instance)`` pairs."""
        self.update_table(self.frame_table(gt, pred))

    def update_table(self, table: PairTable) -> None:
        """Add one frame given as its `frame_table` (lets several metrics share one count)."""
        self.accumulate(self.match(table))
        self.num_frames += 1

    def result(self) -> dict:
        """``{"PQ", "SQ", "RQ", "n", [things / stuff], "per_class"}``; see `pq_summary`."""
        is_thing = None
        if self.things_list is not None:
            is_thing = np.isin(np.arange(self.num_classes), self.things_list)
        return pq_summary(
            iou=self.iou, tp=self.tp, fp=self.fp, fn=self.fn,
            class_ids=range(self.num_classes), is_thing=is_thing,
        )


class _Lookup:
    """Vectorised ``label -> row of ids``; labels not in `ids` map to ``len(ids)``."""

    def __init__(self, ids: np.ndarray):
        self.size = ids.size
        self.order = np.argsort(ids)
        self.sorted = ids[self.order]

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        if self.size == 0:
            return np.zeros(labels.shape, np.int64)
        pos = np.minimum(np.searchsorted(self.sorted, labels), self.size - 1)
        return np.where(self.sorted[pos] == labels, self.order[pos], self.size)


def _category_table(categories) -> tuple[np.ndarray, np.ndarray]:
    """``categories`` (mapping id -> isthing, or iterable of dicts) → sorted ids, isthing."""
    if isinstance(categories, Mapping):
        items = [
            (int(k), bool(v["isthing"]) if isinstance(v, Mapping) else bool(v)) for k, v in categories.items()
        ]
    else:
        items = [(int(c["id"]), bool(c["isthing"])) for c in categories]
    if not items:
        raise ValueError("categories is empty")
    items.sort()
    ids = np.array([i for i, _ in items], np.int64)
    if np.unique(ids).size != ids.size:
        raise ValueError("categories holds duplicate ids")
    return ids, np.array([t for _, t in items], bool)


class COCOPanopticQuality:
    """Image PQ with panopticapi rules on COCO-panoptic inputs, accumulated over images.

    Example::

        pq = COCOPanopticQuality(categories=[{"id": 1, "isthing": 1}, {"id": 2, "isthing": 0}])
        pq.update(gt_ids, gt_segments, pred_ids, pred_segments)
        pq.result()["PQ"]

    Args:
        categories: mapping ``category id -> isthing`` (bool, or a dict with ``"isthing"``),
            or an iterable of dicts with ``"id"`` and ``"isthing"`` (COCO ``categories``).
    """

    VOID = 0

    def __init__(self, *, categories: Mapping | Iterable[Mapping]):
        self.category_ids, self.is_thing = _category_table(categories)
        self.reset()

    def reset(self) -> None:
        n = self.category_ids.size
        self.iou = np.zeros(n)
        self.tp = np.zeros(n)
        self.fp = np.zeros(n)
        self.fn = np.zeros(n)
        self.num_frames = 0

    def _category_index(self, cat_ids: Sequence[int], what: str) -> np.ndarray:
        """Category ids → rows of `category_ids`; unknown ids raise ValueError."""
        ids = np.array([int(c) for c in cat_ids], np.int64)
        idx = np.searchsorted(self.category_ids, ids)
        idx = np.minimum(idx, self.category_ids.size - 1)
        bad = self.category_ids[idx] != ids
        if bad.any():
            raise ValueError(f"{what} uses unknown category ids {sorted(set(ids[bad].tolist()))}")
        return idx

    def update(
        self,
        gt_ids: np.ndarray,
        gt_segments: Sequence[Mapping],
        pred_ids: np.ndarray,
        pred_segments: Sequence[Mapping],
    ) -> None:
        """Add one image.

        Args:
            gt_ids, pred_ids: ``(H, W)`` int segment ids (``R + 256 G + 256² B``), 0 = VOID.
            gt_segments: dicts with ``"id"``, ``"category_id"`` and optional ``"iscrowd"``.
            pred_segments: dicts with ``"id"`` and ``"category_id"``.
        Raises:
            ValueError: sizes differ, unknown categories, or predicted ids present in only one
                of the id map and `pred_segments` (panopticapi raises KeyError there).
        """
        gt = to_panoptic(gt_ids, label_divisor=1, what="ground truth ids")
        pred = to_panoptic(pred_ids, label_divisor=1, what="prediction ids")
        check_same_shape(gt, pred)
        table = pair_table(gt, pred)

        g_seg = np.array([int(s["id"]) for s in gt_segments], np.int64)
        g_cat = self._category_index([s["category_id"] for s in gt_segments], "ground truth")
        g_crowd = np.array([bool(s.get("iscrowd", 0)) for s in gt_segments], bool)
        p_seg = np.array([int(s["id"]) for s in pred_segments], np.int64)
        p_cat = self._category_index([s["category_id"] for s in pred_segments], "prediction")
        for name, seg in (("ground truth", g_seg), ("prediction", p_seg)):
            if np.unique(seg).size != seg.size:
                raise ValueError(f"{name} segments_info lists an id twice")
        present = np.unique(table.pred)
        present = present[present != self.VOID]
        missing = np.setdiff1d(present, p_seg)
        if missing.size:
            raise ValueError(f"predicted ids {missing.tolist()} are in the id map but not in segments_info")
        absent = np.setdiff1d(p_seg, present)
        if absent.size:
            raise ValueError(f"predicted ids {absent.tolist()} are in segments_info but not in the id map")

        g_row = _Lookup(g_seg)
        p_row = _Lookup(p_seg)
        g_cat_pad = np.append(g_cat, -1)
        g_crowd_pad = np.append(g_crowd, False)
        last_crowd = {int(c): i for i, c in enumerate(g_cat.tolist()) if g_crowd[i]}  # category -> row
        g_fp_crowd_pad = np.zeros(g_seg.size + 1, bool)
        g_fp_crowd_pad[list(last_crowd.values())] = True
        p_cat_pad = np.append(p_cat, -2)

        def gt_info(labels):
            row = g_row(labels)  # ids in the id map but not in segments_info are skipped
            return g_cat_pad[row], g_crowd_pad[row], row == g_seg.size

        def pred_info(labels):
            row = p_row(labels)  # only VOID is unknown here
            return p_cat_pad[row], row == p_seg.size

        match = match_segments(
            table,
            gt_info=gt_info,
            pred_info=pred_info,
            gt_is_void=lambda labels: labels == self.VOID,
            crowd_in_fp_filter=True,
            gt_fp_crowd=lambda labels: g_fp_crowd_pad[g_row(labels)],
        )
        iou, tp, fp, fn = match.per_class(self.category_ids.size)
        # Ground-truth segments listed in the JSON but absent from the PNG are still FN.
        unseen = ~np.isin(g_seg, table.gt) & ~g_crowd
        fn += np.bincount(g_cat[unseen], minlength=self.category_ids.size)
        self.iou += iou
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.num_frames += 1

    def result(self) -> dict:
        """``{"PQ", "SQ", "RQ", "n", "PQ_things", ..., "per_class"}`` keyed by category id."""
        return pq_summary(
            iou=self.iou, tp=self.tp, fp=self.fp, fn=self.fn,
            class_ids=self.category_ids.tolist(), is_thing=self.is_thing,
        )
