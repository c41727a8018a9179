"""MOTS metrics: MOTSA, sMOTSA, MOTSP, MODSA and ID switches, per class.

Source: Voigtlaender et al., "MOTS: Multi-Object Tracking and Segmentation", CVPR 2019, and
its evaluation code VisualComputingInstitute/mots_tools ``mots_eval/MOTS_metrics.py``.

Per frame and class, a ground-truth mask g and a hypothesis mask h are a true positive when
``IoU(g, h) > 0.5``. Masks of one frame do not overlap, so each mask has at most one such
partner and no assignment problem arises. Then::

    TP    matched ground-truth masks                       FN = |GT| - TP
    FP    unmatched hypotheses, except those with more than half of their area
          (|h ∩ ignore| / |h| > 0.5) inside the ignore region (ground-truth objects of
          `ignore_class`, merged into one region)
    IDS   matched ground-truth masks whose track's previous *matched* mask was matched to a
          different hypothesis track id (frames where the track is missed do not reset it)
    MOTSA  = 1 - (FN + FP + IDS) / |GT|          = (TP - FP - IDS) / |GT|
    sMOTSA = (sum_TP IoU - FP - IDS) / |GT|
    MOTSP  = sum_TP IoU / TP
    MODSA  = 1 - (FN + FP) / |GT|

computed separately for each class (KITTI MOTS: 1 car, 2 pedestrian; 10 = ignore). Where
mots_tools returns -inf / inf for empty denominators, NaN is returned here. ``result()`` also
gives ``"all"``: the same formulas on counts summed over the classes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

from .common import compact, pair_table

__all__ = ["MOTSMetrics", "objects_from_id_map"]

MOTSObject = tuple[int, int, np.ndarray]
"""One object: ``(track_id, class_id, mask (H, W) bool)``."""
ObjectsLike = np.ndarray | Sequence[MOTSObject]


def objects_from_id_map(
    id_map: np.ndarray, *, class_divisor: int = 1000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compact form of a KITTI-MOTS instance map.

    Args:
        id_map: ``(H, W)`` int, ``class_id * class_divisor + instance``, 0 = background
            (KITTI MOTS PNGs: 2001 = pedestrian 1, 10000 = ignore).
    Returns:
        ``(index (H, W) int64, track_ids (N,) int64, class_ids (N,) int64)``: ``index`` is 0
        on background and ``1 + i`` on object i; the track id is the full map value.
    """
    ids = np.asarray(id_map)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"MOTS id map must be an (H, W) integer array; got {ids.shape} {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("MOTS id map holds negative values")
    uniq, _, inverse = compact(ids.reshape(-1))
    has_bg = uniq.size > 0 and uniq[0] == 0
    index = (inverse + (0 if has_bg else 1)).reshape(ids.shape)
    objs = uniq[1:] if has_bg else uniq
    return index, objs, objs // class_divisor


