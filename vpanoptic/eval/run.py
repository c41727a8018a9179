"""``vpanoptic eval``: read a benchmark's ground truth and a prediction, score them, report.

Per format, the metrics follow that benchmark's reference rules:

=================  ===============  ===========  =====================  ==========================
format             dataset          PQ rules     VPQ rules (windows)    notes
=================  ===============  ===========  =====================  ==========================
kitti-step         KITTI-STEP       deeplab2     ViP-DeepLab (1-4)      19 classes, things 11, 13
motchallenge-step  MOTChallenge     deeplab2     ViP-DeepLab (1-4)      7 classes, thing 4
cityscapes-vps     Cityscapes       panopticapi  VPSNet (1-4 → k 0-15)
vipseg             VIPSeg           panopticapi  VPSNet (1,2,4,6,8)
coco               COCO panoptic    panopticapi  —                      images: PQ only
mots               KITTI-MOTS       —            —                      MOTSA only
=================  ===============  ===========  =====================  ==========================

STQ (deeplab2), PTQ (MOPT) and MOTSA (mots_tools; things with an instance id are objects,
ground-truth crowd and void are ignored) are available for every video format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .evaluator import Evaluator, InstanceRelabeler
from .formats import FORMATS, FormatError, pair_sequences, read_format

__all__ = ["CLI_METRICS", "DEFAULT_METRICS", "EvalError", "evaluate_paths", "format_table", "to_jsonable"]

CLI_METRICS = ("stq", "pq", "vpq", "motsa", "ptq")
DEFAULT_METRICS = {"coco": "pq", "mots": "motsa"}  # other formats: stq,pq,vpq


class EvalError(UserError, ValueError):
    """Ground truth and prediction that cannot be scored together (one line)."""


@dataclass(frozen=True)
class _Rules:
    dataset: str
    pq: str | None = "pq"
    vpq: str | None = "vpq"
    windows: tuple[int, ...] = (1, 2, 3, 4)
    video: bool = True
    mots_native: bool = False


_RULES = {
    "kitti-step": _Rules("kitti-step"),
    "motchallenge-step": _Rules("motchallenge-step"),
    "cityscapes-vps": _Rules("cityscapes", pq="pq_coco", vpq="vpq_vpsnet"),
    "vipseg": _Rules("vipseg", pq="pq_coco", vpq="vpq_vpsnet", windows=(1, 2, 4, 6, 8)),
    "coco": _Rules("coco-panoptic", pq="pq_coco", vpq=None, video=False),
    "mots": _Rules("kitti-step", pq=None, vpq=None, mots_native=True),  # labels unused: MOTS id maps
}


def _internal_metrics(format: str, metrics: Sequence[str]) -> list[str]:
    rules = _RULES[format]
    out = []
    for m in metrics:
        if m not in CLI_METRICS:
            raise EvalError(f"unknown metric {m!r}; choose from {', '.join(CLI_METRICS)}")
        name = {"stq": "stq", "pq": rules.pq, "vpq": rules.vpq, "motsa": "mots", "ptq": "ptq"}[m]
        if rules.mots_native and m != "motsa":
            name = None
        if not rules.video and m != "pq":
            name = None
        if name is None:
            raise EvalError(f"metric {m!r} is not defined for format {format!r}")
        out.append(name)
    return out


def evaluate_paths(
    gt: str | os.PathLike,
    pred: str | os.PathLike,
    *,
    format: str = "kitti-step",
    metrics: Sequence[str] = ("stq", "pq", "vpq"),
    progress: bool = True,
) -> dict:
    """Score the prediction folder/file `pred` against the ground truth `gt`.

    Args:
        format: one of `FORMATS` (layouts in `vpanoptic.eval.formats`).
        metrics: any of `CLI_METRICS`.
        progress: show a tqdm bar over frames.
    Returns:
        Top-level numbers (``STQ``, ``AQ``, ``SQ``, ``PQ``, ``VPQ``, ``PTQ``, ``sPTQ``, ``MOTSA``,
        ``sMOTSA``, ``MOTSP``, ``IDS`` as requested), ``format``, ``rules``, ``sequences``
        (name and frame count of each) and each metric's detail under its name.
    Raises:
        EvalError / FormatError (UserErrors): unreadable inputs, sequences or frames present on
        one side only, frames of different sizes, unknown classes — one line naming the frame.
    """
    if format not in FORMATS:
        raise EvalError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    if not metrics:
        raise EvalError("no metrics requested")
    rules = _RULES[format]
    names = _internal_metrics(format, metrics)
    gt_set = read_format(gt, format)
    pred_set = read_format(pred, format, meta=gt_set.meta, prediction=True)
    pairs = pair_sequences(gt_set, pred_set, allow_missing_pred_frames=format == "mots")
    from ..datasets import get_meta

    meta = gt_set.meta or get_meta(rules.dataset)
    evaluator = Evaluator(
        meta, names, vpq_window_sizes=rules.windows,
        mots_classes=(1, 2) if rules.mots_native else None,
    )
    total = sum(len(frames) for _, frames in pairs)
    from tqdm import tqdm

    with tqdm(total=total, unit="frame", desc="eval", disable=not progress, dynamic_ncols=True) as bar:
        for seq, frames in pairs:
            relabel = InstanceRelabeler(meta.label_divisor)
            for g_ref, p_ref in frames:
                where = f"sequence {seq!r} frame {g_ref.name!r}"
                try:
                    g = g_ref.load()
                    p = p_ref.load() if p_ref is not None else None
                    _update(evaluator, g, p, seq, rules, relabel)
                except FormatError as err:
                    raise EvalError(f"{where}: {err}") from None
                except ValueError as err:
                    raise EvalError(f"{where}: {err}") from None
                bar.update(1)
    out = evaluator.result()
    rule_names = {"stq": "deeplab2", "pq": "deeplab2", "pq_coco": "panopticapi", "vpq": "vip-deeplab",
                  "vpq_vpsnet": "vpsnet", "mots": "mots_tools", "ptq": "mopt"}
    out["format"] = format
    out["dataset"] = "kitti-mots" if rules.mots_native else meta.name
    out["rules"] = {m: rule_names.get(n, n) for m, n in zip(metrics, names)}
    if "vpq" in metrics:
        out["vpq_window_sizes"] = list(rules.windows)
    out["sequences"] = [{"name": s, "frames": len(f)} for s, f in pairs]
    return out


def _update(evaluator: Evaluator, g, p, seq: str, rules: _Rules, relabel: InstanceRelabeler) -> None:
    if rules.mots_native:
        pred_mots = p.mots if p is not None else np.zeros(g.mots.shape, np.int64)
        evaluator.update(None, None, seq, gt_mots=g.mots, pred_mots=pred_mots)
        return
    if g.shape != p.shape:
        raise ValueError(f"ground truth {g.shape} and prediction {p.shape} sizes differ")
    # Predicted track ids may pass the label divisor: renumber them per sequence (exact, see
    # InstanceRelabeler); every frame of the sequence goes through the same map.
    p_instance = relabel(p.semantic, p.instance)
    evaluator.update((g.semantic, g.instance), (p.semantic, p_instance), seq, gt_coco=g.coco, pred_coco=p.coco)


# ----------------------------------------------------------------------------- reporting
def to_jsonable(obj):
    """Results → JSON types: arrays to lists, NaN / inf to None, keys to strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


