"""The in-memory form every benchmark reader produces: named sequences of lazily loaded frames.

A reader returns a `SequenceSet`: an ordered mapping ``sequence name -> [FrameRef]``. Each
`FrameRef` has the frame's name (the key that pairs ground truth with prediction) and a
``load()`` that reads the files only when the evaluator reaches the frame, so memory stays
constant whatever the dataset size. ``load()`` returns a `LabelFrame` in the STEP convention
(semantic ids, instance ids, void = ``meta.void_id``) plus, where the format has them, the
raw COCO-panoptic ids with ``segments_info`` (panopticapi PQ rules) or a MOTS id map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...types import DatasetMeta

__all__ = ["FormatError", "FrameRef", "LabelFrame", "SequenceSet", "pair_sequences"]


class FormatError(UserError, ValueError):
    """A benchmark file or folder that cannot be read, or ground truth and prediction that do not pair."""


@dataclass(frozen=True)
class LabelFrame:
    """One frame's labels.

    Attributes:
        semantic: ``(H, W) int32`` class ids, ``meta.void_id`` on void; None for MOTS inputs.
        instance: ``(H, W) int32`` instance ids (0 = stuff, crowd or void); None for MOTS inputs.
        coco: ``(ids (H, W) int32, segments_info list of dicts)`` for COCO-panoptic inputs
            (id 0 = VOID), else None.
        mots: ``(H, W) int64`` MOTS id map ``class_id * 1000 + instance`` (0 = background,
            10000 = ignore region) for MOTS inputs, else None.
    """

    semantic: np.ndarray | None = None
    instance: np.ndarray | None = None
    coco: tuple[np.ndarray, list] | None = None
    mots: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        for arr in (self.semantic, self.mots, None if self.coco is None else self.coco[0]):
            if arr is not None:
                return tuple(arr.shape)
        return ()


@dataclass(frozen=True)
class FrameRef:
    """A frame that is read on demand: ``name`` pairs it with the other side."""

    name: str
    load: Callable[[], LabelFrame]
    source: str = ""  # file it comes from, for error messages


@dataclass
class SequenceSet:
    """Everything one side (ground truth or prediction) holds.

    Attributes:
        format: format name ("kitti-step", "coco", "mots", ...).
        root: the path it was read from.
        sequences: ordered ``name -> frames`` (frames in temporal order).
        meta: dataset metadata when the format carries it (COCO-style JSON categories), else None.
    """

    format: str
    root: Path
    sequences: dict[str, list[FrameRef]] = field(default_factory=dict)
    meta: DatasetMeta | None = None

    @property
    def num_frames(self) -> int:
        return sum(len(f) for f in self.sequences.values())


def pair_sequences(gt: SequenceSet, pred: SequenceSet, *, allow_missing_pred_frames: bool = False
                   ) -> list[tuple[str, list[tuple[FrameRef, FrameRef | None]]]]:
    """Pair ground-truth and predicted frames by sequence and frame name.

    A single sequence on each side pairs whatever the names (``gt/`` against ``png/``).
    Args:
        allow_missing_pred_frames: MOTS txt lists only frames with objects; a frame missing
            from the prediction is then None (no objects) instead of an error.
    Raises:
        FormatError: sequences or frames present on one side only (one line, first few named).
    """
    if not gt.sequences:
        raise FormatError(f"no ground-truth frames found in {gt.root}")
    if not pred.sequences:
        raise FormatError(f"no predicted frames found in {pred.root}")
    if len(gt.sequences) == 1 and len(pred.sequences) == 1:
        names = [(next(iter(gt.sequences)), next(iter(pred.sequences)))]
    else:
        missing = [s for s in gt.sequences if s not in pred.sequences]
        extra = [s for s in pred.sequences if s not in gt.sequences]
        if missing or extra:
            raise FormatError(f"sequences differ: {_diff(missing, extra)} ({gt.root} vs {pred.root})")
        names = [(s, s) for s in gt.sequences]
    out = []
    for g_name, p_name in names:
        g_frames, p_frames = gt.sequences[g_name], pred.sequences[p_name]
        p_by_name = {f.name: f for f in p_frames}
        missing = [f.name for f in g_frames if f.name not in p_by_name]
        extra = sorted(set(p_by_name) - {f.name for f in g_frames})
        if extra or (missing and not allow_missing_pred_frames):
            raise FormatError(f"sequence {g_name!r}: frames differ: {_diff(missing, extra)}")
        out.append((g_name, [(f, p_by_name.get(f.name)) for f in g_frames]))
    return out


def _diff(missing: list[str], extra: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"missing in prediction {_few(missing)}")
    if extra:
        parts.append(f"not in ground truth {_few(extra)}")
    return ", ".join(parts)


def _few(names: list[str], k: int = 3) -> str:
    if not names:
        return "[]"
    shown = ", ".join(repr(n) for n in names[:k])
    return f"[{shown}{', ...' if len(names) > k else ''}] ({len(names)})"
