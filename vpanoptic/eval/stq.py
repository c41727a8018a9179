"""Segmentation and Tracking Quality (STQ), exactly as deeplab2's STEP reference.

STQ (Weber et al., "STEP: Segmenting and Tracking Every Pixel", NeurIPS 2021 Datasets and
Benchmarks) is the geometric mean of an association term and a segmentation term::

    STQ = sqrt(AQ * SQ)

**AQ** (association quality), computed per sequence over *tubes*: a tube is the set of pixels
of one panoptic label over all frames of the sequence. For every ground-truth tube g and
predicted tube p with TPA(p, g) = |p ∩ g| > 0::

    IoU_id(p, g) = TPA / (TPA + FPA + FNA) = TPA / (|p| + |g| - TPA)
    AQ(g)        = 1 / |g| * sum_p TPA(p, g) * IoU_id(p, g)
    AQ           = sum_{sequences} sum_g AQ(g) / (total number of gt tubes)

Only thing pixels take part: ground-truth tubes are the non-crowd pixels of thing classes,
predicted tubes the predicted-thing pixels outside ground-truth crowd. *Crowd* is a
ground-truth thing pixel with instance 0; predictions there are not punished. Association is
class-agnostic (a gt car tube may overlap a predicted person tube). As in deeplab2, predicted
thing pixels on ground-truth *void* do count in the predicted tube's size |p|.

**SQ** is the mean class IoU of the semantic labels over all frames (deeplab2 reports it as
``IoU``), from a confusion matrix whose ground-truth rows of the ignored label are removed.
deeplab2 averages over every class with a non-zero union, so a prediction of the *ignored*
label on labelled pixels forms one more class with IoU 0 (the column of the ignored label).
This behaviour is kept for exact agreement.

Per sequence, AQ and IoU are also reported; ``STQ_per_seq = sqrt(AQ_seq * IoU_seq)``.
Source: google-research/deeplab2 ``evaluation/numpy/segmentation_and_tracking_quality.py``;
the tests reproduce the values asserted by its ``_test.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np

from .common import LabelsLike, check_label_settings, check_same_shape, compact, pair_table, to_panoptic

__all__ = ["STQuality"]

_EPSILON = 1e-15
_MAX_PENDING = 64  # per-frame count arrays kept before they are folded together


def _fold(labels: list[np.ndarray], counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum counts of equal labels over a list of (labels, counts) arrays."""
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lab = np.concatenate(labels)
    cnt = np.concatenate(counts)
    if lab.size == 0:
        return lab, cnt
    uniq, inverse = np.unique(lab, return_inverse=True)
    return uniq, np.bincount(inverse.reshape(-1), weights=cnt, minlength=uniq.size).round().astype(np.int64)