_TOP = ("STQ", "AQ", "SQ", "PQ", "VPQ", "PTQ", "sPTQ", "MOTSA", "sMOTSA", "MOTSP", "IDS")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{100 * float(v):.2f}"


def format_table(result: dict) -> str:
    """A readable summary: the top-level numbers (in %), then per-sequence STQ / AQ / SQ."""
    rules = result.get("rules", {})
    lines = [f"{result.get('format', '')} ({result.get('dataset', '')}): "
             f"{len(result.get('sequences', []))} sequences, "
             f"{sum(s['frames'] for s in result.get('sequences', []))} frames"]
    width = 7
    keys = [k for k in _TOP if k in result]
    lines.append("metric   " + "  ".join(f"{k:>{width}}" for k in keys))
    lines.append("value    " + "  ".join(f"{_fmt(result[k]):>{width}}" for k in keys))
    note = "values in %" + ("; IDS is a count" if "IDS" in keys else "")
    if rules:
        note += "; rules: " + ", ".join(f"{m} = {r}" for m, r in rules.items())
    lines.append(note)
    if "stq" in result and len(result["stq"]["ID_per_seq"]) > 1:
        stq = result["stq"]
        name_w = max(8, max(len(str(s)) for s in stq["ID_per_seq"]))
        lines.append(f"{'sequence':<{name_w}}  {'frames':>6}  {'STQ':>7}  {'AQ':>7}  {'SQ':>7}")
        for i, name in enumerate(stq["ID_per_seq"]):
            lines.append(f"{str(name):<{name_w}}  {stq['Length_per_seq'][i]:>6}  {_fmt(stq['STQ_per_seq'][i]):>7}  "
                         f"{_fmt(stq['AQ_per_seq'][i]):>7}  {_fmt(stq['IoU_per_seq'][i]):>7}")
    return "\n".join(lines)