def _objects_from_list(objects: Sequence[MOTSObject], shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if shape is None:  # both sides are empty lists: nothing to count
        shape = (0, 0)
    track = np.array([int(t) for t, _, _ in objects], np.int64)
    cls = np.array([int(c) for _, c, _ in objects], np.int64)
    index = np.zeros(shape, np.int64)
    covered = np.zeros(shape, np.int64)
    for i, (_, _, mask) in enumerate(objects):
        mask = np.asarray(mask, bool)
        if mask.shape != tuple(shape):
            raise ValueError(f"MOTS mask of shape {mask.shape}; expected {tuple(shape)}")
        index[mask] = i + 1
        covered += mask
    if (covered > 1).any():
        raise ValueError("MOTS masks of one frame overlap; MOTS requires non-overlapping masks")
    return index, track, cls


class MOTSMetrics:
    """MOTS CLEAR-style metrics accumulated over frames and sequences.

    Example::

        mots = MOTSMetrics(class_ids=(1, 2), ignore_class=10)
        for seq_id, frames in enumerate(sequences):
            for gt_map, pred_map in frames:       # KITTI-MOTS id maps, or object lists
                mots.update(gt_map, pred_map, sequence_id=seq_id)
        mots.result()["per_class"][1]["sMOTSA"]

    Args:
        class_ids: the evaluated classes.
        ignore_class: ground-truth class whose masks form the ignore region (None: none).
        class_divisor: id-map encoding ``class_id * class_divisor + instance``.
        iou_threshold: a match needs IoU strictly above it (0.5).
    """

    def __init__(
        self,
        *,
        class_ids: Sequence[int] = (1, 2),
        ignore_class: int | None = 10,
        class_divisor: int = 1000,
        iou_threshold: float = 0.5,
    ):
        if not 0.5 <= iou_threshold < 1:
            raise ValueError(f"iou_threshold is {iou_threshold}; expected 0.5 <= x < 1 (unique matches)")
        self.class_ids = tuple(int(c) for c in class_ids)
        self.ignore_class = ignore_class
        self.class_divisor = int(class_divisor)
        self.iou_threshold = float(iou_threshold)
        self.reset()

    def reset(self) -> None:
        self._counts: dict[int, defaultdict[str, float]] = {c: defaultdict(float) for c in self.class_ids}
        self._last: dict[tuple[Hashable, int, int], int] = {}  # (seq, class, gt track) -> hyp track
        self.num_frames = 0

    def _frame_objects(self, objects: ObjectsLike, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if isinstance(objects, np.ndarray) and objects.ndim == 2:
            return objects_from_id_map(objects, class_divisor=self.class_divisor)
        return _objects_from_list(list(objects), shape)

    def update(self, gt: ObjectsLike, pred: ObjectsLike, sequence_id: Hashable = 0) -> None:
        """Add one frame.

        Args:
            gt, pred: a KITTI-MOTS id map ``(H, W)`` int, or a list of ``(track_id, class_id,
                mask (H, W) bool)`` with non-overlapping masks.
            sequence_id: identity switches are counted within a sequence.
        """
        # Step 1: both sides as index maps (0 = background, i + 1 = object i).
        shape = None
        for side in (gt, pred):
            if isinstance(side, np.ndarray) and side.ndim == 2:
                shape = side.shape
            elif len(side):
                shape = np.asarray(side[0][2]).shape
        g_index, g_track, g_cls = self._frame_objects(gt, shape)
        p_index, p_track, p_cls = self._frame_objects(pred, shape)
        if g_index.shape != p_index.shape:
            raise ValueError(f"ground truth {g_index.shape} and prediction {p_index.shape} sizes differ")
        self.num_frames += 1

        # Step 2: pixel pair counts, areas and IoU of every overlapping (gt, hyp) pair.
        table = pair_table(g_index, p_index)
        g_area = np.bincount(table.gt, weights=table.count, minlength=g_track.size + 1)
        p_area = np.bincount(table.pred, weights=table.count, minlength=p_track.size + 1)
        g_cls_pad = np.append(-1, g_cls)  # index 0: background
        p_cls_pad = np.append(-2, p_cls)
        if self.ignore_class is None:
            ignore_obj = np.zeros(g_cls_pad.size, bool)
        else:
            ignore_obj = g_cls_pad == self.ignore_class
        on_ignore = ignore_obj[table.gt] & (table.pred > 0)
        ignore_ov = np.bincount(table.pred[on_ignore], weights=table.count[on_ignore], minlength=p_track.size + 1)
        real = (table.gt > 0) & (table.pred > 0)
        gi, pi, n = table.gt[real], table.pred[real], table.count[real].astype(np.float64)
        iou = n / (g_area[gi] + p_area[pi] - n)

        # Step 3: per class, TP / FN / FP / ignored hypotheses / IDS.
        for c in self.class_ids:
            acc = self._counts[c]
            g_of_c = np.flatnonzero(g_cls_pad == c)
            p_of_c = np.flatnonzero(p_cls_pad == c)
            tp = (g_cls_pad[gi] == c) & (p_cls_pad[pi] == c) & (iou > self.iou_threshold)
            matched_p = np.zeros(p_track.size + 1, bool)
            matched_p[pi[tp]] = True
            with np.errstate(divide="ignore", invalid="ignore"):
                ignored = ~matched_p[p_of_c] & (ignore_ov[p_of_c] / p_area[p_of_c] > 0.5)
            n_tp = int(tp.sum())
            acc["n_gt"] += g_of_c.size
            acc["n_hyp"] += p_of_c.size
            acc["TP"] += n_tp
            acc["FN"] += g_of_c.size - n_tp
            acc["FP"] += p_of_c.size - n_tp - int(ignored.sum())
            acc["ignored"] += int(ignored.sum())
            acc["IoU_sum"] += float(iou[tp].sum())
            for g, p in zip(g_track[gi[tp] - 1].tolist(), p_track[pi[tp] - 1].tolist()):
                key = (sequence_id, c, g)
                last = self._last.get(key)
                if last is not None and last != p:
                    acc["IDS"] += 1
                self._last[key] = p

    @staticmethod
    def _summary(acc: dict) -> dict:
        n_gt, tp, fp, fn, ids, iou = (float(acc.get(k, 0.0)) for k in ("n_gt", "TP", "FP", "FN", "IDS", "IoU_sum"))
        nan = float("nan")
        return {
            "MOTSA": 1.0 - (fn + fp + ids) / n_gt if n_gt else nan,
            "sMOTSA": (iou - fp - ids) / n_gt if n_gt else nan,
            "MOTSP": iou / tp if tp else nan,
            "MODSA": 1.0 - (fn + fp) / n_gt if n_gt else nan,
            "TP": int(tp),
            "FP": int(fp),
            "FN": int(fn),
            "IDS": int(ids),
            "n_gt": int(n_gt),
            "n_hyp": int(acc.get("n_hyp", 0)),
            "ignored": int(acc.get("ignored", 0)),
            "IoU_sum": iou,
        }

    def result(self) -> dict:
        """``{"per_class": {class id: metrics}, "all": metrics}``.

        Each metrics dict has ``MOTSA``, ``sMOTSA``, ``MOTSP``, ``MODSA`` (floats) and the
        counts ``TP``, ``FP``, ``FN``, ``IDS``, ``n_gt``, ``n_hyp``, ``ignored``, ``IoU_sum``.
        """
        per_class = {c: self._summary(self._counts[c]) for c in self.class_ids}
        total: dict = defaultdict(float)
        for acc in self._counts.values():
            for k, v in acc.items():
                total[k] += v
        return {"per_class": per_class, "all": self._summary(total)}
