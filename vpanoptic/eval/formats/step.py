"""KITTI-STEP and MOTChallenge-STEP label folders.

Each frame is an RGB PNG: R = semantic id (255 = void), G * 256 + B = instance id (0 = stuff,
crowd or void). Layouts read here::

    ROOT/<sequence>/<frame>.png       several sequences (deeplab2 ``panoptic_maps/val/0002/000000.png``)
    ROOT/<frame>.png                  a single sequence (``vpanoptic synth`` ``gt/``, ``vpanoptic run`` ``png/``)

Frames are named by their file stem and sorted by name; a folder holding PNGs directly is
one sequence named after the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ...io.formats import read_kitti_step, write_kitti_step
from .base import FormatError, FrameRef, LabelFrame, SequenceSet

__all__ = ["read_step", "write_step"]

FramePair = tuple[np.ndarray, np.ndarray]


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))


def _load(path: Path):
    def load() -> LabelFrame:
        try:
            semantic, instance = read_kitti_step(path)
        except (OSError, ValueError) as err:
            raise FormatError(f"{path}: {err}") from None
        return LabelFrame(semantic=semantic, instance=instance)

    return load


def read_step(root: str | os.PathLike, format: str = "kitti-step") -> SequenceSet:
    """Sequences of a KITTI-STEP / MOTChallenge-STEP folder (see the module docstring).

    Raises:
        FormatError: `root` is missing, or holds neither PNGs nor folders of PNGs.
    """
    root = Path(root)
    if not root.is_dir():
        raise FormatError(f"{format}: {root} is not a folder")
    out = SequenceSet(format=format, root=root)
    direct = _pngs(root)
    if direct:
        out.sequences[root.name] = [FrameRef(p.stem, _load(p), str(p)) for p in direct]
        return out
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _pngs(sub)
        if files:
            out.sequences[sub.name] = [FrameRef(p.stem, _load(p), str(p)) for p in files]
    if not out.sequences:
        raise FormatError(f"{format}: no PNG label files in {root} or its sub-folders")
    return out


def write_step(root: str | os.PathLike, sequences: Mapping[str, Iterable[FramePair]], *, start: int = 0) -> Path:
    """Write ``root/<sequence>/<index:06d>.png`` for every ``(semantic, instance)`` frame.

    Args:
        sequences: ``name -> frames``; each frame ``(semantic (H, W) int in 0..255, instance
            (H, W) int in 0..65535)``.
        start: index of each sequence's first frame.
    """
    root = Path(root)
    for name, frames in sequences.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, (semantic, instance) in enumerate(frames, start=start):
            write_kitti_step(folder / f"{i:06d}.png", semantic, instance)
    return root
