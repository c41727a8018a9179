"""Building blocks shared by the metrics: label codecs, pixel-pair counting, PQ matching.

Everything here is a pure function over NumPy arrays. Pixel statistics are computed with
``np.bincount`` on compact ids (a lookup table when the labels are small, ``np.unique``
otherwise); the only Python loops in the metrics run over segments, never over pixels.

Conventions:

- A *panoptic label* is ``semantic * label_divisor + instance`` (the deeplab2 / STEP
  convention; a ``label_bit_shift`` of ``b`` is the divisor ``2**b``).
- A `PairTable` lists, for one frame (or a window of frames), every pair
  ``(ground-truth label, predicted label)`` that shares pixels, with its pixel count. Every
  PQ-style metric is a function of this table alone: segment areas are its row/column sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LabelsLike",
    "PairTable",
    "PQMatch",
    "check_label_settings",
    "compact",
    "match_segments",
    "pair_table",
    "pq_summary",
    "to_panoptic",
]

# Labels below this bound are counted with a lookup table (bincount); larger ones with np.unique.
_LUT_LIMIT = 1 << 22
# Pair tables with more cells than this are counted with np.unique on packed keys.
_DENSE_PAIR_LIMIT = 1 << 24

LabelsLike = np.ndarray | tuple[np.ndarray, np.ndarray]
"""A frame's labels: a panoptic map ``(H, W)`` int, or a ``(semantic, instance)`` pair."""


