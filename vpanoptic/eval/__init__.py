"""Video panoptic metrics as accumulators over NumPy label maps.

Every metric takes frames in the STEP convention — ``(semantic, instance)`` pairs of
``(H, W)`` integer maps (void = the ignore label, instance 0 = stuff or crowd) or panoptic
maps ``semantic * label_divisor + instance`` — through ``update(...)`` and reports with
``result() -> dict``:

- `STQuality`: STQ = sqrt(AQ * SQ) (STEP, deeplab2 reference).
- `PanopticQuality`: PQ / SQ / RQ with deeplab2 rules; `COCOPanopticQuality`: panopticapi
  rules on COCO-panoptic id maps with ``segments_info``.
- `VideoPanopticQuality` (ViP-DeepLab / deeplab2) and `VPSNetVideoPanopticQuality` (VPSNet).
- `MOTSMetrics`: MOTSA, sMOTSA, MOTSP, IDS (mots_tools rules).
- `PanopticTrackingQuality`: PTQ / sPTQ (MOPT).

`evaluate_sequences` runs several of them over whole sequences with a `DatasetMeta`.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..types import DatasetMeta
from .common import PairTable, pair_table, pq_summary, to_panoptic
from .mots import MOTSMetrics, objects_from_id_map
from .pq import COCOPanopticQuality, PanopticQuality
from .ptq import PanopticTrackingQuality
from .stq import STQuality
from .vpq import VideoPanopticQuality, VPSNetVideoPanopticQuality

__all__ = [
    "COCOPanopticQuality",
    "METRICS",
    "MOTSMetrics",
    "PairTable",
    "PanopticQuality",
    "PanopticTrackingQuality",
    "STQuality",
    "VPSNetVideoPanopticQuality",
    "VideoPanopticQuality",
    "evaluate_sequences",
    "objects_from_id_map",
    "pair_table",
    "pq_summary",
    "to_panoptic",
]

METRICS = ("stq", "pq", "vpq", "vpq_vpsnet", "ptq", "mots")
"""Metric names understood by `evaluate_sequences`."""

FramePair = Tuple[np.ndarray, np.ndarray]


def _check_frames(gt_frames, pred_frames) -> None:
    if len(gt_frames) != len(pred_frames):
        raise ValueError(f"got {len(gt_frames)} ground-truth sequences but {len(pred_frames)} predicted ones")
    for s, (gt_seq, pred_seq) in enumerate(zip(gt_frames, pred_frames)):
        if len(gt_seq) != len(pred_seq):
            raise ValueError(f"sequence {s}: {len(gt_seq)} ground-truth frames but {len(pred_seq)} predicted frames")


def _panoptic(frame, meta: DatasetMeta, what: str) -> np.ndarray:
    """Validated ``(H, W) int64`` panoptic map of a (semantic, instance) pair."""
    if not isinstance(frame, (tuple, list)) or len(frame) != 2:
        raise ValueError(f"{what}: expected a (semantic, instance) pair")
    pan = to_panoptic(tuple(frame), label_divisor=meta.label_divisor, what=what)
    sem = np.asarray(frame[0]).astype(np.int64, copy=False)
    present = np.flatnonzero(np.bincount(sem.reshape(-1))) if sem.size else np.zeros(0, np.int64)
    meta.check_ids(present[present != meta.void_id])
    return pan


def _mots_map(pan: np.ndarray, meta: DatasetMeta, is_thing: np.ndarray, ground_truth: bool) -> np.ndarray:
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


def evaluate_sequences(
    gt_frames: Sequence[Sequence[FramePair]],
    pred_frames: Sequence[Sequence[FramePair]],
    meta: DatasetMeta,
    metrics: Sequence[str] = ("stq", "pq", "vpq"),
    *,
    vpq_window_sizes: Sequence[int] = (1, 2, 3, 4),
) -> dict:
    """Evaluate predicted sequences against ground truth with several metrics at once.

    Args:
        gt_frames, pred_frames: one list per sequence of ``(semantic, instance)`` pairs of
            ``(H, W)`` integer maps (semantic ``meta.void_id`` = void; instance 0 = stuff or,
            for a ground-truth thing, crowd).
        meta: class ids, things, ``label_divisor`` and ``void_id`` of the labels.
        metrics: any of `METRICS`: "stq", "pq" (deeplab2 rules, all frames), "vpq"
            (ViP-DeepLab windows `vpq_window_sizes`), "vpq_vpsnet" (VPSNet rules, the same
            window sizes, every frame taken as annotated), "ptq", "mots" (thing tracks;
            ground-truth crowd and void as the ignore region).
        vpq_window_sizes: frames per VPQ window.
    Returns:
        Top-level numbers for the requested metrics — ``STQ``, ``AQ``, ``SQ`` (stq); ``PQ``
        (pq); ``VPQ`` (vpq); ``VPQ_vpsnet``; ``PTQ``, ``sPTQ``; ``MOTSA``, ``sMOTSA`` — and
        the full result dict of each metric under its lower-case name ("stq", "pq", ...).
    Raises:
        ValueError: unknown metric names, mismatched sequence / frame counts, frame sizes
            or unknown class ids (one-line messages naming the sequence and frame).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected any of {list(METRICS)}")
    _check_frames(gt_frames, pred_frames)
    ids = [c.id for c in meta.categories]
    num_classes = max(ids) + 1
    things = list(meta.thing_ids)
    common = dict(num_classes=num_classes, ignore_label=meta.void_id, label_divisor=meta.label_divisor)
    offset = max(256 ** 3, (max(num_classes, meta.void_id) + 1) * meta.label_divisor)
    acc: dict = {}
    if "stq" in metrics:
        acc["stq"] = STQuality(things_list=things, offset=offset, **common)
    if "pq" in metrics:
        acc["pq"] = PanopticQuality(things_list=things, offset=offset, **common)
    if "vpq" in metrics:
        acc["vpq"] = VideoPanopticQuality(things_list=things, offset=offset, window_sizes=vpq_window_sizes, **common)
    if "vpq_vpsnet" in metrics:
        acc["vpq_vpsnet"] = VPSNetVideoPanopticQuality(things_list=things, window_sizes=vpq_window_sizes, **common)
    if "ptq" in metrics:
        acc["ptq"] = PanopticTrackingQuality(things_list=things, offset=offset, **common)
    if "mots" in metrics:
        acc["mots"] = MOTSMetrics(class_ids=things, ignore_class=meta.void_id, class_divisor=meta.label_divisor)
    is_thing = np.isin(np.arange(max(num_classes, meta.void_id) + 1), things)
    metric_table = PanopticQuality(offset=offset, **common).frame_table

    for s, (gt_seq, pred_seq) in enumerate(zip(gt_frames, pred_frames)):
        for f, (gt, pred) in enumerate(zip(gt_seq, pred_seq)):
            where = f"sequence {s} frame {f}"
            try:
                y_true = _panoptic(gt, meta, "ground truth")
                y_pred = _panoptic(pred, meta, "prediction")
                if y_true.shape != y_pred.shape:
                    raise ValueError(f"ground truth {y_true.shape} and prediction {y_pred.shape} sizes differ")
                table = None
                for name, metric in acc.items():
                    if name in ("pq", "vpq", "ptq"):  # same deeplab2 settings: count pixels once
                        table = metric_table(y_true, y_pred) if table is None else table
                        if name == "pq":
                            metric.update_table(table)
                        else:
                            metric.update_table(table, s)
                    elif name == "mots":
                        metric.update(
                            _mots_map(y_true, meta, is_thing, True), _mots_map(y_pred, meta, is_thing, False), s
                        )
                    else:
                        metric.update(y_true, y_pred, s)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None

    out: dict = {}
    details = {name: metric.result() for name, metric in acc.items()}
    if "stq" in details:
        out.update(STQ=details["stq"]["STQ"], AQ=details["stq"]["AQ"], SQ=details["stq"]["SQ"])
    if "pq" in details:
        out["PQ"] = details["pq"]["PQ"]
    if "vpq" in details:
        out["VPQ"] = details["vpq"]["VPQ"]
    if "vpq_vpsnet" in details:
        out["VPQ_vpsnet"] = details["vpq_vpsnet"]["VPQ"]
    if "ptq" in details:
        out.update(PTQ=details["ptq"]["PTQ"], sPTQ=details["ptq"]["sPTQ"])
    if "mots" in details:
        out.update(MOTSA=details["mots"]["all"]["MOTSA"], sMOTSA=details["mots"]["all"]["sMOTSA"])
    out.update(details)
    return out