class _Counter:
    """A bounded multiset of int64 labels with int64 counts (sum per label)."""

    def __init__(self):
        self._labels: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    def add(self, labels: np.ndarray, counts: np.ndarray) -> None:
        self._labels.append(labels)
        self._counts.append(counts)
        if len(self._labels) > _MAX_PENDING:
            labels, counts = _fold(self._labels, self._counts)
            self._labels, self._counts = [labels], [counts]

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels (K,) sorted, counts (K,))``."""
        labels, counts = _fold(self._labels, self._counts)
        self._labels, self._counts = [labels], [counts]
        return labels, counts


class _Sequence:
    def __init__(self, size: int):
        self.confusion = np.zeros((size, size), np.int64)  # [gt class, predicted class]
        self.gt = _Counter()
        self.pred = _Counter()
        self.inter = _Counter()  # keys gt_label * offset + pred_label
        self.length = 0


class STQuality:
    """Segmentation and Tracking Quality accumulator (deeplab2 ``STQuality``).

    Example::

        stq = STQuality(num_classes=19, things_list=(11, 13), ignore_label=255,
                        label_divisor=1000)
        for seq_id, frames in enumerate(sequences):
            for gt, pred in frames:      # (semantic, instance) pairs or panoptic maps
                stq.update(gt, pred, sequence_id=seq_id)
        stq.result()["STQ"]

    Args:
        num_classes: number of semantic classes (ids ``0 .. num_classes - 1``).
        things_list: the class ids that are tracked things.
        ignore_label: the void / ignored class id (default 255).
        label_divisor: panoptic labels are ``semantic * label_divisor + instance``.
        label_bit_shift: alternatively ``(semantic << label_bit_shift) + instance`` (deeplab2's
            numpy version); give at most one of the two. Default: divisor 1000.
        offset: multiplier that packs a (gt, predicted) label pair into one integer; must be
            >= ``num_classes * label_divisor`` (deeplab2 raises the same error) and above every
            panoptic label seen.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        things_list: Sequence[int],
        ignore_label: int = 255,
        label_divisor: int | None = None,
        label_bit_shift: int | None = None,
        offset: int = 256 * 256 * 256,
    ):
        if label_divisor is not None and label_bit_shift is not None:
            raise ValueError("give label_divisor or label_bit_shift, not both")
        if label_bit_shift is not None:
            label_divisor = 1 << int(label_bit_shift)
        if label_divisor is None:
            label_divisor = 1000
        check_label_settings(num_classes, label_divisor)
        lower_bound = num_classes * label_divisor
        if offset < lower_bound:
            raise ValueError(
                f"offset is {offset}; expected >= num_classes * label_divisor = {lower_bound}"
            )
        if offset >= 1 << 31:
            raise ValueError(f"offset is {offset}; expected < 2**31")
        self.num_classes = int(num_classes)
        self.things_list = tuple(int(t) for t in things_list)
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.offset = int(offset)
        if ignore_label >= num_classes:
            self._size = num_classes + 1
            self._include = np.arange(num_classes)
        else:
            self._size = num_classes
            self._include = np.array([i for i in range(num_classes) if i != ignore_label])
        self._is_thing = np.zeros(self._size, bool)
        for t in self.things_list:
            if not 0 <= t < num_classes:
                raise ValueError(f"thing class {t} is not in 0..{num_classes - 1}")
            self._is_thing[t] = True
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated sequences."""
        self._sequences: OrderedDict[Hashable, _Sequence] = OrderedDict()

    def _semantic(self, panoptic: np.ndarray, what: str) -> np.ndarray:
        sem = panoptic // self.label_divisor
        if self.ignore_label > self.num_classes:
            sem = np.where(sem == self.ignore_label, self.num_classes, sem)
        if sem.size and sem.max() >= self._size:
            bad = np.unique(sem[sem >= self._size])
            raise ValueError(
                f"{what} holds classes {bad[:8].tolist()}; expected 0..{self.num_classes - 1} "
                f"or {self.ignore_label}"
            )
        return sem

    def update(self, gt: LabelsLike, pred: LabelsLike, sequence_id: Hashable = 0) -> None:
        """Add one frame of sequence `sequence_id`.

        Args:
            gt, pred: ``(H, W)`` panoptic maps or ``(semantic, instance)`` pairs.
            sequence_id: frames with the same id form one sequence (tubes span it).
        """
        # Step 1: labels as flat int64 panoptic maps, checked.
        y_true = to_panoptic(gt, label_divisor=self.label_divisor, what="ground truth")
        y_pred = to_panoptic(pred, label_divisor=self.label_divisor, what="prediction")
        check_same_shape(y_true, y_pred)
        y_true = y_true.reshape(-1)
        y_pred = y_pred.reshape(-1)
        top = max(int(y_true.max(initial=0)), int(y_pred.max(initial=0)))
        if top >= self.offset:
            raise ValueError(f"panoptic label {top} >= offset {self.offset}; raise the offset")
        sem_true = self._semantic(y_true, "ground truth")
        sem_pred = self._semantic(y_pred, "prediction")

        seq = self._sequences.get(sequence_id)
        if seq is None:
            seq = self._sequences[sequence_id] = _Sequence(self._size)
        seq.length += 1

        # Step 2: semantic confusion matrix (rows: ground truth).
        c = self._size
        seq.confusion += np.bincount(sem_true * c + sem_pred, minlength=c * c).reshape(c, c)

        # Step 3: thing masks; gt crowd (thing with instance 0) is left out of both.
        label_mask = self._is_thing[sem_true]
        pred_mask = self._is_thing[sem_pred]
        crowd = label_mask & (y_true % self.label_divisor == 0)
        label_mask &= ~crowd
        pred_mask &= ~crowd

        # Step 4: tube areas and tube intersections.
        gt_u, gt_n, _ = compact(y_true[label_mask])
        pr_u, pr_n, _ = compact(y_pred[pred_mask])
        seq.gt.add(gt_u, gt_n)
        seq.pred.add(pr_u, pr_n)
        both = label_mask & pred_mask
        inter = pair_table(y_true[both], y_pred[both])
        seq.inter.add(inter.gt * self.offset + inter.pred, inter.count)

    def _aq(self, seq: _Sequence) -> tuple[float, int]:
        """``(sum_g AQ(g) * 1, number of gt tubes)`` of one sequence."""
        gt_u, gt_n = seq.gt.totals()
        pr_u, pr_n = seq.pred.totals()
        keys, tpa = seq.inter.totals()
        if keys.size == 0:
            return 0.0, int(gt_u.size)
        g_size = gt_n[np.searchsorted(gt_u, keys // self.offset)].astype(np.float64)
        p_size = pr_n[np.searchsorted(pr_u, keys % self.offset)].astype(np.float64)
        tpa = tpa.astype(np.float64)
        # TPA * IoU_id / |g|, summed over all (g, p) pairs.
        return float(np.sum(tpa * (tpa / (g_size + p_size - tpa)) / g_size)), int(gt_u.size)

    def _iou(self, confusion: np.ndarray) -> tuple[float, np.ndarray]:
        """deeplab2 mean IoU of a confusion matrix and the ``(size,)`` per-class IoU."""
        conf = np.zeros_like(confusion)
        conf[self._include, :] = confusion[self._include, :]
        inter = np.diag(conf).astype(np.float64)
        union = conf.sum(axis=0) + conf.sum(axis=1) - inter
        ious = inter / np.maximum(union, _EPSILON)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = float(np.sum(ious) / np.count_nonzero(union))
        return mean, np.where(union > 0, ious, np.nan)

    def result(self) -> dict:
        """Compute STQ.

        Returns:
            ``STQ``, ``AQ``, ``SQ`` (= ``IoU``, the mean class IoU) as floats;
            ``STQ_per_seq``, ``AQ_per_seq``, ``IoU_per_seq`` as ``(S,) float64`` arrays;
            ``ID_per_seq`` and ``Length_per_seq`` lists; ``IoU_per_class`` mapping each class
            id (ignored label excluded) to its IoU over all sequences (NaN when the class
            occurs nowhere).
        """
        n = len(self._sequences)
        aq_sum = np.zeros(n)
        tubes = np.zeros(n)
        iou_seq = np.zeros(n)
        total = np.zeros((self._size, self._size), np.int64)
        for i, seq in enumerate(self._sequences.values()):
            aq_sum[i], tubes[i] = self._aq(seq)
            iou_seq[i], _ = self._iou(seq.confusion)
            total += seq.confusion
        aq = float(aq_sum.sum() / max(tubes.sum(), _EPSILON))
        aq_seq = aq_sum / np.maximum(tubes, _EPSILON)
        iou, per_class = self._iou(total)
        return {
            "STQ": float(np.sqrt(aq * iou)),
            "AQ": aq,
            "SQ": iou,
            "IoU": iou,
            "STQ_per_seq": np.sqrt(aq_seq * iou_seq),
            "AQ_per_seq": aq_seq,
            "IoU_per_seq": iou_seq,
            "ID_per_seq": list(self._sequences.keys()),
            "Length_per_seq": [s.length for s in self._sequences.values()],
            "IoU_per_class": {int(c): float(per_class[c]) for c in self._include},
        }