def _as_int_array(x, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be an integer array; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be an (H, W) array; got shape {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{what} holds negative values (min {arr.min()}); expected >= 0")
    return arr


def to_panoptic(labels: LabelsLike, *, label_divisor: int, what: str = "labels") -> np.ndarray:
    """Panoptic map ``(H, W) int64`` from a panoptic map or a ``(semantic, instance)`` pair.

    Args:
        labels: ``(H, W)`` integer panoptic labels ``semantic * label_divisor + instance``, or a
            tuple ``(semantic, instance)`` of two ``(H, W)`` integer arrays (instance 0 = stuff,
            crowd or no instance; void is whatever semantic value the metric ignores).
        label_divisor: the divisor of the panoptic encoding; instances must be below it.
        what: name used in error messages ("ground truth", "prediction", ...).
    Raises:
        ValueError: wrong shape, dtype, negative values or instance ids >= label_divisor.
    """
    if isinstance(labels, (tuple, list)):
        if len(labels) != 2:
            raise ValueError(f"{what}: expected a (semantic, instance) pair; got {len(labels)} arrays")
        sem = _as_int_array(labels[0], f"{what} semantic")
        inst = _as_int_array(labels[1], f"{what} instance")
        if sem.shape != inst.shape:
            raise ValueError(f"{what}: semantic {sem.shape} and instance {inst.shape} shapes differ")
        if inst.size and inst.max() >= label_divisor:
            raise ValueError(
                f"{what}: instance id {inst.max()} >= label_divisor {label_divisor}; raise the divisor"
            )
        return sem * label_divisor + inst
    return _as_int_array(labels, what)


def check_label_settings(num_classes: int, label_divisor: int) -> None:
    """The settings every metric shares: at least one class and a positive panoptic divisor."""
    if num_classes <= 0:
        raise ValueError(f"num_classes is {num_classes}; expected > 0")
    if label_divisor <= 0:
        raise ValueError(f"label_divisor is {label_divisor}; expected > 0")


def check_same_shape(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} sizes differ")


def compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values, their counts and each element's index into them.

    Args:
        values: ``(N,) int64 >= 0``.
    Returns:
        ``(uniq (U,) int64 sorted, counts (U,) int64, inverse (N,) int64)`` with
        ``uniq[inverse] == values``.
    """
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), empty.copy()
    vmax = int(values.max())
    if vmax < _LUT_LIMIT:
        counts = np.bincount(values, minlength=vmax + 1)
        uniq = np.flatnonzero(counts)
        lut = np.empty(vmax + 1, np.int64)  # only the entries at `uniq` are ever read
        lut[uniq] = np.arange(uniq.size)
        return uniq.astype(np.int64), counts[uniq].astype(np.int64), lut[values]
    uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return uniq, counts.astype(np.int64), inverse.reshape(-1).astype(np.int64)


@dataclass(frozen=True)
class PairTable:
    """Pixel counts of every (ground-truth label, predicted label) pair with overlap.

    Attributes:
        gt: ``(P,) int64`` ground-truth labels.
        pred: ``(P,) int64`` predicted labels.
        count: ``(P,) int64`` pixels carrying both labels (> 0). Pairs are unique.
    """

    gt: np.ndarray
    pred: np.ndarray
    count: np.ndarray

    @staticmethod
    def merge(tables: Sequence[PairTable]) -> PairTable:
        """Sum several tables (e.g. the frames of a window): counts of equal pairs add up."""
        if len(tables) == 1:
            return tables[0]
        gt = np.concatenate([t.gt for t in tables])
        pred = np.concatenate([t.pred for t in tables])
        count = np.concatenate([t.count for t in tables])
        if gt.size == 0:
            return PairTable(gt, pred, count)
        stride = int(pred.max()) + 1
        keys = gt * stride + pred  # labels are < 2**31, so this fits in int64
        uniq, inverse = np.unique(keys, return_inverse=True)
        summed = np.bincount(inverse.reshape(-1), weights=count, minlength=uniq.size)
        return PairTable(uniq // stride, uniq % stride, np.rint(summed).astype(np.int64))


def pair_table(gt: np.ndarray, pred: np.ndarray) -> PairTable:
    """Count the pixels of every (gt, pred) label pair.

    Args:
        gt, pred: ``(N,)`` or ``(H, W)`` int64 labels >= 0 (< 2**31), same shape.
    Returns:
        the `PairTable` of the pixels, computed with one bincount over compact ids.
    """
    gt = np.asarray(gt, np.int64).reshape(-1)
    pred = np.asarray(pred, np.int64).reshape(-1)
    if gt.size == 0:
        empty = np.zeros(0, np.int64)
        return PairTable(empty, empty.copy(), empty.copy())
    gu, _, gi = compact(gt)
    pu, _, pi = compact(pred)
    cells = gu.size * pu.size
    if cells <= _DENSE_PAIR_LIMIT:
        counts = np.bincount(gi * pu.size + pi, minlength=cells)  # [G * P]
        nz = np.flatnonzero(counts)
        return PairTable(gu[nz // pu.size], pu[nz % pu.size], counts[nz].astype(np.int64))
    keys, counts = np.unique(gi * pu.size + pi, return_counts=True)
    return PairTable(gu[keys // pu.size], pu[keys % pu.size], counts.astype(np.int64))


@dataclass(frozen=True)
class PQMatch:
    """Outcome of PQ matching on one `PairTable` (one frame, or one window of frames).

    Attributes:
        tp_gt, tp_pred: ``(T,) int64`` labels of the matched pairs (IoU > 0.5, same category).
        tp_iou: ``(T,) float64`` IoU of each matched pair.
        tp_category: ``(T,) int64`` category index of each matched pair.
        fn_category: ``(F,) int64`` category index of each unmatched, counted gt segment.
        fp_category: ``(Q,) int64`` category index of each unmatched, counted predicted segment.
    """

    tp_gt: np.ndarray
    tp_pred: np.ndarray
    tp_iou: np.ndarray
    tp_category: np.ndarray
    fn_category: np.ndarray
    fp_category: np.ndarray

    def per_class(self, num_categories: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(iou_sum, tp, fp, fn)``, each ``(num_categories,) float64``."""
        n = num_categories
        iou = np.bincount(self.tp_category, weights=self.tp_iou, minlength=n)[:n]
        tp = np.bincount(self.tp_category, minlength=n)[:n].astype(np.float64)
        fp = np.bincount(self.fp_category, minlength=n)[:n].astype(np.float64)
        fn = np.bincount(self.fn_category, minlength=n)[:n].astype(np.float64)
        return iou, tp, fp, fn


GtInfo = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
PredInfo = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def match_segments(
    table: PairTable,
    *,
    gt_info: GtInfo,
    pred_info: PredInfo,
    gt_is_void: Callable[[np.ndarray], np.ndarray],
    crowd_in_fp_filter: bool,
    iou_threshold: float = 0.5,
    gt_fp_crowd: Callable[[np.ndarray], np.ndarray] | None = None,
) -> PQMatch:
    """PQ matching of ground-truth and predicted segments, vectorised over the pair table.

    Rules (common to panopticapi, deeplab2 and VPSNet):

    1. A pair (g, p) is a candidate when g is neither ignored nor crowd, p is not ignored and
       both have the same category.
    2. ``IoU(g, p) = |g ∩ p| / (|g| + |p| - |g ∩ p| - |p ∩ void|)``: the part of the predicted
       segment on ground-truth *void* pixels is left out of the union.
    3. Candidates with ``IoU > iou_threshold`` (0.5) are true positives; for thresholds >= 0.5
       segments that do not overlap each other have at most one such partner.
    4. Unmatched gt segments that are neither ignored nor crowd are false negatives.
    5. An unmatched predicted segment that is not ignored is a false positive unless more
       than half of it lies on void (plus, when ``crowd_in_fp_filter``, on crowd regions of
       its own category).

    Args:
        table: the pixel pairs of a frame or window.
        gt_info: ``(G,) gt labels -> (category (G,) int64, crowd (G,) bool, ignored (G,) bool)``.
        pred_info: ``(P,) predicted labels -> (category (P,) int64, ignored (P,) bool)``.
        gt_is_void: ``(K,) gt labels -> (K,) bool``, the labels whose overlap is void overlap.
        crowd_in_fp_filter: count same-category crowd overlap in rule 5 (panopticapi, VPSNet).
        iou_threshold: the matching threshold of rule 3.
        gt_fp_crowd: ``(G,) gt labels -> (G,) bool``, the crowd segments whose overlap rule 5
            counts (default: every crowd segment). panopticapi keeps one crowd segment per
            category, the last one listed in ``segments_info``.
    """
    g_u, g_inv = np.unique(table.gt, return_inverse=True)
    p_u, p_inv = np.unique(table.pred, return_inverse=True)
    g_inv = g_inv.reshape(-1)
    p_inv = p_inv.reshape(-1)
    n = table.count.astype(np.float64)
    g_area = np.bincount(g_inv, weights=n, minlength=g_u.size)  # [G]
    p_area = np.bincount(p_inv, weights=n, minlength=p_u.size)  # [P]
    g_cat, g_crowd, g_ign = gt_info(g_u)
    p_cat, p_ign = pred_info(p_u)

    # Overlap of each predicted segment with void, and with crowd of its own category.
    void_pair = gt_is_void(table.gt)  # [K]
    void_ov = np.bincount(p_inv[void_pair], weights=n[void_pair], minlength=p_u.size)  # [P]
    same_cat = g_cat[g_inv] == p_cat[p_inv]  # [K]
    ignored_ov = void_ov
    if crowd_in_fp_filter:
        fp_crowd = g_crowd if gt_fp_crowd is None else gt_fp_crowd(g_u)
        crowd_pair = fp_crowd[g_inv] & same_cat & ~void_pair
        ignored_ov = void_ov + np.bincount(p_inv[crowd_pair], weights=n[crowd_pair], minlength=p_u.size)

    # Steps 1-3: candidates and their IoU.
    cand = same_cat & ~g_ign[g_inv] & ~g_crowd[g_inv] & ~p_ign[p_inv]
    ci = np.flatnonzero(cand)
    union = g_area[g_inv[ci]] + p_area[p_inv[ci]] - n[ci] - void_ov[p_inv[ci]]
    iou = n[ci] / union
    tp = ci[iou > iou_threshold]
    tp_iou = iou[iou > iou_threshold]
    g_matched = np.zeros(g_u.size, bool)
    p_matched = np.zeros(p_u.size, bool)
    g_matched[g_inv[tp]] = True
    p_matched[p_inv[tp]] = True

    # Step 4: false negatives.
    fn = ~g_ign & ~g_crowd & ~g_matched
    # Step 5: false positives (segments mostly on void / crowd are not penalised).
    with np.errstate(divide="ignore", invalid="ignore"):
        mostly_ignored = ignored_ov / p_area > 0.5
    fp = ~p_ign & ~p_matched & ~mostly_ignored
    return PQMatch(
        tp_gt=table.gt[tp],
        tp_pred=table.pred[tp],
        tp_iou=tp_iou,
        tp_category=g_cat[g_inv[tp]].astype(np.int64),
        fn_category=g_cat[fn].astype(np.int64),
        fp_category=p_cat[fp].astype(np.int64),
    )


def pq_summary(
    *,
    iou: np.ndarray,
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    class_ids: Sequence[int],
    is_thing: np.ndarray | None,
    ids_penalty: np.ndarray | None = None,
) -> dict:
    """PQ, SQ, RQ per class and averaged over all / things / stuff classes.

    Per class c (Kirillov et al. 2019)::

        SQ_c = sum_TP IoU / |TP|             (0 when |TP| = 0)
        RQ_c = |TP| / (|TP| + |FP|/2 + |FN|/2)
        PQ_c = SQ_c * RQ_c = sum_TP IoU / (|TP| + |FP|/2 + |FN|/2)

    Averages run over the classes with ``|TP| + |FP| + |FN| > 0`` (panopticapi ``pq_average``,
    deeplab2 ``PanopticQuality.result``); an empty average is NaN.

    Args:
        iou, tp, fp, fn: ``(C,) float64`` per-class sums, index i describing ``class_ids[i]``.
        class_ids: the C class ids (dictionary keys of ``per_class``).
        is_thing: ``(C,) bool`` or None (then only the "all" averages are given).
        ids_penalty: optional ``(C,)`` value subtracted from the IoU sum (PTQ's IDS term).
    Returns:
        ``{"PQ", "SQ", "RQ", "n", "PQ_things", ..., "n_stuff", "per_class": {id: {...}}}``.
    """
    iou = np.asarray(iou, np.float64)
    tp = np.asarray(tp, np.float64)
    fp = np.asarray(fp, np.float64)
    fn = np.asarray(fn, np.float64)
    numer = iou if ids_penalty is None else iou - ids_penalty
    denom = tp + 0.5 * fp + 0.5 * fn
    valid = (tp + fp + fn) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.where(tp > 0, numer / np.maximum(tp, 1e-300), 0.0)
        rq = np.where(denom > 0, tp / np.where(denom > 0, denom, 1.0), 0.0)
    pq = sq * rq
    out: dict = {}
    groups = [("", np.ones(len(class_ids), bool))]
    if is_thing is not None:
        is_thing = np.asarray(is_thing, bool)
        groups += [("_things", is_thing), ("_stuff", ~is_thing)]
    for suffix, members in groups:
        sel = members & valid
        k = int(sel.sum())
        for name, arr in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            out[name + suffix] = float(arr[sel].mean()) if k else float("nan")
        out["n" + suffix] = k
    out["per_class"] = {
        int(c): {
            "PQ": float(pq[i]),
            "SQ": float(sq[i]),
            "RQ": float(rq[i]),
            "IoU": float(iou[i]),
            "TP": int(tp[i]),
            "FP": int(fp[i]),
            "FN": int(fn[i]),
            "valid": bool(valid[i]),
        }
        for i, c in enumerate(class_ids)
    }
    return out
