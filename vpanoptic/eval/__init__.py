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

`Evaluator` feeds one frame to several of them at once; `evaluate_sequences` runs it over
in-memory sequences with a `DatasetMeta`. Benchmark layouts (KITTI-STEP, MOTChallenge-STEP,
Cityscapes-VPS, VIPSeg, COCO panoptic, MOTS) are read and written by `vpanoptic.eval.formats`;
``vpanoptic eval`` scores with `vpanoptic.eval.run`; ``vpanoptic experiment`` is `vpanoptic.experiment`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..types import DatasetMeta
from .common import PairTable, pair_table, pq_summary, to_panoptic
from .evaluator import Evaluator
from .mots import MOTSMetrics, objects_from_id_map
from .pq import COCOPanopticQuality, PanopticQuality
from .ptq import PanopticTrackingQuality
from .stq import STQuality
from .vpq import VideoPanopticQuality, VPSNetVideoPanopticQuality

__all__ = [
    "COCOPanopticQuality",
    "Evaluator",
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

FramePair = tuple[np.ndarray, np.ndarray]


def _check_frames(gt_frames, pred_frames) -> None:
    if len(gt_frames) != len(pred_frames):
        raise ValueError(f"got {len(gt_frames)} ground-truth sequences but {len(pred_frames)} predicted ones")
    for s, (gt_seq, pred_seq) in enumerate(zip(gt_frames, pred_frames)):
        if len(gt_seq) != len(pred_seq):
            raise ValueError(f"sequence {s}: {len(gt_seq)} ground-truth frames but {len(pred_seq)} predicted frames")


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
        (pq); ``VPQ`` (vpq); ``VPQ_vpsnet``; ``PTQ``, ``sPTQ``; ``MOTSA``, ``sMOTSA``, ``MOTSP``,
        ``IDS`` (mots) — and
        the full result dict of each metric under its lower-case name ("stq", "pq", ...).
    Raises:
        ValueError: unknown metric names, mismatched sequence / frame counts, frame sizes
            or unknown class ids (one-line messages naming the sequence and frame).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected any of {list(METRICS)}")
    _check_frames(gt_frames, pred_frames)
    evaluator = Evaluator(meta, metrics, vpq_window_sizes=vpq_window_sizes)
    for s, (gt_seq, pred_seq) in enumerate(zip(gt_frames, pred_frames)):
        for f, (gt, pred) in enumerate(zip(gt_seq, pred_seq)):
            try:
                evaluator.update(gt, pred, s)
            except ValueError as err:
                raise ValueError(f"sequence {s} frame {f}: {err}") from None
    out = evaluator.result()
    if "vpq_vpsnet" in metrics and "vpq" not in metrics:
        out["VPQ_vpsnet"] = out.pop("VPQ")
    return out
